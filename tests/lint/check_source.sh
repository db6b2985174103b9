#!/usr/bin/env bash
# Source discipline, checked in ctest (label unit):
#  1. a module includes another module's public header only if its CMake target links it
#     (the DAG in docs/architecture.md), and never another module's private files;
#  2. third-party headers stay in their home module;
#  3. banned functions (strcpy strcat sprintf gets strtok atoi atol) do not appear.
set -uo pipefail
cd "$(dirname "$0")/../.."
fail=0
err() { echo "check_source: $*" >&2; fail=1; }

# module -> public headers it may include, derived from the CMake link graph: its own
# header, core's headers, and the headers of every vg_* library it links (transitively).
core_headers=$(ls include/vigil/*.h | xargs -n1 basename | sed 's/\.h$//' |
               grep -vxE 'consumer|state|rules|sinks|api|engine' | tr '\n' ' ')
links_of() { # the vg_* libraries that module $1's CMakeLists.txt links
  sed -n '/target_link_libraries(vg_'"$1"'/,/)/p' "$1/CMakeLists.txt" 2>/dev/null |
    grep -oE '\bvg_[a-z]+\b' | sed 's/^vg_//' | grep -vxE "$1|build" | sort -u
}
closure() { # module $1 and everything it links, transitively
  local todo=("$1") seen=" "
  while [ ${#todo[@]} -gt 0 ]; do
    local m=${todo[0]}; todo=("${todo[@]:1}")
    case "$seen" in *" $m "*) continue ;; esac
    seen="$seen$m "
    for d in $(links_of "$m"); do todo+=("$d"); done
  done
  echo "$seen"
}
declare -A allowed=()
for mod in core consumer state rules sinks api engine; do
  allowed[$mod]="$core_headers $(closure "$mod")"
done
allowed[cli]="*"
# third-party headers and the one module (besides tests/bench) that may include them
declare -A home=(
  ["librdkafka/"]="consumer"
  ["hiredis/"]="state"
  ["curl/"]="sinks"
  ["microhttpd.h"]="api"
  ["yaml.h"]="core"
)

for mod in "${!allowed[@]}"; do
  [ -d "$mod" ] || continue
  for f in $(git ls-files "$mod/*.c" "$mod/*.h" 2>/dev/null; ls "$mod"/*.c "$mod"/*.h 2>/dev/null); do
    [ -f "$f" ] || continue
    while IFS= read -r inc; do
      case "$inc" in
        vigil/*.h)
          h=${inc#vigil/}; h=${h%.h}
          if [ "${allowed[$mod]}" != "*" ] && ! grep -qw "$h" <<<"${allowed[$mod]}"; then
            err "$f includes vigil/$h.h but vg_$mod does not link vg_$h (CMake)"
          fi ;;
        *_int.h)
          base=$(basename "$inc")
          if [ ! -f "$mod/$base" ]; then err "$f includes another module's private header $inc"; fi ;;
        */*_int.h|../*)
          err "$f includes private file $inc" ;;
      esac
      for lib in "${!home[@]}"; do
        if [[ "$inc" == "$lib"* ]] && [ "$mod" != "${home[$lib]}" ]; then
          err "$f includes $inc, which belongs to ${home[$lib]}/"
        fi
      done
    done < <(sed -n 's/^#include [<"]\([^>"]*\)[>"].*/\1/p' "$f")
  done
done

# rules/ reads YAML only through core's tree
if grep -rn '#include <yaml.h>' rules/ 2>/dev/null; then err "rules/ must use core/yaml.c, not libyaml"; fi

# banned functions, in our C code
banned='\b(strcpy|strcat|sprintf|gets|strtok|atoi|atol)\s*\('
if grep -rnE "$banned" --include='*.c' --include='*.h' core consumer state rules sinks engine cli api tests bench 2>/dev/null \
   | grep -vE 'vsnprintf|snprintf|//.*banned'; then
  err "banned function used (see STYLE.md section 7)"
fi
exit $fail
