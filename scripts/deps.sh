#!/usr/bin/env bash
# Install vigil's build and test dependencies from Debian packages.
# A no-op when everything is already present. Used by `make demo`, `make test` and `make bench`.
set -euo pipefail

pkgs=(
    build-essential cmake pkg-config
    librdkafka-dev libcjson-dev libyaml-dev libhiredis-dev libcurl4-openssl-dev
    libmicrohttpd-dev libssl-dev libcmocka-dev
    redis-server redis-tools kcat curl
    socat  # a TLS endpoint for the webhook TLS test
    tzdata  # rules: pager mute windows in a time zone
    clang libclang-rt-14-dev clang-format
    chromium prometheus
    prometheus-alertmanager
    valgrind  # make bench: callgrind instructions per event
    pandoc  # generates the man page vigil(1) from docs/cli.md (scripts/gen-man.sh)
    docker-compose systemd python3-yaml  # the deployment tests: compose config, unit, k8s YAML
)
# chromium: the console's browser test (tests/browser, driven by playwright-core; never a
# downloaded browser). prometheus: `promtool check metrics` in the /metrics test.
# prometheus-alertmanager: the real Alertmanager of test_sinks_alertmanager.c.
# Node.js and npm: the machine's own when present, else Debian's.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    pkgs+=(nodejs npm)
fi

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        SUDO="sudo"
    fi
    echo "deps.sh: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages of the tests, from their committed package-lock.json, into the project
# (node_modules/ is ignored by git). Only when the lock changed since the last install.
root="$(cd "$(dirname "$0")/.." && pwd)"
# tests/node: the standardwebhooks verifier and ajv of test_sinks_signing.c.
for dir in tests/browser tests/node; do
    if [ ! -f "$root/$dir/node_modules/.package-lock.json" ] ||
       [ "$root/$dir/package-lock.json" -nt "$root/$dir/node_modules/.package-lock.json" ]; then
        echo "deps.sh: npm ci in $dir" >&2
        (cd "$root/$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund >/dev/null)
    fi
done
