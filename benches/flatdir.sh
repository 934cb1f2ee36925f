#!/usr/bin/env bash
# Peak RSS and wall time of backing up one flat directory of N empty files:
# what one directory's entries cost. The normal safe path: fsync on, full
# change detection, default threads.
#
#   benches/flatdir.sh [N ...]          (default: 60000 1000000)
#
# Uses target/release/robovault (cargo build --release -p robovault-cli) and
# GNU time; works in ${WORKDIR:-/tmp/robovault-flatdir}. Prints one Markdown
# row per N: first backup, then an unchanged second backup.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${ROBOVAULT:-$PWD/${CARGO_TARGET_DIR:-target}/release/robovault}
work=${WORKDIR:-/tmp/robovault-flatdir}
[ $# -gt 0 ] || set -- 60000 1000000
echo "| entries | first backup s | first backup RSS MiB | unchanged re-run s | unchanged re-run RSS MiB |"
echo "|---|---|---|---|---|"
for n in "$@"; do
    rm -rf "$work"
    mkdir -p "$work/src"
    python3 - "$work/src" "$n" <<'EOF'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    os.close(os.open(os.path.join(root, f"f{i:07d}"), os.O_CREAT | os.O_WRONLY, 0o644))
EOF
    row="| $n"
    for run in first again; do
        /usr/bin/time -f "%e %M" -o "$work/time" "$bin" backup "$work/src" "$work/repo" --json >/dev/null || [ $? -lt 8 ]
        read -r wall rss < <(tail -n 1 "$work/time")
        row="$row | $wall | $((rss / 1024))"
    done
    echo "$row |"
done
rm -rf "$work"
