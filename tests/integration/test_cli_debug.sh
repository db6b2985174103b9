#!/usr/bin/env bash
# `vigil run --debug FACILITY,...`: every facility the sources log under
# (the first argument of VG_LOG_*) is accepted; an unknown one is a usage
# error (exit 2) before anything starts, naming the closest facility and
# every known one. Runs from the source dir; no servers.
set -uo pipefail
vigil="$1"
fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

facilities=$(find . -path ./build -prune -o -path ./tests -prune -o \( -name '*.c' -o -name '*.h' \) -print0 |
  xargs -0 perl -0777 -ne 'print "$1$2\n" while /VG_LOG_(?:ERROR|WARN|INFO|DEBUG)\(\s*"([a-z_0-9]+)"|VG_LOG_AT\([^,()]+,\s*"([a-z_0-9]+)"/g' |
  sort -u)
[ "$(echo "$facilities" | wc -w)" -ge 5 ] || fail "found too few facilities in the sources: $facilities"
for f in $facilities; do
  "$vigil" run --debug "$f" --help >"$tmp/out" 2>"$tmp/err"; rc=$?
  [ $rc -eq 0 ] || fail "--debug $f (logged under in the sources) exited $rc: $(cat "$tmp/err")"
done
"$vigil" run --debug "$(echo $facilities | tr ' ' ,)" --help >/dev/null 2>"$tmp/err" ||
  fail "--debug with every facility: $(cat "$tmp/err")"
"$vigil" run --debug all --help >/dev/null 2>"$tmp/err" || fail "--debug all: $(cat "$tmp/err")"

# unknown: exit 2 with the known list (and --help after it is never reached)
"$vigil" run --debug bogus --help >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] || fail "--debug bogus exited $rc"
[ ! -s "$tmp/out" ] || fail "--debug bogus printed: $(cat "$tmp/out")"
known="known: $(echo $facilities | sed 's/ /, /g'), all"
grep -qF "vigil run: unknown debug facility \"bogus\"; $known" "$tmp/err" ||
  fail "--debug bogus: $(cat "$tmp/err") (want the known list: $known)"

# close to a known one: did you mean; also in a list and in --debug=LIST
"$vigil" run --debug=consumer,rule --help >/dev/null 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] || fail "--debug=consumer,rule exited $rc"
grep -qF 'unknown debug facility "rule" (did you mean "rules"?)' "$tmp/err" || fail "hint: $(cat "$tmp/err")"

# before anything starts: no config is read, no embedded stack is started
"$vigil" run -c "$tmp/missing.yaml" --debug sinks,stat >/dev/null 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] || fail "--debug sinks,stat exited $rc"
grep -qF '"stat" (did you mean "state"?)' "$tmp/err" || fail "stat: $(cat "$tmp/err")"
echo ok
