#!/usr/bin/env bash
# `make install` (cmake --install of this build) into a temporary prefix, then the installed
# vigil used as installed: the binary runs and checks the installed config and rules; vigil(1)
# is found by `man` and renders without warnings; the bash completion completes commands from
# the installed binary; the systemd unit points at the prefix, keeps its hardening and passes
# `systemd-analyze verify` without a word; a second install keeps an edited config.
# Usage: test_deploy_install.sh BUILD_DIR SOURCE_DIR.
set -uo pipefail
build="$1"
src="$2"
fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
p="$tmp/prefix"

grep -qE '^install:' "$src/Makefile" || fail "no install target in the Makefile"
grep -qF 'cmake --install build/release --prefix $(PREFIX)' "$src/Makefile" || fail "make install does not run cmake --install"
cmake --install "$build" --prefix "$p" >"$tmp/install.log" 2>&1 || fail "cmake --install: $(cat "$tmp/install.log")"

for f in bin/vigil share/man/man1/vigil.1 etc/vigil/vigil.yaml etc/vigil/rules/pagers.yaml \
    share/bash-completion/completions/vigil lib/systemd/system/vigil.service \
    share/doc/vigil/deploy.md share/doc/vigil/examples/vigil.env.example; do
    [ -f "$p/$f" ] || fail "not installed: $f ($(cd "$p" && find . -type f | sort | tr '\n' ' '))"
done
[ -x "$p/bin/vigil" ] || fail "bin/vigil is not executable"

# the installed binary, away from the source tree
cd "$tmp" || fail "cd"
"$p/bin/vigil" version >"$tmp/out" 2>&1 || fail "vigil version: $(cat "$tmp/out")"
grep -qE '^vigil [0-9]+\.[0-9]+\.[0-9]+' "$tmp/out" || fail "vigil version printed: $(cat "$tmp/out")"
"$p/bin/vigil" help >"$tmp/out" 2>&1 || fail "vigil help: $(cat "$tmp/out")"
"$p/bin/vigil" check -c "$p/etc/vigil/vigil.yaml" >"$tmp/out" 2>&1 || fail "vigil check on the installed config: $(cat "$tmp/out")"
echo "installed check: $(cat "$tmp/out")"

# vigil(1): found by name, every section there, no groff warning on an 80-column terminal
MANPATH="$p/share/man" man -w vigil >/dev/null 2>&1 || fail "man -w vigil does not find the page"
MANPATH="$p/share/man" MANWIDTH=80 LC_ALL=C.UTF-8 man vigil >"$tmp/man.txt" 2>"$tmp/man.err" || fail "man vigil: $(cat "$tmp/man.err")"
[ ! -s "$tmp/man.err" ] || fail "man vigil warned: $(cat "$tmp/man.err")"
for section in NAME SYNOPSIS DESCRIPTION 'Exit codes' 'vigil run' 'vigil check' FILES 'SEE ALSO'; do
    grep -qE "^ {0,3}$section\$" "$tmp/man.txt" || fail "vigil(1) has no section \"$section\""
done
# generated from docs/cli.md: its synopsis lines are the page's
first=$(awk '/^```/{n++; next} n == 1 {print; exit}' "$src/docs/cli.md" | sed 's/ \+/ /g')
sed 's/^ *//; s/ \+/ /g' "$tmp/man.txt" >"$tmp/man.flat"
grep -qxF -- "$first" "$tmp/man.flat" || fail "the synopsis of docs/cli.md is not in vigil(1): $first"

# bash completion, as bash-completion loads it, against the installed binary
out=$(PATH="$p/bin:$PATH" bash -c '
    . "$1"
    COMP_WORDS=(vigil ch); COMP_CWORD=1; _vigil; echo "${COMPREPLY[*]}"
    COMP_WORDS=(vigil get -o ""); COMP_CWORD=3; _vigil; echo "${COMPREPLY[*]}"
    COMP_WORDS=(vigil run --); COMP_CWORD=2; _vigil; echo "${COMPREPLY[*]}"' _ "$p/share/bash-completion/completions/vigil" 2>&1)
[ "$(echo "$out" | sed -n 1p)" = "check" ] || fail "completion of 'vigil ch': $out"
[ "$(echo "$out" | sed -n 2p)" = "json table wide yaml" ] || fail "completion of 'vigil get -o': $out"
grep -qw -- '--debug' <<<"$(sed -n 3p <<<"$out")" || fail "completion of 'vigil run --': $out"

# the systemd unit
unit="$p/lib/systemd/system/vigil.service"
grep -qxF "ExecStart=$p/bin/vigil run -c $p/etc/vigil/vigil.yaml" "$unit" || fail "ExecStart not in the prefix: $(grep ExecStart "$unit")"
for line in Type=simple Restart=on-failure ProtectSystem=strict NoNewPrivileges=yes DynamicUser=yes StateDirectory=vigil; do
    grep -qxF "$line" "$unit" || fail "vigil.service lacks $line"
done
grep -qE '^  data_dir: /var/lib/vigil ' "$p/etc/vigil/vigil.yaml" || fail "the installed config's data_dir is not the unit's StateDirectory"
command -v systemd-analyze >/dev/null || fail "systemd-analyze not found (package systemd)"
MANPATH="$p/share/man" systemd-analyze verify "$unit" >"$tmp/verify" 2>&1 || fail "systemd-analyze verify: $(cat "$tmp/verify")"
[ ! -s "$tmp/verify" ] || fail "systemd-analyze verify warned: $(cat "$tmp/verify")"

# reinstalling (an upgrade) keeps the edited config and puts the new one beside it
echo "# edited" >>"$p/etc/vigil/vigil.yaml"
cmake --install "$build" --prefix "$p" >"$tmp/install.log" 2>&1 || fail "second cmake --install: $(cat "$tmp/install.log")"
grep -qxF "# edited" <<<"$(tail -1 "$p/etc/vigil/vigil.yaml")" || fail "the second install overwrote the edited config"
cmp -s "$p/etc/vigil/vigil.yaml.new" "$src/deploy/vigil.yaml" || fail "no vigil.yaml.new beside the kept config"
echo ok
