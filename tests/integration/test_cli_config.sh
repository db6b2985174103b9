#!/usr/bin/env bash
# `vigil config print`: the effective config (file, then VIGIL_* variables over
# it) as YAML that vigil loads again, with every secret redacted.
set -uo pipefail
vigil="$1"
fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

cat >"$tmp/vigil.yaml" <<YAML
kafka:
  brokers: file-broker:9092
  group: from-file
rules: [$PWD/examples/rules]
sinks:
  console: {type: console}
  ops:
    type: webhook
    url: https://hooks.example.com/services/T000/B000/filesecret
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
    headers: {Authorization: Bearer headersecret, X-Team: data}
http:
  token: httpsecret
YAML
VIGIL_KAFKA_BROKERS=env-broker:9092 VIGIL_REDIS_URL='redis://:redispw@redis.example.com:6379/1' \
VIGIL_REDIS_LAYOUT=partitioned \
VIGIL_KAFKA_PROPERTIES_SASL_PASSWORD=kafkapw VIGIL_KAFKA_PROPERTIES_SECURITY_PROTOCOL=SASL_SSL \
VIGIL_SINKS_OPS_URL=https://hooks.example.com/services/T000/B000/envsecret VIGIL_LOG_LEVEL=warn \
    "$vigil" config print -c "$tmp/vigil.yaml" >"$tmp/out.yaml" 2>"$tmp/err" || fail "print: $(cat "$tmp/err")"
has() { grep -qF -- "$1" "$tmp/out.yaml" || fail "missing '$1' in: $(cat "$tmp/out.yaml")"; }
has 'brokers: "env-broker:9092"'
has 'group: "from-file"'
has 'url: "redis://:<redacted>@redis.example.com:6379/1"'
has '"sasl.password": "<redacted>"'
has '"security.protocol": "SASL_SSL"'
has 'url: "https://hooks.example.com/<redacted>"'
has 'secret: ["<redacted>"]'
has 'prefetch_mb: 48'
has 'cache_resources: 50000'
has 'cluster: false'
has 'wait_replicas: 0'
has 'commit_connections: 4'
has 'layout: partitioned'
has 'claim_idle: 60000ms'
has 'idle_poll_ms: 1000'
has '"Authorization": "<redacted>"'
has '"X-Team": "data"'
has 'token: "<redacted>"'
has 'level: warn'
for secret in filesecret envsecret redispw kafkapw headersecret httpsecret whsec_MfKQ; do
    grep -q "$secret" "$tmp/out.yaml" && fail "secret $secret printed: $(cat "$tmp/out.yaml")"
done
# what it prints is a config vigil reads back: the one complaint is the redacted signing secret
"$vigil" check -c "$tmp/out.yaml" >"$tmp/check" 2>&1
grep -q '^1 error$' "$tmp/check" || fail "printed config does not load: $(cat "$tmp/check")"
grep -q 'sink ops: secret must start with "whsec_"' "$tmp/check" || fail "printed config: $(cat "$tmp/check")"

# without a file: the defaults plus the environment
VIGIL_REDIS_PREFIX=envprefix "$vigil" config print >"$tmp/out.yaml" || fail "print without -c"
has 'prefix: "envprefix"'
has 'brokers: "embedded"'
# a bad override is a config error naming the variable, exit 2
VIGIL_KAFKA_BATCH_SIZE=lots "$vigil" config print >"$tmp/out.yaml" 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] || fail "bad override exited $rc"
grep -qF '$VIGIL_KAFKA_BATCH_SIZE: expected an integer, got "lots"' "$tmp/err" || fail "bad override: $(cat "$tmp/err")"
"$vigil" config frobnicate >/dev/null 2>&1; [ $? -eq 2 ] || fail "unknown subcommand"
echo ok
