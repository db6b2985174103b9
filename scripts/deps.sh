#!/usr/bin/env bash
# Install vigil's build and test dependencies from Debian packages.
# A no-op when everything is already present. Used by `make demo`, `make test` and `make bench`.
set -euo pipefail

pkgs=(
    build-essential cmake pkg-config
    librdkafka-dev libcjson-dev libyaml-dev libhiredis-dev libcurl4-openssl-dev
    libmicrohttpd-dev libssl-dev libcmocka-dev
    redis-server redis-tools kcat curl
    clang libclang-rt-14-dev
)

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
