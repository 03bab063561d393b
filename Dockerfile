# syntax=docker/dockerfile:1
#
# One image recipe for the lab's four Rust services; the build argument SERVICE picks which
# (mock-db-mcp, hitl-extauth, hitl-ui or scripted-model). The build context is the workspace
# root (cargo needs every member's manifest):
#   docker build --build-arg SERVICE=hitl-extauth --tag hitl-lab/hitl-extauth .
# `cargo xtask up` builds each image this way. Keep the context small with the workspace's
# .dockerignore (target/, .git/, .lab/, …).
#
# Ports, addresses and every other setting are the service's own defaults (its `--help`),
# overridden by the manifests' env: the image repeats none of them. The services listen on
# 0.0.0.0 by default, as a container needs; hitl-extauth's audit trail and any file a service
# writes by default land in /data, the working directory, which is the only writable path.

ARG SERVICE

# ---- gate-check: the conformance suite for any ext_authz gate, as one image ----
# `docker build --target gate-check --tag hitl-lab/gate-check .` The image is a minimal
# "checkout" at /hitl (the workspace markers and scenarios/, the attack catalogue) with the
# prebuilt xtask, mock-db-mcp and the pinned agentgateway; reports go to
# $CARGO_TARGET_DIR/gate-check (report.json, junit.xml). gate-check/action.yml runs it:
#   docker run --network host -v "$PWD/out:/out" -e CARGO_TARGET_DIR=/out hitl-lab/gate-check \
#     --ext-authz 127.0.0.1:9001 --admin http://127.0.0.1:8081
# A --decide-cmd runs under /bin/sh inside the container, so this image keeps a shell.
FROM rust:1.95-slim-bookworm AS gate-check-build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --package xtask --package mock-db-mcp \
 && install -D -m 0755 target/release/xtask /out/bin/xtask \
 && install -D -m 0755 target/release/mock-db-mcp /out/bin/mock-db-mcp

# agentgateway, the version the lab pins (harness/lab/src/versions.rs; tests/delivery.rs
# keeps this in step), checked against the release's published sha256.
FROM debian:bookworm-slim AS gate-check-agentgateway
ARG AGENTGATEWAY_VERSION=v1.4.1
ARG TARGETARCH
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
RUN set -eu; \
    asset="agentgateway-linux-${TARGETARCH:-amd64}"; \
    base="https://github.com/agentgateway/agentgateway/releases/download/${AGENTGATEWAY_VERSION}"; \
    curl -fsSLo /agentgateway "$base/$asset"; \
    want="$(curl -fsSL "$base/$asset.sha256" | cut -d' ' -f1)"; \
    echo "$want  /agentgateway" | sha256sum -c -; \
    chmod 0755 /agentgateway

FROM debian:bookworm-slim AS gate-check
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 65532 --create-home gate-check
WORKDIR /hitl
COPY Cargo.toml ./
COPY hitl-extauth/Cargo.toml hitl-extauth/
COPY scenarios/ scenarios/
COPY --from=gate-check-build /out/bin/ bin/
COPY --from=gate-check-agentgateway /agentgateway bin/agentgateway
LABEL org.opencontainers.image.title="hitl-lab/gate-check"
ENV HITL_LAB_BIN_DIR=/hitl/bin AGENTGATEWAY_BIN=/hitl/bin/agentgateway \
    CARGO_TARGET_DIR=/out RUST_LOG=warn
USER gate-check
ENTRYPOINT ["/hitl/bin/xtask", "gate-check"]

# ---- build: one release binary, nothing else ----
FROM rust:1.95-slim-bookworm AS build
ARG SERVICE
RUN case "$SERVICE" in \
      mock-db-mcp|hitl-extauth|hitl-ui|scripted-model) ;; \
      *) echo "set --build-arg SERVICE= to one of: mock-db-mcp hitl-extauth hitl-ui scripted-model (got '$SERVICE')" >&2; exit 1 ;; \
    esac
WORKDIR /src
COPY . .
# rusqlite's bundled SQLite is compiled with the image's gcc; hitl-ui's CSS, script and icon are
# compiled into its binary (no front-end toolchain, no CDN at run time); no TLS stack is linked
# (plain HTTP and h2c inside the cluster).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --package "$SERVICE" \
 && install -D -m 0755 "target/release/$SERVICE" /out/service \
 && install -d -m 0700 /out/data

# ---- run: glibc + libgcc only, no shell, non-root (uid 65532) ----
FROM gcr.io/distroless/cc-debian12:nonroot
ARG SERVICE
LABEL org.opencontainers.image.title="hitl-lab/${SERVICE}"
COPY --from=build /out/service /usr/local/bin/service
COPY --from=build --chown=65532:65532 /out/data /data
WORKDIR /data
ENV RUST_LOG=info
USER nonroot:nonroot
# Probes: GET /livez and /readyz (no shell or curl in the image; let the orchestrator probe them).
ENTRYPOINT ["/usr/local/bin/service"]
