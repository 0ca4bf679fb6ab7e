#!/usr/bin/env bash
# Clients generated from the OpenAPI documents run the whole flow against
# running services (scripts/qa.sh calls this with the services it started):
#
#   JWT_SECRET=… scripts/clients_check.sh GAME_URL IM_URL [GAME_URL IM_URL …]
#
# (each pair is one deployment of both services: the clients are generated and
# compiled once, then play the flow against each pair in turn).
#
# - Python: openapi-python-client (pinned, installed into .venv) generates a
#   package per document into a temporary directory; tests/clients/python/flow.py
#   runs the flow with the generated functions and models.
# - TypeScript: openapi-typescript generates the `paths` types of each document
#   into tests/clients/typescript/generated/ (not committed), tsc type-checks
#   tests/clients/typescript/flow.ts (strict: a schema change that breaks a
#   call fails here) and compiles it, and node runs it with openapi-fetch.
#
# The tools are installed on first use only (.venv; `npm ci` again only when
# package-lock.json changed). JWT_SECRET must be the services' secret: the flows
# mint their players' tokens with `xtask token`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ $# -eq 0 || $(($# % 2)) -ne 0 || -z "${JWT_SECRET:-}" ]]; then
    echo "usage: JWT_SECRET=… $0 GAME_URL IM_URL [GAME_URL IM_URL …]" >&2
    exit 2
fi
VENV=.venv
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
XTASK="$(cd "$TARGET_DIR/debug" && pwd)/xtask"
export XTASK
OPENAPI_PYTHON_CLIENT=0.29.1
TS_DIR=tests/clients/typescript

[[ -x "$XTASK" ]] || { echo "error: $XTASK is missing: cargo build --workspace --bins" >&2; exit 1; }
command -v npm >/dev/null 2>&1 || { echo "error: node and npm are needed for the TypeScript client" >&2; exit 1; }

if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
fi
if [[ "$("$VENV/bin/openapi-python-client" --version 2>/dev/null)" != *" $OPENAPI_PYTHON_CLIENT" ]]; then
    echo "==> installing openapi-python-client $OPENAPI_PYTHON_CLIENT into $VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "openapi-python-client==$OPENAPI_PYTHON_CLIENT"
fi

# `npm ci` wipes node_modules: only when the lock file is not the one installed.
lock_sum=$(sha256sum "$TS_DIR/package-lock.json" | cut -d' ' -f1)
stamp="$TS_DIR/node_modules/.installed-from-lock"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]]; then
    echo "==> npm ci ($TS_DIR)"
    (cd "$TS_DIR" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$lock_sum" >"$stamp"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/clients-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
status=0

echo "==> Python client (openapi-python-client $OPENAPI_PYTHON_CLIENT)"
# No post hooks: the generated code is imported, not read, so it needs no formatter.
printf 'post_hooks: []\n' >"$WORK/generator.yaml"
for doc in game:game-service im:im-service; do
    "$VENV/bin/openapi-python-client" generate --meta none --config "$WORK/generator.yaml" \
        --path "openapi/${doc#*:}.json" --output-path "$WORK/${doc%%:*}_client" >"$WORK/generate-${doc%%:*}.log" 2>&1 ||
        { cat "$WORK/generate-${doc%%:*}.log" >&2; exit 1; }
    # A document the generator could not fully turn into code is a failure too.
    if grep -q -i 'warning' "$WORK/generate-${doc%%:*}.log"; then
        echo "error: openapi-python-client warned about openapi/${doc#*:}.json:" >&2
        cat "$WORK/generate-${doc%%:*}.log" >&2
        status=1
    fi
done
for ((i = 1; i < $#; i += 2)); do
    game=${!i} im_index=$((i + 1))
    echo "--- against $game and ${!im_index}"
    "$VENV/bin/python" tests/clients/python/flow.py "$game" "${!im_index}" "$WORK" || status=1
done

echo "==> TypeScript client (openapi-typescript + openapi-fetch, tsc strict)"
rm -rf "$TS_DIR/generated" "$TS_DIR/dist"
(
    cd "$TS_DIR" &&
        node_modules/.bin/openapi-typescript ../../../openapi/game-service.json -o generated/game.d.ts >/dev/null &&
        node_modules/.bin/openapi-typescript ../../../openapi/im-service.json -o generated/im.d.ts >/dev/null &&
        # One tsc pass type-checks (strict) and, only when that is clean, emits dist/.
        node_modules/.bin/tsc -p . --noEmitOnError
) || status=1
if [[ -f "$TS_DIR/dist/flow.js" ]]; then
    for ((i = 1; i < $#; i += 2)); do
        game=${!i} im_index=$((i + 1))
        echo "--- against $game and ${!im_index}"
        node "$TS_DIR/dist/flow.js" "$game" "${!im_index}" || status=1
    done
fi
exit "$status"
