# bash completion for vigil (installed as share/bash-completion/completions/vigil).
# Commands, subcommands, flags and flag values are read from the vigil being completed
# (`vigil help`, `vigil CMD --help`), so they follow the binary instead of a second list
# kept here; only `--debug`'s facilities and file arguments are known locally.

# The usage text of `vigil CMD --help` (or `vigil help`), brackets kept.
_vigil_usage()
{
    local bin="$1"
    shift
    "$bin" "$@" 2>&1
}

_vigil()
{
    local cur="${COMP_WORDS[COMP_CWORD]}"
    local prev=""
    local bin="${COMP_WORDS[0]}"
    local cmd="" usage words
    local i

    [ "$COMP_CWORD" -gt 0 ] && prev="${COMP_WORDS[COMP_CWORD - 1]}"
    bin="${bin/#\~/$HOME}"
    command -v "$bin" >/dev/null 2>&1 || bin=vigil
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
        -*) ;;
        *)
            cmd="${COMP_WORDS[i]}"
            break
            ;;
        esac
    done

    # the first word: a command ("  run    [-c ...]" lines of `vigil help`)
    if [ -z "$cmd" ]; then
        words=$( (_vigil_usage "$bin" help | awk '/^  [a-z]/ { print $1 }'; printf 'help\nversion\n') | sort -u)
        COMPREPLY=($(compgen -W "$words" -- "$cur"))
        return 0
    fi
    if [ "$cmd" = help ]; then
        words=$(_vigil_usage "$bin" help | awk '/^  [a-z]/ { print $1 }' | sort -u)
        COMPREPLY=($(compgen -W "$words" -- "$cur"))
        return 0
    fi

    usage=$(_vigil_usage "$bin" "$cmd" --help)
    case "$prev" in
    -c | --config | -e | --events)
        compopt -o filenames 2>/dev/null
        COMPREPLY=($(compgen -f -- "$cur"))
        return 0
        ;;
    -d | --debug)
        # facilities: a comma-separated list; complete the last element
        local head="" last="$cur"
        if [[ "$cur" == *,* ]]; then
            head="${cur%,*},"
            last="${cur##*,}"
        fi
        COMPREPLY=($(compgen -P "$head" -W "api cli consumer kafka rules sinks state all" -- "$last"))
        return 0
        ;;
    -*)
        # "FLAG a|b|c" in the usage: complete the alternatives; "FLAG VALUE": nothing to offer
        words=$(printf '%s\n' "$usage" | grep -oE -- "(^|[[ ])$prev [a-z0-9]+(\\|[a-z0-9]+)+" |
            sed -E "s/^[[ ]?$prev //" | tr '|' '\n' | sort -u)
        if [ -n "$words" ]; then
            COMPREPLY=($(compgen -W "$words" -- "$cur"))
            return 0
        fi
        if printf '%s\n' "$usage" | grep -qE -- "$prev [A-Z]"; then
            return 0
        fi
        ;;
    esac

    if [[ "$cur" == -* ]]; then
        words=$(printf '%s\n' "$usage" | grep -oE -- '(^|[[ ])--?[a-zA-Z][a-z-]*' | sed -E 's/^[[ ]//' | sort -u)
        COMPREPLY=($(compgen -W "$words --help" -- "$cur"))
        return 0
    fi

    # "vigil CMD SUB": the bare lowercase words right after CMD once the [...] groups are gone
    local nargs=0
    for ((i = i + 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
        -c | --config | --redis | --prefix | -o | --output | -f | --format | -t | --type | -w | \
            --workspace | -n | --name | --owner | --since | --match | --for | --start | --comment | \
            --author | -e | --events | -d | --debug) ((i++)) ;;
        -*) ;;
        *) nargs=$((nargs + 1)) ;;
        esac
    done
    if [ "$nargs" -eq 0 ]; then
        words=$(printf '%s\n' "$usage" | sed -E ':a; s/\[[^][]*\]//g; ta' |
            grep -oE -- "vigil $cmd +[a-z]+( |$)" | awk '{ print $3 }' | sort -u)
        if [ -n "$words" ]; then
            COMPREPLY=($(compgen -W "$words" -- "$cur"))
            return 0
        fi
    fi
    compopt -o filenames 2>/dev/null
    COMPREPLY=($(compgen -f -- "$cur"))
    return 0
}
complete -F _vigil vigil
