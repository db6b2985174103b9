#!/usr/bin/env bash
# Run every benchmark against a release build: `make bench` (or bench/run.sh build/release).
set -euo pipefail
build=${1:-build/release}
echo "== end to end: Kafka -> vigil run -> Redis, against kcat on the same topic =="
"$build/bench/bench_e2e" "$build/cli/vigil" "${BENCH_EVENTS:-400000}" "${BENCH_RESOURCES:-20000}" "${BENCH_PARTITIONS:-32}"
