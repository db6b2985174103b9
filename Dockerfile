# vigil's container image: build on Debian bookworm, run on bookworm-slim with the runtime
# libraries only, as an unprivileged user. The image's /etc/vigil/vigil.yaml is
# deploy/vigil.container.yaml: Kafka, Redis, the webhook and the API token come from the
# environment (deploy/vigil.env.example). docker-compose.yml builds and runs it; docs/deploy.md.
#   docker build -t vigil:0.1.0 .
#   docker run --env-file deploy/vigil.env -p 127.0.0.1:8089:8089 vigil:0.1.0

FROM debian:bookworm-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config \
        librdkafka-dev libcjson-dev libyaml-dev libhiredis-dev libcurl4-openssl-dev \
        libmicrohttpd-dev libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# No tests (they need cmocka and servers), no man page (pandoc); warnings stay errors.
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVIGIL_TESTS=OFF -DVIGIL_MAN=OFF \
    && cmake --build /build -j"$(nproc)" --target vigil \
    && strip --strip-debug /build/cli/vigil

FROM debian:bookworm-slim
# The shared libraries vigil links (tests/integration/test_deploy_image.sh checks this line
# against `ldd vigil`), CA certificates for TLS to Kafka and sinks, curl for the HEALTHCHECK.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        librdkafka1 libhiredis0.14 libcjson1 libyaml-0-2 libcurl4 libmicrohttpd12 \
        ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 vigil \
    && useradd --system --uid 10001 --gid vigil --home-dir /nonexistent --shell /usr/sbin/nologin vigil
COPY --from=build /build/cli/vigil /usr/local/bin/vigil
COPY deploy/vigil.container.yaml /etc/vigil/vigil.yaml
COPY examples/rules/*.yaml deploy/rules/*.yaml /etc/vigil/rules/
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
EXPOSE 8089
# /healthz on the loopback: 127.0.0.1 is in the config's http.allowed_hosts.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8089/healthz"]
ENTRYPOINT ["/usr/local/bin/vigil"]
CMD ["run", "-c", "/etc/vigil/vigil.yaml"]
