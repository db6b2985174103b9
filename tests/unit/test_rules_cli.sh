#!/usr/bin/env bash
# `vigil check` and `vigil test` as a rule repository's CI uses them:
# every error with file:line:col, exit codes, --format json, and `vigil test`
# reporting FAIL with expected vs got. Runs from the source dir; no servers.
set -uo pipefail
vigil="$1"
fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# check: all examples load, with the default config's sinks (console only)
"$vigil" check examples/rules >"$tmp/out" 2>&1 || fail "examples/rules: $(cat "$tmp/out")"
grep -q '^ok: 8 monitors, 3 pagers$' "$tmp/out" || fail "examples/rules count: $(cat "$tmp/out")"
"$vigil" check -c examples/rules-extra/vigil.yaml >"$tmp/out" 2>&1 || fail "rules-extra: $(cat "$tmp/out")"

# check: every error, exit 1
"$vigil" check tests/fixtures/rules-language/check-a >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] || fail "check of broken rules exited $rc"
grep -q 'check-a/a.yaml:4:5: unknown key "sevrity" (did you mean "severity"?)' "$tmp/err" || fail "typo: $(cat "$tmp/err")"
grep -q 'check-a/a.yaml:8:40: "for": bad duration' "$tmp/err" || fail "duration: $(cat "$tmp/err")"
grep -q 'check-a/b.yaml:3:11: duplicate monitor name "fine"' "$tmp/err" || fail "duplicate: $(cat "$tmp/err")"
grep -q 'check-a/c.yaml:1:1: unknown key "monitor" (did you mean "monitors"?)' "$tmp/err" || fail "top: $(cat "$tmp/err")"
grep -q '^7 errors$' "$tmp/err" || fail "count: $(cat "$tmp/err")"

# check -c: sink names against the config, with a suggestion
cat >"$tmp/vigil.yaml" <<YAML
rules: [$PWD/tests/fixtures/rules-language/check-a/b.yaml]
sinks:
  slack: {type: console}
YAML
"$vigil" check -c "$tmp/vigil.yaml" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] || fail "check -c exited $rc"
grep -q 'pager "ops": unknown sink "console" (configured sinks: slack)' "$tmp/err" || fail "sink: $(cat "$tmp/err")"
grep -q 'unknown sink "slak" (did you mean "slack"?' "$tmp/err" || fail "sink hint: $(cat "$tmp/err")"

# check --format json
"$vigil" check --format json tests/fixtures/rules-language/check-a >"$tmp/out" 2>/dev/null; rc=$?
[ $rc -eq 1 ] || fail "json exited $rc"
grep -q '^{"ok":false,"monitors":[0-9]*,"pagers":[0-9]*,"errors":\[{"file":"tests/fixtures/rules-language/check-a/a.yaml","line":4,"col":5,"message":"unknown key \\"sevrity\\" (did you mean \\"severity\\"?)","severity":"error"}' "$tmp/out" || fail "json: $(cat "$tmp/out")"
"$vigil" check --format json examples/rules >"$tmp/out" || fail "json ok exited non-zero"
grep -q '^{"ok":true,"monitors":8,"pagers":3,"errors":\[\]}$' "$tmp/out" || fail "json ok: $(cat "$tmp/out")"
"$vigil" check --format xml examples/rules >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad --format"

# test: the examples pass
"$vigil" test examples/rules/tests/*.yaml >"$tmp/out" || fail "examples: $(cat "$tmp/out")"
grep -q '^ok   examples/rules/tests/resources.test.yaml: a failed workflow pages the console once$' "$tmp/out" || fail "ok line: $(cat "$tmp/out")"

# test: pod events (raw JSON): pod labels are matched as labels.<key>, the reason is in the summary
"$vigil" test tests/fixtures/rules-language/test/pods.test.yaml >"$tmp/out" || fail "pods: $(cat "$tmp/out")"

# test: failures are reported with expected vs got, exit 1
"$vigil" test tests/fixtures/rules-language/test/failing.test.yaml >"$tmp/out" 2>&1; rc=$?
[ $rc -eq 1 ] || fail "failing test exited $rc: $(cat "$tmp/out")"
grep -q '^ok   tests/fixtures/rules-language/test/failing.test.yaml: this case passes$' "$tmp/out" || fail "ok case: $(cat "$tmp/out")"
grep -q '^FAIL tests/fixtures/rules-language/test/failing.test.yaml: wrong summary and a missing page$' "$tmp/out" || fail "FAIL line: $(cat "$tmp/out")"
grep -q '^    - expected: at=0s status=firing summary="something else"$' "$tmp/out" || fail "expected line: $(cat "$tmp/out")"
grep -q '^    + unexpected: at 0s firing monitor=workflow-failed resource=job:v1:j:w severity=high pager=demo sink=console summary="j failed in w"$' "$tmp/out" || fail "got line: $(cat "$tmp/out")"
grep -q '^    missing incident: at=1m monitor=workflow-failed state=resolved$' "$tmp/out" || fail "incident: $(cat "$tmp/out")"
grep -q '^1 passed, 2 failed$' "$tmp/out" || fail "summary: $(cat "$tmp/out")"

# test: an unusable file
"$vigil" test tests/fixtures/rules-language/test/unusable.test.yaml >"$tmp/out" 2>&1; rc=$?
[ $rc -eq 1 ] || fail "unusable exited $rc"
grep -q 'cannot run: tests/fixtures/rules-language/test/unusable.test.yaml:5:9: an event needs "at"' "$tmp/out" || fail "unusable: $(cat "$tmp/out")"
"$vigil" test >/dev/null 2>&1; [ $? -eq 2 ] || fail "no file"
"$vigil" test /nonexistent.yaml >/dev/null 2>&1; [ $? -eq 2 ] || fail "missing file"
echo "rules cli ok"
