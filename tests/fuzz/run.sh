#!/bin/sh
# Run a libFuzzer target for a bounded time on a scratch copy of its seed corpus.
#   tests/fuzz/run.sh FUZZER SEED_DIR SECONDS
# New inputs go to a temporary directory (the seeds in git stay as they are);
# a crash leaves its reproducer in the current directory and fails the run.
set -eu
fuzzer=$1
seeds=$2
secs=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/vigil-fuzz-XXXXXX")
trap 'rm -rf "$work"' EXIT
exec_rc=0
"$fuzzer" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 "$work" "$seeds" || exec_rc=$?
exit $exec_rc
