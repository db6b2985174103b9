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

# module -> public headers of other modules it may include
declare -A allowed=(
  [core]="err mem log util json yaml config event page"
  [consumer]="err mem log util json yaml config event page consumer"
  [state]="err mem log util json yaml config event page state"
  [rules]="err mem log util json yaml config event page rules"
  [sinks]="err mem log util json yaml config event page sinks consumer state"
  [api]="err mem log util json yaml config event page api state rules sinks consumer"
  [engine]="err mem log util json yaml config event page consumer state rules sinks api engine"
  [cli]="*"
)
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
            err "$f includes vigil/$h.h but $mod does not depend on that module"
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
