#!/usr/bin/env bash
# The embedded stack as a new user meets it, with the real binary:
#  - the README's `-c` files exist and `vigil check -c examples/vigil.yaml` passes;
#  - `vigil run` without -c outside a checkout exits 2 with a hint naming -c;
#  - in embedded mode, startup logs a kcat line that, pasted as is, produces
#    an event the running vigil applies (read back with `vigil get`).
# Usage: test_deploy_embedded.sh VIGIL SOURCE_DIR. Needs redis-server and kcat.
set -uo pipefail
vigil="$1"
src="$2"
fail() { echo "FAIL: $*" >&2; [ -f "${tmp:-}/run.err" ] && sed 's/^/  run: /' "$tmp/run.err" >&2; exit 1; }
tmp=$(mktemp -d)
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
scale="${VIGIL_TEST_TIMEOUT_SCALE:-1}"
# wait_for SECONDS CMD...: poll CMD every 50 ms until it succeeds or the deadline passes.
wait_for() {
    local deadline=$(($(date +%s%N) / 1000000 + $1 * 1000 * scale))
    shift
    until "$@"; do
        [ "$(($(date +%s%N) / 1000000))" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}
command -v kcat >/dev/null || fail "kcat is not installed (scripts/deps.sh installs it)"

# 0. The README's commands name files that exist, and its config checks clean.
for f in $(grep -oE -- '-c [^ `]+' "$src/README.md" | awk '{print $2}' | sort -u); do
    [ -f "$src/$f" ] || fail "README.md names -c $f, which does not exist"
done
grep -qF 'vigil check -c examples/vigil.yaml' "$src/README.md" || fail "README.md does not show vigil check -c examples/vigil.yaml"
(cd "$src" && "$vigil" check -c examples/vigil.yaml) >"$tmp/out" 2>&1 || fail "vigil check -c examples/vigil.yaml: $(cat "$tmp/out")"

# 1. Without -c, away from a checkout: a usage error that names the flag, before anything starts.
mkdir "$tmp/empty"
(cd "$tmp/empty" && "$vigil" run >"$tmp/out" 2>"$tmp/err"); rc=$?
[ $rc -eq 2 ] || fail "vigil run without -c in an empty directory exited $rc: $(cat "$tmp/err")"
grep -qF -- "pass -c vigil.yaml" "$tmp/err" || fail "no hint naming -c: $(cat "$tmp/err")"
[ -z "$(ls -A "$tmp/empty")" ] || fail "it started something: $(ls -A "$tmp/empty")"

# 2. Embedded Kafka and Redis: paste the logged kcat line.
cat >"$tmp/vigil.yaml" <<YAML
kafka:
  group: deploy-embedded-$$
  topics: [deploy.events]
redis:
  data_dir: data
rules: [$src/examples/rules]
sinks:
  console: {type: console}
http:
  listen: 127.0.0.1:0
YAML
"$vigil" run -c "$tmp/vigil.yaml" >"$tmp/run.out" 2>"$tmp/run.err" &
pid=$!
kcat_logged() { grep -q 'INFO kafka: produce events with: kcat -P -b ' "$tmp/run.err"; }
wait_for 30 kcat_logged || fail "no kcat line logged at startup"
line=$(grep -m1 'INFO kafka: produce events with: ' "$tmp/run.err" | sed 's/.*produce events with: //')
echo "logged: $line"
[[ "$line" =~ ^kcat\ -P\ -b\ 127\.0\.0\.1:[0-9]+\ -t\ deploy\.events\ -p\ 0$ ]] || fail "unexpected line: $line"
# Several events of one Resource, each line carrying only what changed: they must apply in order.
r='"resource":{"type":"workflow","name":"pasted","workspace":"public","owner":"deploy-test"}'
printf '%s\n' "{$r,\"status\":\"active\",\"runtime\":\"pending\",\"time\":\"2026-11-28T10:00:00Z\"}" \
    "{$r,\"runtime\":\"running\",\"time\":\"2026-11-28T10:00:10Z\"}" \
    "{$r,\"runtime\":\"succeeded\",\"time\":\"2026-11-28T10:00:20Z\"}" >"$tmp/events.jsonl"
# exactly as a user pastes it: through a shell, the events on stdin
timeout $((30 * scale)) bash -c "$line" <"$tmp/events.jsonl" || fail "the pasted kcat line failed: $line"
applied() {
    "$vigil" get -c "$tmp/vigil.yaml" -o json workflow:v1:pasted:public >"$tmp/get.json" 2>"$tmp/get.err" &&
        grep -Eq '"runtime": *"succeeded"' "$tmp/get.json"
}
wait_for 30 applied || fail "the events produced with the kcat line were not applied: $(cat "$tmp/get.json" "$tmp/get.err")"
grep -Eq '"status": *"active"' "$tmp/get.json" || fail "the first event was lost (applied out of order?): $(cat "$tmp/get.json")"
kill -TERM "$pid"
wait "$pid"; rc=$?
pid=""
[ $rc -eq 0 ] || fail "vigil run exited $rc on SIGTERM"
if grep -q 'Sanitizer' "$tmp/run.err"; then fail "sanitizer report"; fi
echo ok
