#!/usr/bin/env bash
# Generate the man page vigil(1) from docs/cli.md with pandoc, so the command line is
# documented once: docs/cli.md's first code block becomes SYNOPSIS, its sections the
# page's sections, and a short NAME, FILES and SEE ALSO are added around them.
# Usage: scripts/gen-man.sh docs/cli.md VERSION OUT.1   (CMake runs it; `make install` installs it)
set -euo pipefail
src="$1"
version="$2"
out="$3"
command -v pandoc >/dev/null || { echo "gen-man.sh: pandoc not found (scripts/deps.sh installs it)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Pipe tables give every column the same width, which on a terminal squeezes the
# explanations; size each column but the last by its longest cell (capped), the last takes the rest.
# pandoc's man writer turns a width fraction f into f*70 ens; 64 ens plus 3 per column gap fit an
# 80-column terminal (man indents by 7), so `man vigil` prints no "table wider" warning.
cat >"$tmp/widths.lua" <<'LUA'
function Table(tbl)
  local n = #tbl.colspecs
  local longest = {}
  for i = 1, n do longest[i] = 1 end
  local function measure(rows)
    for _, row in ipairs(rows) do
      for i, cell in ipairs(row.cells) do
        local len = #pandoc.utils.stringify(cell.contents)
        if i <= n and len > longest[i] then longest[i] = len end
      end
    end
  end
  measure(tbl.head.rows)
  for _, body in ipairs(tbl.bodies) do measure(body.body) end
  local line, used = 64 - 3 * (n - 1), 0
  for i = 1, n - 1 do
    local w = math.min(longest[i] + 2, 28)
    tbl.colspecs[i] = {tbl.colspecs[i][1], w / 70}
    used = used + w
  end
  tbl.colspecs[n] = {tbl.colspecs[n][1], math.max(line - used, 20) / 70}
  return tbl
end
LUA

{
    printf '## NAME\n\nvigil - Resource status and runtime from Kafka, state in Redis, pages from rules\n\n'
    printf '## SYNOPSIS\n\n'
    # the first fenced block of docs/cli.md is the synopsis
    awk '/^```/ { n++; print; if (n == 2) exit; next } n == 1 { print }' "$src"
    printf '\n## DESCRIPTION\n\n'
    printf 'vigil consumes Resource lifecycle events from Kafka, keeps the current state of each\n'
    printf 'Resource in Redis, evaluates monitor rules and delivers pages to webhooks and the console.\n'
    printf 'The documents named below (docs/*.md in the source, share/doc/vigil when installed) describe\n'
    printf 'the configuration, rules, sinks and the HTTP API.\n\n'
    # the rest of docs/cli.md: after its title and synopsis block
    awk 'n >= 2 { print; next } /^```/ { n++ }' "$src"
    cat <<'MD'

## FILES

*/etc/vigil/vigil.yaml* (*PREFIX/etc/vigil/vigil.yaml* for `make install PREFIX=...`)
:   the configuration of the systemd unit *vigil.service*; rules in *rules/* beside it.

*/var/lib/vigil*
:   the embedded redis-server's data directory under systemd (`StateDirectory=vigil`).

## SEE ALSO

**redis-server**(1), **kcat**(1), **systemd.exec**(5); config.md, rules.md, sinks.md,
webhook.md, api.md, state.md, events.md and deploy.md in vigil's docs.
MD
} | pandoc --from markdown-smart --to man --standalone --shift-heading-level-by=-1 \
    --lua-filter "$tmp/widths.lua" \
    -M title=VIGIL -M section=1 -M header="vigil manual" -M footer="vigil $version" -M date="" \
    -o "$out.tmp"
mv "$out.tmp" "$out"
