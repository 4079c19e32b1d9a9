# syntax=docker/dockerfile:1
# latchkey's container image: a release binary built in a Rust image, run on
# Debian slim as an unprivileged user. See docs/deploy.md.
#
#   docker build -t latchkey .
#   docker run --rm -p 8080:8080 \
#     -v latchkey-keys:/var/lib/latchkey/keys -v latchkey-data:/var/lib/latchkey/data latchkey
#
# The binary links only glibc (TLS is not compiled in: aws-lc-rs is static),
# so the build and runtime stages use the same Debian release.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=trixie

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY . .
# Cache the registry and the target folder between builds; the binary is
# copied out of the cache mount so the next stage can take it.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin latchkey \
    && install -m 0755 target/release/latchkey /usr/local/bin/latchkey

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# A fixed uid, so that volumes and key files can be owned by it (the server
# refuses private keys readable by group or others).
RUN groupadd --system --gid 10001 latchkey \
    && useradd --system --uid 10001 --gid latchkey --home-dir /var/lib/latchkey \
       --shell /usr/sbin/nologin latchkey \
    && install -d -m 0755 -o latchkey -g latchkey /var/lib/latchkey \
    && install -d -m 0700 -o latchkey -g latchkey /var/lib/latchkey/keys /var/lib/latchkey/data
COPY --from=build /usr/local/bin/latchkey /usr/local/bin/latchkey
USER 10001:10001
WORKDIR /var/lib/latchkey
# Listen on every interface inside the container; JSON logs for the log
# pipeline. Set DATABASE_URL=postgres://... and LATCHKEY__SERVER__ISSUER to
# the public https URL in production.
ENV LATCHKEY__SERVER__HOST=0.0.0.0 \
    LATCHKEY__KEYS__DIR=/var/lib/latchkey/keys \
    LATCHKEY__DATABASE__URL=sqlite:///var/lib/latchkey/data/latchkey.db \
    LATCHKEY__LOG__FORMAT=json
VOLUME ["/var/lib/latchkey/keys", "/var/lib/latchkey/data"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/latchkey"]
CMD ["serve"]
