#!/usr/bin/env bash
# Formatting, checked in ctest (label unit): every tracked C file is as clang-format
# (the repository's .clang-format) would write it. `make format` rewrites them.
set -uo pipefail
cd "$(dirname "$0")/../.."
if ! command -v clang-format >/dev/null 2>&1; then
  echo "check_format: clang-format is missing (scripts/deps.sh installs it)" >&2
  exit 1
fi
out=$(git ls-files '*.c' '*.h' | xargs clang-format --dry-run 2>&1 | grep "warning:")
if [ -n "$out" ]; then
  echo "$out" | head -40 >&2
  echo "check_format: $(echo "$out" | wc -l) findings; run make format" >&2
  exit 1
fi
exit 0
