#!/usr/bin/env bash
# Every benchmark against a release build, in one run: `make bench` (or bench/run.sh build/release).
# Prints one table and writes the same as JSON to build/bench.json (docs/performance.md).
# Knobs: BENCH_QUICK=1 (a ~2 minute smoke run), BENCH_EVENTS, BENCH_PARTITIONS, BENCH_RESOURCES,
# BENCH_WORKSPACES, BENCH_ZIPF, BENCH_LATENCY_RATE, BENCH_LATENCY_RATE_LOW, BENCH_LATENCY_SECONDS,
# BENCH_LATENCY_START (kafka,cold,steady: which latency runs),
# BENCH_RSS_EVENTS,
# BENCH_CALLGRIND_EVENTS, BENCH_DISPATCH_PAGES, BENCH_DISPATCH_RATE, BENCH_DISPATCH_SECONDS,
# BENCH_CLUSTER (1: the 1,000-monitor rows also with layout partitioned, on a 3-primary Redis
# Cluster, and 3 instances in one group on it; BENCH_ONLY=cluster runs just those rows).
set -euo pipefail
build=${1:-build/release}
out=$(dirname "$build")
tsv=$out/bench.tsv
json=$out/bench.json

tools="kcat redis-server redis-benchmark valgrind callgrind_annotate"
if [ "${BENCH_CLUSTER:-0}" != 0 ] || [[ ",${BENCH_ONLY:-}," == *,cluster,* ]]; then
    tools="$tools redis-cli" # redis-cli --cluster create
fi
for tool in $tools; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is not installed" >&2; exit 1; }
done
if [ "${BENCH_QUICK:-0}" != 0 ]; then
    : "${BENCH_DISPATCH_PAGES:=2000}" "${BENCH_DISPATCH_RATE:=200}" "${BENCH_DISPATCH_SECONDS:=2}"
    cg_events=${BENCH_CALLGRIND_EVENTS:-5000}
else
    cg_events=${BENCH_CALLGRIND_EVENTS:-20000}
fi
rm -f "$tsv" "$json"
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
t0=$(date +%s)
status=0

echo "== vigil end to end, beside kcat on the same topics (bench_vigil) =="
"$build/bench/bench_vigil" all "$out" || status=1
echo "== dispatcher: outbox -> a local webhook receiver that answers at once (bench_dispatch) =="
"$build/bench/bench_dispatch" "$build/cli/vigil" "${BENCH_DISPATCH_PAGES:-20000}" \
    "${BENCH_DISPATCH_RATE:-500}" "${BENCH_DISPATCH_SECONDS:-5}" "$tsv" || status=1

seconds=$(($(date +%s) - t0))
echo
echo "vigil benchmark, $started, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)," \
    "$seconds s; ratios are to kcat on the same topic in this run"
if [ "${BENCH_CLUSTER:-0}" != 0 ] || [[ ",${BENCH_ONLY:-}," == *,cluster,* ]]; then
    echo "cluster rows: 3 redis-server primaries in cluster mode on 127.0.0.1 (TCP, the embedded" \
        "Redis's AOF settings) on the same $(nproc) cores as vigil and the mock broker"
fi
awk -F'\t' '{ printf "| %-92s | %14s | %-15s | %6s |\n", $2, $3, $4, $5 }
            BEGIN { printf "| %-92s | %14s | %-15s | %6s |\n|%s|%s|%s|%s|\n", "", "value", "unit",
                    "ratio", "----------------------------------------------------------------------------------------------",
                    "----------------:", "-----------------", "-------:" }' "$tsv"

# The same rows as JSON: {"meta": {...}, "results": {key: {label, value, unit, ratio}}}.
awk -F'\t' -v started="$started" -v seconds="$seconds" -v cores="$(nproc)" \
    -v quick="${BENCH_QUICK:-0}" -v commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" '
    function q(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); return "\"" s "\"" }
    BEGIN { printf "{\n  \"meta\": {\"started\": %s, \"seconds\": %d, \"cores\": %d, \"quick\": %s, \"commit\": %s},\n  \"results\": {", q(started), seconds, cores, (quick != "0" ? "true" : "false"), q(commit) }
    { sub(/^ +/, "", $2)
      printf "%s\n    %s: {\"label\": %s, \"value\": %s, \"unit\": %s, \"ratio\": %s}", (NR > 1 ? "," : ""), q($1), q($2), $3, q($4), ($5 == "-" ? "null" : $5) }
    END { printf "\n  }\n}\n" }' "$tsv" > "$json"
# The profile: top functions by inclusive and by own cost, one line per function.
profile() {
    callgrind_annotate --inclusive="$1" "$out/bench-callgrind.out" 2>/dev/null | awk -v n="$2" '
        /file:function/ { on = 1; next }
        on && /^ *[0-9,]+ / {
            cost = $1; gsub(/,/, "", cost); fn = $0; sub(/^ *[0-9,]+ +\([^)]*\) +/, "", fn)
            if (fn !~ /^\?\?\?/) sub(/ \[.*$/, "", fn)   # unnamed code: keep its library
            name = fn; sub(/ \[.*$/, "", name); sub(/^.*:/, "", name)
            if (name in seen) next; seen[name] = 1
            if (++k <= 10) printf "%14.0f %10.0f  %s\n", cost, cost / n, fn }'
}
if [ -s "$out/bench-callgrind.out" ]; then
    {
        echo "callgrind of the engine process (bench_vigil engine, counted from vg_engine_run"
        echo "to its return: join, consume, drain), $cg_events events of the transition-heavy"
        echo "stream, 1000 monitors. Full: callgrind_annotate --inclusive=yes $out/bench-callgrind.out"
        echo
        echo "Top 10 by inclusive cost:"
        echo "  instructions  per event  function"
        profile yes "$cg_events"
        echo
        echo "Top 10 by own (exclusive) cost:"
        echo "  instructions  per event  function"
        profile no "$cg_events"
    } > "$out/bench-callgrind.txt"
fi
echo "written: $json (and $out/bench-callgrind.txt, the profile's top functions)"
exit $status
