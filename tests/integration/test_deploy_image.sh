#!/usr/bin/env bash
# The container side, without a Docker engine (this machine has only the CLI):
#  - Dockerfile: every stage on debian:bookworm-slim, a non-root user, a HEALTHCHECK on /healthz,
#    no -dev package in the final stage, and its apt-get line covers every library `ldd vigil`
#    shows (each library's Debian package is on the line or a dependency of one on it);
#  - the image's config and rules, laid out as the Dockerfile copies them, pass `vigil check`
#    with deploy/vigil.env.example's values; so does the SASL_SSL example;
#  - docker-compose.yml passes `docker compose config -q` with deploy/vigil.env from the
#    example, has every service, and the filled-in env file is git-ignored;
#  - deploy/k8s agrees with the image: uid, probe Host header in http.allowed_hosts, 3 replicas.
# Usage: test_deploy_image.sh VIGIL SOURCE_DIR.
set -uo pipefail
vigil="$1"
src="$2"
fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$src" || fail "no $src"
df=Dockerfile
[ -f $df ] || fail "no Dockerfile"

# -- Dockerfile shape
froms=$(grep -E '^FROM ' $df)
[ "$(echo "$froms" | wc -l)" -ge 2 ] || fail "not multi-stage: $froms"
if grep -vqE '^FROM debian:bookworm-slim( AS [a-z]+)?$' <<<"$froms"; then fail "a stage not on debian:bookworm-slim: $froms"; fi
# the final stage: from the last FROM on, continuation lines joined
final=$(awk '/^FROM /{buf=""} {buf = buf $0 "\n"} END {printf "%s", buf}' $df | sed -e ':a' -e '/\\$/N; s/\\\n/ /; ta')
user=$(echo "$final" | awk '$1 == "USER" {u = $2} END {print u}')
[ -n "$user" ] || fail "the final stage has no USER"
case "${user%%:*}" in 0 | root) fail "the final stage runs as $user" ;; esac
grep -qE '^HEALTHCHECK .*/healthz' <<<"$final" || fail "no HEALTHCHECK on /healthz"
pkgs=$(echo "$final" | grep -oE 'apt-get install [^&]*' | sed 's/apt-get install//' | tr ' ' '\n' | grep -E '^[a-z0-9]' | sort -u)
[ -n "$pkgs" ] || fail "no apt-get install line in the final stage"
if grep -E -- '-dev$' <<<"$pkgs"; then fail "development packages in the final stage"; fi
echo "final stage installs: $(echo $pkgs)"

