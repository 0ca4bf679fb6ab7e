#!/usr/bin/env bash
# API contract checks for QA: validates both OpenAPI documents and runs
# schemathesis (all checks, stateful phase included) against both services,
# started here on free ports with the in-memory store and valid tokens.
#
#   scripts/qa.sh                 # a quick, fixed budget (what CI runs)
#   QA_EXAMPLES=200 scripts/qa.sh # a deeper run
#
# Needs the binaries (cargo build --bins) and python3; installs schemathesis and
# openapi-spec-validator into .venv on first use.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

EXAMPLES="${QA_EXAMPLES:-20}"
SEED="${QA_SEED:-1}"
VENV=.venv
TARGET_DIR="${CARGO_TARGET_DIR:-target}"

if [[ ! -x "$VENV/bin/schemathesis" || ! -x "$VENV/bin/openapi-spec-validator" ]]; then
    echo "==> installing schemathesis and openapi-spec-validator into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "schemathesis==4.32.*" "openapi-spec-validator==0.9.*"
fi

echo "==> openapi-spec-validator"
"$VENV/bin/openapi-spec-validator" openapi/im-service.json openapi/game-service.json

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
IM_PORT=$(free_port)
GAME_PORT=$(free_port)
export JWT_SECRET="qa-secret-$RANDOM$RANDOM" RUST_LOG=warn
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# Rate limiting stays on (429 is documented), with room for the fuzzer's pace.
RATE_LIMIT_PER_SEC=500 RATE_LIMIT_BURST=1000 BIND_ADDR="127.0.0.1:$IM_PORT" \
    "$TARGET_DIR/debug/im-service" &
PIDS+=($!)
RATE_LIMIT_PER_SEC=500 RATE_LIMIT_BURST=1000 BIND_ADDR="127.0.0.1:$GAME_PORT" \
    IM_URL="http://127.0.0.1:$IM_PORT" "$TARGET_DIR/debug/game-service" &
PIDS+=($!)
for port in "$IM_PORT" "$GAME_PORT"; do
    for _ in $(seq 1 100); do
        curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
        sleep 0.1
    done
done

PLAYER=$(JWT_SECRET="$JWT_SECRET" "$TARGET_DIR/debug/xtask" token qa-player --ttl 3600)
status=0
for service in "im-service:$IM_PORT" "game-service:$GAME_PORT"; do
    name=${service%%:*}
    port=${service##*:}
    echo "==> schemathesis: $name ($EXAMPLES examples per operation, seed $SEED)"
    "$VENV/bin/schemathesis" --config-file schemathesis.toml run \
        "http://127.0.0.1:$port/openapi.json" \
        --header "Authorization: Bearer $PLAYER" \
        --checks all --max-examples "$EXAMPLES" --seed "$SEED" \
        --max-response-time 5 --no-color \
        || status=1
done
exit "$status"
