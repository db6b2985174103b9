#!/usr/bin/env bash
# Run every benchmark against a release build: `make bench` (or bench/run.sh build/release).
set -euo pipefail
build=${1:-build/release}
echo "== end to end: Kafka -> vigil run -> Redis, against kcat on the same topic =="
"$build/bench/bench_e2e" "$build/cli/vigil" "${BENCH_EVENTS:-400000}" "${BENCH_RESOURCES:-20000}" "${BENCH_PARTITIONS:-32}"
echo "== apply: resolve + apply + commit against redis-server, beside redis-benchmark -P 64 HSET =="
"$build/bench/bench_apply" "${BENCH_APPLY_EVENTS:-200000}" "${BENCH_APPLY_RESOURCES:-5000}" "${BENCH_APPLY_BATCH:-1000}"
