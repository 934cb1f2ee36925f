#!/usr/bin/env bash
# Side-by-side benchmark: robovault against restic and borg on the same corpus,
# with the machine's physical limits, in one run. Writes benches/RESULTS.md.
#
#   benches/compare.sh [--runs N] [--cold] [--workdir DIR] [--files N] [--bytes B] [--big-db MB]
#
# Installs restic, borgbackup, b3sum, zstd and GNU time from Debian's packages
# when missing, builds robovault in release mode, builds the corpus once
# (deterministically, from /usr/share and /usr/lib) and runs every step
# --runs times (default 3). --cold drops the page cache before each step (root).
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v restic >/dev/null || missing+=(restic)
command -v borg >/dev/null || missing+=(borgbackup)
command -v b3sum >/dev/null || missing+=(b3sum)
command -v zstd >/dev/null || missing+=(zstd)
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
cargo build --release --quiet
exec python3 benches/compare.py "$@"
