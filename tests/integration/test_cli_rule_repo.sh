#!/usr/bin/env bash
# examples/rule-repo as its CI runs it: `vigil check` and `vigil test` pass
# (through ci/check.sh too), and a typo in a team's rules fails the check
# with a GitHub annotation on the line at fault.
set -uo pipefail
vigil="$1"
fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cp -r examples/rule-repo "$tmp/repo"
cd "$tmp/repo" || fail "no copy"

"$vigil" check -c vigil.yaml >"$tmp/out" 2>&1 || fail "check: $(cat "$tmp/out")"
grep -q '^ok: 3 monitors, 2 pagers$' "$tmp/out" || fail "check count: $(cat "$tmp/out")"
"$vigil" test tests/*.test.yaml >"$tmp/out" 2>&1 || fail "test: $(cat "$tmp/out")"
grep -q '^4 passed, 0 failed$' "$tmp/out" || fail "test count: $(cat "$tmp/out")"
mkdir -p "$tmp/bin" && ln -s "$vigil" "$tmp/bin/vigil"
PATH="$tmp/bin:$PATH" sh ci/check.sh >"$tmp/out" 2>&1 || fail "ci/check.sh: $(cat "$tmp/out")"
grep -q 'vigil check --format github -c vigil.yaml' ci/github-actions.yml || fail "the workflow does not run check"
grep -q 'vigil test tests/\*.test.yaml' ci/github-actions.yml || fail "the workflow does not run test"

# a typo: the pull request gets an annotation on its line, and the job fails
sed -i 's/^    severity: high$/    sevrity: high/' teams/data/rules.yaml
"$vigil" check --format github -c vigil.yaml >"$tmp/out" 2>&1; rc=$?
[ $rc -eq 1 ] || fail "check of the typo exited $rc"
grep -qF '::error file=teams/data/rules.yaml,line=6,col=5::unknown key "sevrity" (did you mean "severity"?)' "$tmp/out" || fail "annotation: $(cat "$tmp/out")"
PATH="$tmp/bin:$PATH" sh ci/check.sh >"$tmp/out" 2>&1 && fail "ci/check.sh passed with a typo"
echo ok
