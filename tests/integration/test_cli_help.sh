#!/usr/bin/env bash
# `vigil help CMD` and `vigil CMD --help` print the same usage, which
# describes every flag the command accepts; an unknown command gets a
# did-you-mean and exit 2.
set -uo pipefail
vigil="$1"
fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# command: the flags its usage must describe
flags() {
    case "$1" in
    run) echo "--config --debug --help" ;;
    get) echo "--type --workspace --name --owner --all --output --config --redis --prefix --help" ;;
    history) echo "--count --output --config --redis --prefix --help" ;;
    dlq) echo "--output --config --redis --prefix --help list retry drop" ;;
    incidents) echo "--all --since --output --config --redis --prefix --help resolve show" ;;
    silence) echo "--match --for --start --comment --author --all --output --config --redis --prefix --help expire" ;;
    check) echo "--config --format --help github" ;;
    test) echo "--verbose --help" ;;
    demo) echo "--events --verbose --help" ;;
    config) echo "print --config --help" ;;
    sink) echo "test --severity --all --config --help" ;;
    replay) echo "--from-beginning --from --topic --dry-run --page --config --help" ;;
    esac
}
commands="run get history dlq incidents silence check test demo"
for extra in config sink replay; do
    "$vigil" help "$extra" >/dev/null 2>&1 && commands="$commands $extra"
done
for c in $commands; do
    "$vigil" help "$c" >"$tmp/help" 2>"$tmp/err"; rc=$?
    [ $rc -eq 0 ] || fail "vigil help $c exited $rc: $(cat "$tmp/err")"
    "$vigil" "$c" --help >"$tmp/flag" 2>&1 || fail "vigil $c --help exited non-zero"
    cmp -s "$tmp/help" "$tmp/flag" || fail "vigil help $c differs from vigil $c --help"
    grep -q "^usage: vigil $c" "$tmp/help" || fail "$c: no usage line: $(cat "$tmp/help")"
    for f in $(flags "$c"); do
        # described: the flag at the start of a line of the flag table
        grep -qE "^ +(-[a-zA-Z], )?$f( |$)" "$tmp/help" || grep -qE "^  $f " "$tmp/help" ||
            grep -qE "\b$f\b.*[a-z]" <(grep -v '^usage\|^       vigil' "$tmp/help") ||
            fail "vigil help $c does not describe $f: $(cat "$tmp/help")"
    done
done

# a flag a command does not take: exit 2, the refusal names the command, then its usage
for c in $commands "incidents show"; do
    # shellcheck disable=SC2086 # "incidents show" is two words
    "$vigil" $c --no-such-flag >"$tmp/out" 2>"$tmp/err"; rc=$?
    [ $rc -eq 2 ] || fail "vigil $c --no-such-flag exited $rc"
    head -1 "$tmp/err" | grep -qxF "vigil $c: unrecognized option '--no-such-flag'" ||
        fail "vigil $c --no-such-flag: $(head -1 "$tmp/err")"
    grep -q "^usage: vigil $c" "$tmp/err" || fail "vigil $c --no-such-flag: no usage: $(cat "$tmp/err")"
done

# the global list names every command
"$vigil" help >"$tmp/help" || fail "vigil help"
for c in $commands; do
    grep -qE "^  $c\b" "$tmp/help" || fail "vigil help does not list $c"
done

# unknown commands: did-you-mean, exit 2 (also through `vigil help`)
"$vigil" chek >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] || fail "unknown command exited $rc"
grep -qF 'vigil: unknown command "chek" (did you mean "check"?)' "$tmp/err" || fail "hint: $(cat "$tmp/err")"
"$vigil" help histroy >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] || fail "help of an unknown command exited $rc"
grep -qF '(did you mean "history"?)' "$tmp/err" || fail "help hint: $(cat "$tmp/err")"
"$vigil" frobnicate >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] || fail "far unknown command exited $rc"
grep -q "did you mean" "$tmp/err" && fail "a hint for a far name: $(cat "$tmp/err")"
echo ok
