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
# Probes: GET /healthz (no shell or curl in the image; let the orchestrator probe it).
ENTRYPOINT ["/usr/local/bin/service"]
