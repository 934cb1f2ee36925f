#!/usr/bin/env bash
# robovault against restic on the same S3 gateway (the loopback one-node Ceph
# of .ci/ceph-up), same corpus, same run: first backup and full restore.
# Writes the "S3" section of benches/RESULTS.md.
#
#   benches/s3.sh [--runs N] [--workdir DIR] [--files N] [--bytes B]
#
# Every robovault step is the tested code path: fsync on, every read
# verified, full change detection.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v restic >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq restic; }
[ -x /usr/bin/time ] || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time; }
STATE=${ROBOVAULT_BENCH_CEPH:-/tmp/robovault-ceph}
.ci/ceph-up "$STATE" >/dev/null
# shellcheck disable=SC1091
. "$STATE/env"
cargo build --release --quiet
exec python3 benches/s3.py --state "$STATE" "$@"
