# syntax=docker/dockerfile:1
# Portcullis native host in a small image: `portcullis serve` on SQLite (the default, a file in
# the /var/lib/portcullis volume) or PostgreSQL (PORTCULLIS_DATABASE_URL=postgres://…; see
# compose.yaml). Every setting is a PORTCULLIS_* variable (docs/configuration.md); a public
# deployment must set PORTCULLIS_ISSUER (https), PORTCULLIS_ADMIN_API_KEY and
# PORTCULLIS_MASTER_KEY.
#
#   docker build -t portcullis .
#   docker run -p 9000:9000 -p 127.0.0.1:9001:9001 -v portcullis-data:/var/lib/portcullis \
#     -e PORTCULLIS_ISSUER=https://auth.example.com \
#     -e PORTCULLIS_ADMIN_API_KEY=… -e PORTCULLIS_MASTER_KEY=… portcullis
#
# Port 9000 is the public listener; port 9001 is the admin API. Never publish 9001 to the
# internet: publish it on the host's loopback only (as above) or keep it on a private network.
#
# tests/tests/dockerfile.rs checks the facts this file relies on (binary path, ports, settings,
# healthcheck, user); CI builds the same release binary (`cargo build --release -p portcullis
# --locked`, in scripts/test), then builds this file with podman, that binary standing in for
# the builder stage (no image registry there), and runs the image (scripts/test-image).

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
RUN cargo build --release -p portcullis --locked

FROM debian:bookworm-slim
# ca-certificates: outbound HTTPS (client metadata documents, client and IdP JWK Sets).
# curl: the healthcheck.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 portcullis \
    && useradd --system --uid 10001 --gid portcullis --home-dir /var/lib/portcullis \
        --shell /usr/sbin/nologin portcullis \
    && mkdir -p /var/lib/portcullis \
    && chown portcullis:portcullis /var/lib/portcullis
COPY --from=builder /src/target/release/portcullis /usr/local/bin/portcullis
ENV PORTCULLIS_LISTEN=0.0.0.0:9000 \
    PORTCULLIS_ADMIN_LISTEN=0.0.0.0:9001 \
    PORTCULLIS_DATABASE_URL=sqlite:///var/lib/portcullis/portcullis.db
WORKDIR /var/lib/portcullis
VOLUME ["/var/lib/portcullis"]
USER 10001:10001
EXPOSE 9000 9001
# The port follows PORTCULLIS_LISTEN when it is overridden.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD curl -fsS -o /dev/null "http://127.0.0.1:${PORTCULLIS_LISTEN##*:}/health" || exit 1
ENTRYPOINT ["portcullis"]
CMD ["serve"]