# -- every library vigil links comes with the final stage's packages
declare -A have=()
queue=()
for p in $pkgs; do have[$p]=1; queue+=("$p"); done
while [ ${#queue[@]} -gt 0 ]; do
    p="${queue[0]}"
    queue=("${queue[@]:1}")
    deps=$(dpkg-query -W -f='${Depends}, ${Pre-Depends}' "$p" 2>/dev/null) || continue
    for d in $(echo "$deps" | tr ',|' '\n\n' | sed -E 's/\(.*\)//; s/:any//; s/^ +//; s/ +$//' | grep -E '^[a-z0-9]'); do
        if [ -z "${have[$d]:-}" ]; then have[$d]=1; queue+=("$d"); fi
    done
done
# What vigil loads: its NEEDED libraries (readelf) and theirs (ldd of each). The sanitizer
# runtimes of this test build (VIGIL_SANITIZE; the image's build has none) and what only they
# pull in (libstdc++) are left out.
ldd "$vigil" >"$tmp/ldd" || fail "ldd $vigil"
: >"$tmp/libs"
for soname in $(readelf -d "$vigil" | sed -nE 's/.*\(NEEDED\).*\[(.*)\]/\1/p'); do
    case "$soname" in libasan.* | libubsan.* | libtsan.*) continue ;; esac
    path=$(awk -v n="$soname" '$1 == n && $2 == "=>" {print $3}' "$tmp/ldd")
    [ -n "$path" ] || fail "ldd does not resolve $soname: $(cat "$tmp/ldd")"
    echo "$path" >>"$tmp/libs"
    ldd "$path" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' >>"$tmp/libs"
done
checked=0
while read -r path; do
    owner=""
    for cand in "$path" "$(readlink -f "$path")" "/usr$path"; do
        owner=$(dpkg -S "$cand" 2>/dev/null | head -1 | cut -d: -f1) && [ -n "$owner" ] && break
    done
    [ -n "$owner" ] || fail "no Debian package owns $path"
    [ -n "${have[$owner]:-}" ] || fail "$path ($owner) is linked by vigil but not installed by the Dockerfile's final stage"
    checked=$((checked + 1))
done < <(sort -u "$tmp/libs")
[ $checked -ge 6 ] || fail "only $checked libraries checked: $(cat "$tmp/ldd")"
echo "ldd: $checked libraries, each from a package the image installs"

# -- the image's config and rules as the Dockerfile lays them out, with the example env
grep -qF 'COPY deploy/vigil.container.yaml /etc/vigil/vigil.yaml' $df || fail "the image's config is not deploy/vigil.container.yaml"
grep -qF 'COPY examples/rules/*.yaml deploy/rules/*.yaml /etc/vigil/rules/' $df || fail "the image's rules changed: update this test"
mkdir -p "$tmp/etc/rules"
cp deploy/vigil.container.yaml "$tmp/etc/vigil.yaml"
cp examples/rules/*.yaml deploy/rules/*.yaml "$tmp/etc/rules/"
(
    set -a
    . deploy/vigil.env.example
    set +a
    "$vigil" check -c "$tmp/etc/vigil.yaml"
) >"$tmp/check.out" 2>&1 || fail "vigil check on the image's config: $(cat "$tmp/check.out")"
grep -qE '^  listen: 0\.0\.0\.0:8089' deploy/vigil.container.yaml || fail "the container must listen on 0.0.0.0:8089"
grep -qE '^  allowed_hosts: \[.*127\.0\.0\.1' deploy/vigil.container.yaml || fail "the HEALTHCHECK's 127.0.0.1 is not in http.allowed_hosts"
(
    set -a
    . deploy/vigil.env.example
    KAFKA_USERNAME=vigil KAFKA_PASSWORD=secret
    set +a
    "$vigil" check -c deploy/vigil.sasl.yaml "$src/examples/rules"
) >"$tmp/check.out" 2>&1 || fail "vigil check on deploy/vigil.sasl.yaml: $(cat "$tmp/check.out")"

# -- docker-compose.yml, with deploy/vigil.env made from the example (as a user would)
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose >/dev/null; then
    compose=(docker-compose)
else
    fail "neither 'docker compose' nor docker-compose (scripts/deps.sh installs docker-compose)"
fi
mkdir -p "$tmp/compose/deploy"
cp docker-compose.yml Dockerfile "$tmp/compose/"
cp deploy/vigil.env.example "$tmp/compose/deploy/vigil.env"
(cd "$tmp/compose" && "${compose[@]}" config -q) 2>"$tmp/compose.err" || fail "${compose[*]} config -q: $(cat "$tmp/compose.err")"
services=$(cd "$tmp/compose" && "${compose[@]}" config --services | sort | tr '\n' ' ')
[ "$services" = "kafka receiver redis topics vigil " ] || fail "compose services: $services"
rm "$tmp/compose/deploy/vigil.env"
if (cd "$tmp/compose" && "${compose[@]}" config -q) 2>/dev/null; then fail "compose config passed without deploy/vigil.env: is vigil's env_file gone?"; fi
grep -qE 'KAFKA_PROCESS_ROLES: broker,controller' docker-compose.yml || fail "Kafka is not in KRaft mode"
grep -qE 'appendonly", "yes"' docker-compose.yml || fail "Redis without AOF"
git check-ignore -q deploy/vigil.env || fail "deploy/vigil.env is not git-ignored"
if git check-ignore -q deploy/vigil.env.example; then fail "deploy/vigil.env.example is ignored"; fi

# -- deploy/k8s against the image
python3 - "$user" <<'PY' || fail "deploy/k8s/vigil.yaml disagrees with the image"
import sys, yaml
uid = sys.argv[1].split(":")[0]
docs = [d for d in yaml.safe_load_all(open("deploy/k8s/vigil.yaml")) if d]
dep = next(d for d in docs if d["kind"] == "Deployment")
cfg = yaml.safe_load(open("deploy/vigil.container.yaml"))
assert dep["spec"]["replicas"] == 3, "replicas"
pod = dep["spec"]["template"]["spec"]
assert str(pod["securityContext"]["runAsUser"]) == uid, "runAsUser %s, image USER %s" % (pod["securityContext"]["runAsUser"], uid)
c = pod["containers"][0]
for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
    get = c[probe]["httpGet"]
    assert get["path"] == path, probe
    host = {h["name"]: h["value"] for h in get.get("httpHeaders", [])}.get("Host")
    assert host in cfg["http"]["allowed_hosts"], "%s Host %r not in http.allowed_hosts" % (probe, host)
assert any(s.get("name") == "vigil" for s in docs if s["kind"] == "Service" for s in [s["metadata"]]), "service"
assert "vigil" in cfg["http"]["allowed_hosts"], "the Service name is not an allowed host"
print("k8s: 3 replicas, uid", uid, ", probes with an allowed Host")
PY
echo ok
