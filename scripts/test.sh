#!/usr/bin/env bash
# Runs every check of the workspace: the one command README and CI call.
#
#   scripts/test.sh            # from any directory
#
# Steps: install redis-server if missing (the e2e suite starts private
# servers), rustfmt, clippy, build the binaries the e2e suite runs, test, the
# e2e suite again on a Redis Cluster (E2E_REDIS=cluster), then the API contract
# checks (OpenAPI validation + schemathesis, scripts/qa.sh), the browser tests
# (Chromium + Playwright, scripts/browser_test.sh), then the deployment
# (scripts/deploy_check.sh, run beside the build, and scripts/deploy_run_check.py).
# One shared target dir, one build: clippy checks, `cargo build` compiles the
# binaries, `cargo test` reuses them.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-always}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"
# Panics get a backtrace; anyhow errors (the e2e suite's failures) stay readable.
export RUST_LIB_BACKTRACE="${RUST_LIB_BACKTRACE:-0}"

declare -a SUMMARY=()

now() { date +%s.%N; }

# step NAME COMMAND... : runs COMMAND, prints its name and duration, stops on failure.
step() {
    local name="$1"
    shift
    printf '\n==> %s\n' "$name"
    local start end elapsed status=0
    start="$(now)"
    "$@" || status=$?
    end="$(now)"
    elapsed="$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f", e - s }')"
    if [[ "$status" -ne 0 ]]; then
        printf '==> %s FAILED after %ss (exit %s)\n' "$name" "$elapsed" "$status"
        SUMMARY+=("$(printf '%-28s %8ss  FAILED' "$name" "$elapsed")")
        print_summary
        exit "$status"
    fi
    printf '==> %s ok in %ss\n' "$name" "$elapsed"
    SUMMARY+=("$(printf '%-28s %8ss  ok' "$name" "$elapsed")")
}

print_summary() {
    printf '\n%s\n' "---- summary ----"
    printf '%s\n' "${SUMMARY[@]}"
}

# redis-server: the suites start private servers; openssl: they make join-token
# keys with `openssl genpkey`, as the README tells operators to; nft (nftables):
# `e2e::vanished` makes a stream's client vanish by dropping its packets; ip
# (iproute2): `e2e::partition` runs a replica in a network namespace of its own.
ensure_redis() {
    if command -v redis-server >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1 \
        && command -v nft >/dev/null 2>&1 && command -v ip >/dev/null 2>&1; then
        echo "redis-server found: $(command -v redis-server); openssl found: $(command -v openssl); nft found: $(command -v nft); ip found: $(command -v ip)"
        return 0
    fi
    echo "redis-server, openssl, nft or ip is missing: installing redis-server, redis-tools, openssl, nftables and iproute2 with apt-get"
    local -a sudo=()
    if [[ "$(id -u)" -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            echo "error: a package is missing and this user is neither root nor allowed to sudo." >&2
            echo "       Install them yourself (Debian/Ubuntu: apt-get install -y redis-server redis-tools openssl nftables iproute2) and rerun." >&2
            return 1
        fi
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: a package is missing and apt-get is not available; install redis-server, openssl, nftables and iproute2 and rerun." >&2
        return 1
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server redis-tools openssl nftables iproute2
    command -v redis-server >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1 \
        && command -v nft >/dev/null 2>&1 && command -v ip >/dev/null 2>&1 || {
        echo "error: redis-server, openssl, nft or ip still missing after apt-get install" >&2
        return 1
    }
}

# A minimal toolchain image may lack rustfmt/clippy; rustup adds them in seconds.
ensure_components() {
    local missing=()
    cargo fmt --version >/dev/null 2>&1 || missing+=(rustfmt)
    cargo clippy --version >/dev/null 2>&1 || missing+=(clippy)
    if [[ "${#missing[@]}" -eq 0 ]]; then
        return 0
    fi
    if ! command -v rustup >/dev/null 2>&1; then
        echo "error: cargo ${missing[*]} missing and rustup not available to add them" >&2
        return 1
    fi
    rustup component add "${missing[@]}"
}

ensure_cargo_deny() {
    if cargo deny --version >/dev/null 2>&1; then
        cargo deny --version
        return 0
    fi
    echo "cargo-deny is missing: installing it from crates.io (about 3 minutes, once per machine)"
    cargo install cargo-deny --locked --quiet
}

step "redis-server + openssl + nft" ensure_redis
step "rustfmt + clippy present" ensure_components
step "cargo-deny present" ensure_cargo_deny
step "chromium + browser-test packages" bash scripts/browser_test.sh --install-only
# The deployment's static checks (image lint, manifests against the Kubernetes
# schemas, checkov, settings the services read) need no build: they run beside it.
DEPLOY_LOG="$(mktemp "${TMPDIR:-/tmp}/deploy-check.XXXXXX.log")"
bash scripts/deploy_check.sh >"$DEPLOY_LOG" 2>&1 &
DEPLOY_PID=$!
deploy_static_checks() {
    local status=0
    wait "$DEPLOY_PID" || status=$?
    cat "$DEPLOY_LOG"
    return "$status"
}
step "cargo fmt --check" cargo fmt --all -- --check
step "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings
step "cargo build --bins" cargo build --workspace --bins
step "cargo test" cargo test --workspace --no-fail-fast
# The same e2e suite with every world on one private 3-master Redis Cluster (the tests that
# kill or pause Redis itself keep a standalone server of their own).
# `--workspace --test e2e`, not `-p e2e`: the same feature set as the build above, so
# nothing is compiled again. The failover tests and storms bring Redis of their own (a
# cluster with replicas, a Sentinel group): the first pass ran them already.
step "e2e on a Redis Cluster" env E2E_REDIS=cluster cargo test --workspace --test e2e -- \
    --skip failover::
step "API contract (scripts/qa.sh)" bash scripts/qa.sh
# The reference web client and cross-origin pages in a real headless Chromium.
step "browser tests" bash scripts/browser_test.sh
step "deployment: static checks" deploy_static_checks
# The rendered Deployments started as Kubernetes would start them, in a private
# network namespace (probes, metrics port, one pairing, SIGTERM within the grace).
step "deployment: the manifests run" \
    .venv/bin/python scripts/deploy_run_check.py "${CARGO_TARGET_DIR:-target}/debug" k8s/overlays/dev k8s/overlays/production
step "supply chain (cargo deny)" cargo deny check licenses bans

print_summary
echo "all checks passed"
