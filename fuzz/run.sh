#!/usr/bin/env bash
# Runs every fuzz target (or those named as arguments) for FUZZ_SECONDS
# each (default 120) and prints, per target, the executions and whether it
# crashed. A crashing input is copied into regressions/<target>/, which the
# regression tests replay on every `cargo test`.
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# The corpus starts from seeds taken from a real repository (made here with
# the robovault binary, see src/seeds.rs) and from regressions/.
#
#   fuzz/run.sh                    # every target, 120 s each
#   FUZZ_SECONDS=600 fuzz/run.sh blob pack
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
seconds="${FUZZ_SECONDS:-120}"
targets=(pack tree snapshot config blob lock keyfile sealed jobfile schedule defaults)
if [ $# -gt 0 ]; then targets=("$@"); fi

# Fuzz builds (nightly, sanitizers) keep to their own target directory.
export CARGO_TARGET_DIR="$here/target"
export CARGO_INCREMENTAL=0

# Seeds: a small real repository with two snapshots.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$root" && env -u CARGO_TARGET_DIR cargo build -q -p robovault-cli)
rv="$(cd "$root" && env -u CARGO_TARGET_DIR cargo metadata -q --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/debug/robovault"
src="$work/src"
mkdir -p "$src/docs/deep" "$work/xdg"
printf 'hello world\n%.0s' $(seq 200) >"$src/docs/hello.txt"
head -c 3000 /dev/urandom >"$src/random.bin"
: >"$src/empty"
printf 'nested\n' >"$src/docs/deep/n.txt"
ln -s docs/hello.txt "$src/link"
mkfifo "$src/fifo"
# A backup exits with 1 when it copied files: below 8 is success.
backup() { rc=0; "$rv" backup "$@" >/dev/null || rc=$?; [ "$rc" -lt 8 ]; }
(cd "$work" && XDG_CONFIG_HOME="$work/xdg" backup "$src" "$work/repo" /XF '*.tmp' /R:2 /W:1 \
    --save-retry-defaults --save-job seed)
printf 'changed\n' >>"$src/docs/deep/n.txt"
backup "$src" "$work/repo"
cargo +nightly run -q --manifest-path "$here/Cargo.toml" --bin seeds -- "$work/repo" "$here/corpus"
mkdir -p "$here/corpus/jobfile" "$here/corpus/defaults" "$here/corpus/schedule"
cp "$work/seed.rcj" "$here/corpus/jobfile/"
cp "$work/xdg/robovault/defaults.toml" "$here/corpus/defaults/"

printf '%-10s %8s %14s %s\n' target seconds executions result
status=0
for t in "${targets[@]}"; do
    rm -rf "$here/artifacts/$t"
    mkdir -p "$here/corpus/$t" "$here/regressions/$t" "$here/artifacts/$t"
    log="$here/artifacts/$t.log"
    rc=0
    (cd "$here" && cargo +nightly fuzz run -O "$t" "corpus/$t" "regressions/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" >"$log" 2>&1) || rc=$?
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    result=ok
    if [ "$rc" -ne 0 ]; then
        result="CRASHED (exit $rc, see $log)"
        status=1
        for a in "$here/artifacts/$t"/*; do
            [ -f "$a" ] && cp "$a" "$here/regressions/$t/" && result="$result; kept $(basename "$a")"
        done
    fi
    printf '%-10s %8s %14s %s\n' "$t" "$seconds" "${execs:-?}" "$result"
done
exit "$status"
