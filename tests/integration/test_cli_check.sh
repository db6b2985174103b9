#!/usr/bin/env bash
# `vigil check` reports every error in one run: config errors (each key, each
# sink) do not hide the rule errors after them; sinks/ errors carry the line
# and column of the key they are about; an unknown template path and a
# misspelt sink type get did-you-mean; a tab is named; an unreadable file
# exits 2; --format github prints workflow annotations.
set -uo pipefail
vigil="$1"
fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

cat >"$tmp/rules.yaml" <<'YAML'
monitors:
  - name: failed
    match: {type: [workflow]}
    when: {runtime: {to: failed}}
    sevrity: high
pagers:
  - name: p
    match: {severity: [high]}
    sinks: [hoook]
YAML
cat >"$tmp/vigil.yaml" <<YAML
kafka:
  brokrs: localhost:9092
  batch_size: many
rules: [$tmp/rules.yaml]
sinks:
  ops:
    type: webhok
    url: http://127.0.0.1:9/x
  hook:
    type: webhook
    url: http://127.0.0.1:9/x
    template: '{"name": "{{resource.nme}}"}'
  signed:
    type: webhook
    url: http://127.0.0.1:9/x
    headers:
      Idempotency-Key: mine
YAML
"$vigil" check -c "$tmp/vigil.yaml" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] || fail "check exited $rc: $(cat "$tmp/err")"
want() { grep -qF -- "$1" "$tmp/err" || fail "missing \"$1\" in: $(cat "$tmp/err")"; }
want "$tmp/vigil.yaml:2:3: unknown key \"brokrs\" (did you mean \"brokers\"?)"
want "$tmp/vigil.yaml:3:15: expected an integer, got \"many\""
want "$tmp/vigil.yaml:7:11: unknown sink type \"webhok\" (did you mean \"webhook\"? expected webhook, slack, alertmanager, kafka, console, teams, email or pagerduty)"
want "$tmp/vigil.yaml:12:15: sink hook: template: unknown path \"resource.nme\" (did you mean \"resource.name\"?)"
want "$tmp/vigil.yaml:17:7: sink signed: header Idempotency-Key is set by vigil"
want "$tmp/rules.yaml:5:5: unknown key \"sevrity\" (did you mean \"severity\"?)"
want "$tmp/rules.yaml:9:13: pager \"p\": unknown sink \"hoook\" (did you mean \"hook\"?"
grep -q '^7 errors$' "$tmp/err" || fail "count: $(cat "$tmp/err")"

# the same findings as GitHub workflow annotations, on stdout
"$vigil" check --format github -c "$tmp/vigil.yaml" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] || fail "github exited $rc"
[ "$(wc -l <"$tmp/out")" -eq 7 ] || fail "github lines: $(cat "$tmp/out")"
grep -qF "::error file=$tmp/vigil.yaml,line=2,col=3::unknown key \"brokrs\" (did you mean \"brokers\"?)" "$tmp/out" || fail "github: $(cat "$tmp/out")"
grep -qF "::error file=$tmp/rules.yaml,line=5,col=5::unknown key \"sevrity\"" "$tmp/out" || fail "github rules: $(cat "$tmp/out")"

# a tab is named as such, not as libyaml's "cannot start any token"
printf 'kafka:\n\tgroup: g\n' >"$tmp/tab.yaml"
"$vigil" check -c "$tmp/tab.yaml" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] || fail "tab exited $rc"
want "$tmp/tab.yaml:2:1: tab character: YAML indents with spaces, never tabs"
grep -q "cannot start any token" "$tmp/err" && fail "libyaml's words: $(cat "$tmp/err")"

# a YAML error in the config hides neither the rule files named nor the count
"$vigil" check -c "$tmp/tab.yaml" "$tmp/rules.yaml" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] || fail "tab+rules exited $rc"
want "$tmp/rules.yaml:5:5: unknown key \"sevrity\""
grep -q '^2 errors$' "$tmp/err" || fail "tab+rules count: $(cat "$tmp/err")"

# files that cannot be read: exit 2 (a usage error), naming the file
"$vigil" check -c "$tmp/missing.yaml" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] || fail "missing config exited $rc"
want "$tmp/missing.yaml: No such file or directory"
"$vigil" check "$tmp/missing-rules.yaml" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] || fail "missing rules exited $rc"
want "$tmp/missing-rules.yaml: No such file or directory"

# a clean config still passes
cat >"$tmp/good.yaml" <<YAML
rules: [$PWD/examples/rules]
sinks:
  console: {type: console}
  hook: {type: webhook, url: "http://127.0.0.1:9/x", template: '{"n": "{{resource.name}}"}'}
YAML
"$vigil" check -c "$tmp/good.yaml" >"$tmp/out" 2>&1 || fail "good config: $(cat "$tmp/out")"
grep -q '^ok: ' "$tmp/out" || fail "good: $(cat "$tmp/out")"
"$vigil" check --format github -c "$tmp/good.yaml" >"$tmp/out" 2>&1 || fail "good github"
[ -s "$tmp/out" ] && fail "github output for a clean config: $(cat "$tmp/out")"
echo "ok"
