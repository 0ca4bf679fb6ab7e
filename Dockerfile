# syntax=docker/dockerfile:1
#
# One image, both services: /usr/local/bin/game-service and /usr/local/bin/im-service.
# The Kubernetes Deployments pick one with `command:`; `docker run` starts the game
# service unless told otherwise (`--entrypoint /usr/local/bin/im-service`).
#
#   docker build -t ghcr.io/play-from-chat/play-from-chat:<tag> .
#
# Checked by scripts/deploy_check.sh (hadolint, checkov, and a consistency check:
# every COPY source exists, every binary is a workspace binary, every EXPOSEd port
# is a default port of the services).

# ---- builder: the toolchain of the workspace (rustc 1.95), Debian bookworm ----
FROM rust:1.95-slim-bookworm AS builder
WORKDIR /src

# 1. Manifests first. Every workspace member must be present for cargo to load the
#    workspace; the third-party dependencies are then compiled against stub sources,
#    in a layer that only a change of the manifests, Cargo.lock or .cargo/ invalidates.
COPY Cargo.toml Cargo.lock ./
COPY .cargo/ .cargo/
COPY shared-types/Cargo.toml shared-types/
COPY service-kit/Cargo.toml service-kit/
COPY im-service/Cargo.toml im-service/
COPY game-service/Cargo.toml game-service/
COPY loadgen/Cargo.toml loadgen/
COPY xtask/Cargo.toml xtask/
COPY tests/Cargo.toml tests/
RUN for crate in shared-types service-kit im-service game-service loadgen tests; do \
        mkdir -p "$crate/src" && : > "$crate/src/lib.rs"; \
    done \
 && mkdir -p xtask/src tests/e2e \
 && for main in im-service/src/main.rs game-service/src/main.rs loadgen/src/main.rs \
                xtask/src/main.rs tests/e2e/main.rs; do \
        echo 'fn main() {}' > "$main"; \
    done \
 && cargo build --release --locked -p game-service -p im-service --bins \
 && rm -rf shared-types/src service-kit/src im-service/src game-service/src

# 2. The crates the two binaries are made of (loadgen, xtask and the e2e suite keep
#    their stubs: they are not in the image, and editing them rebuilds nothing).
#    COPY keeps the files' own modification times, older than the stub build: touch
#    them so that cargo does not take the stubs' artifacts for up to date.
COPY shared-types/ shared-types/
COPY service-kit/ service-kit/
COPY im-service/ im-service/
COPY game-service/ game-service/
RUN find shared-types service-kit im-service game-service -type f -exec touch {} + \
 && cargo build --release --locked -p game-service -p im-service --bins \
 && mkdir -p /out \
 && cp target/release/game-service target/release/im-service /out/

# ---- runtime: glibc + libgcc only, no shell, no package manager, uid 65532 ----
FROM gcr.io/distroless/cc-debian12:nonroot
# The image has no shell and no HTTP client for a HEALTHCHECK to run; Kubernetes
# probes /healthz and /readyz over HTTP instead (k8s/base/*/deployment.yaml).
#checkov:skip=CKV_DOCKER_2:no shell or HTTP client in a distroless image; Kubernetes probes /healthz and /readyz
LABEL org.opencontainers.image.title="play-from-chat" \
      org.opencontainers.image.description="game-service and im-service" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/game-service /out/im-service /usr/local/bin/
# The services write nothing to disk; the Deployments mount an emptyDir at /tmp and
# keep the root filesystem read-only.
USER 65532:65532
# 8080: game-service HTTP, 8081: im-service HTTP, 9090: /metrics (METRICS_BIND_ADDR).
EXPOSE 8080 8081 9090
ENTRYPOINT ["/usr/local/bin/game-service"]
