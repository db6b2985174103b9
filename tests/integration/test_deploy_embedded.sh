#!/usr/bin/env bash
# The embedded stack as a new user meets it, with the real binary:
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
[[ "$line" =~ ^kcat\ -P\ -b\ 127\.0\.0\.1:[0-9]+\ -t\ deploy\.events$ ]] || fail "unexpected line: $line"
event='{"resource":{"type":"workflow","name":"pasted","workspace":"public","owner":"deploy-test"},"status":"active","runtime":"running","time":"2026-11-28T10:00:00Z"}'
# exactly as a user pastes it: through a shell, the event on stdin
echo "$event" | timeout $((30 * scale)) bash -c "$line" || fail "the pasted kcat line failed: $line"
applied() {
    "$vigil" get -c "$tmp/vigil.yaml" -o json workflow:v1:pasted:public >"$tmp/get.json" 2>"$tmp/get.err" &&
        grep -Eq '"runtime": *"running"' "$tmp/get.json"
}
wait_for 30 applied || fail "the event produced with the kcat line was not applied: $(cat "$tmp/get.json" "$tmp/get.err")"
kill -TERM "$pid"
wait "$pid"; rc=$?
pid=""
[ $rc -eq 0 ] || fail "vigil run exited $rc on SIGTERM"
if grep -q 'Sanitizer' "$tmp/run.err"; then fail "sanitizer report"; fi
echo ok
