#!/usr/bin/env bash
# Runs the browser tests (tests/browser/*.test.mjs) in a headless Chromium against the real
# services of target/debug (or $CARGO_TARGET_DIR/debug), each test file on private Redis and
# services started by tests/browser/harness.mjs.
#
#   cargo build --workspace --bins && scripts/browser_test.sh           # every test file
#   scripts/browser_test.sh tests/browser/cross_origin.test.mjs          # some of them
#   scripts/browser_test.sh --install-only                               # only what it needs
#
# Installs what is missing: Debian's chromium with apt-get (as root or with sudo -n) when
# $CHROMIUM (default /usr/bin/chromium) is absent, and the npm packages of tests/browser
# (`npm ci`) when node_modules is missing or was installed from another package-lock.json.
# redis-server, openssl, node and npm are assumed present (scripts/test.sh installs the first two).
#
# Outputs (git-ignored): services' and Redis's logs in tests/browser/output/<test file>/,
# emptied at each run; screenshots in tests/browser/screenshots/ (or $BROWSER_SCREENSHOTS),
# failure-*.png (from h.reportFailure) removed at each run.
# BROWSER_TEST_LOG=1 echoes the services' output. E2E_ALLOW_STALE=1 tests binaries older than
# their sources. Exit status: the tests'.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
BROWSER_DIR="$ROOT/tests/browser"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
export CHROMIUM

as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        return 1
    fi
}

ensure_chromium() {
    if [[ -x "$CHROMIUM" ]]; then
        echo "chromium found: $CHROMIUM"
        return 0
    fi
    if [[ "$CHROMIUM" != /usr/bin/chromium ]]; then
        echo "error: CHROMIUM=$CHROMIUM does not exist" >&2
        return 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: $CHROMIUM is missing and apt-get is not available: install Chromium and set CHROMIUM" >&2
        return 1
    fi
    echo "chromium is missing: installing Debian's chromium with apt-get"
    if ! as_root true; then
        echo "error: chromium is not installed and this user is neither root nor allowed to sudo." >&2
        echo "       Install it yourself (Debian: apt-get install -y --no-install-recommends chromium) and rerun." >&2
        return 1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
    [[ -x "$CHROMIUM" ]] || {
        echo "error: $CHROMIUM still missing after apt-get install chromium" >&2
        return 1
    }
}

# node_modules is up to date when it was installed from this very package-lock.json: `npm ci`
# leaves the lockfile's hash in a stamp file.
ensure_npm_packages() {
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || {
        echo "error: node and npm are needed (Node 20 or newer)" >&2
        return 1
    }
    local stamp="$BROWSER_DIR/node_modules/.installed-from-lock.sha256"
    local want
    want="$(sha256sum "$BROWSER_DIR/package-lock.json" | cut -d' ' -f1)"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        echo "npm packages up to date (tests/browser/node_modules)"
        return 0
    fi
    echo "installing the npm packages of tests/browser (npm ci)"
    # playwright-core downloads nothing; the variable makes sure no browser ever is.
    (cd "$BROWSER_DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
    echo "$want" >"$stamp"
}

check_binaries() {
    local target="${CARGO_TARGET_DIR:-target}"
    [[ "$target" = /* ]] || target="$ROOT/$target"
    local missing=0
    for bin in im-service game-service xtask; do
        if [[ ! -x "$target/debug/$bin" ]]; then
            echo "error: $target/debug/$bin is missing: run \`cargo build --workspace --bins\` first" >&2
            missing=1
        fi
    done
    return "$missing"
}

started=$SECONDS
ensure_chromium
ensure_npm_packages
if [[ "${1:-}" == --install-only ]]; then
    exit 0
fi
check_binaries

if [[ $# -gt 0 ]]; then
    files=("$@")
else
    shopt -s nullglob
    files=("$BROWSER_DIR"/*.test.mjs)
    shopt -u nullglob
fi
if [[ ${#files[@]} -eq 0 ]]; then
    echo "error: no test files (tests/browser/*.test.mjs)" >&2
    exit 1
fi

rm -rf "$BROWSER_DIR/output"
# Failure screenshots of an earlier run would mislead; named screenshots are overwritten.
rm -f "${BROWSER_SCREENSHOTS:-$BROWSER_DIR/screenshots}"/failure-*.png
status=0
node --test --test-concurrency=1 --test-timeout=180000 "${files[@]}" || status=$?
if [[ $status -ne 0 ]]; then
    echo "browser tests failed (exit $status); services' and Redis's logs: tests/browser/output/" >&2
fi
echo "browser tests: $((SECONDS - started)) s"
exit "$status"
