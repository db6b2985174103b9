#!/usr/bin/env bash
# Run every benchmark against a release build: `make bench` (or bench/run.sh build/release).
set -euo pipefail
build=${1:-build/release}
echo "== end to end: Kafka -> vigil run -> Redis, against kcat on the same topic =="
for pct in 100 10; do
  "$build/bench/bench_e2e" "$build/cli/vigil" "${BENCH_EVENTS:-400000}" "${BENCH_RESOURCES:-20000}" "${BENCH_PARTITIONS:-32}" "$pct"
done
echo "== apply: resolve + apply + commit against redis-server, beside redis-benchmark -P 64 HSET =="
"$build/bench/bench_apply" "${BENCH_APPLY_EVENTS:-200000}" "${BENCH_APPLY_RESOURCES:-5000}" "${BENCH_APPLY_BATCH:-1000}"
echo "== dispatch: outbox -> vigil's dispatcher -> a local webhook receiver that answers at once =="
"$build/bench/bench_dispatch" "$build/cli/vigil" "${BENCH_DISPATCH_PAGES:-20000}" "${BENCH_DISPATCH_RATE:-500}" "${BENCH_DISPATCH_SECONDS:-5}"
echo "== rules: events/s through apply + rules with 10, 1000 and 10000 monitors =="
"$build/bench/bench_rules" "${BENCH_RULE_EVENTS:-200000}"
