#!/usr/bin/env bash
# API contract checks for QA: validates both OpenAPI documents, checks join
# tokens with an independent verifier (PyJWT, scripts/join_token_interop.py),
# and runs schemathesis (all checks, stateful phase included) against both
# services, started here on free ports with the in-memory store and valid
# tokens: a player token for every operation, then a `service` token for the
# game-server operations (tag `game servers`).
#
#   scripts/qa.sh                 # a quick, fixed budget (what CI runs)
#   QA_EXAMPLES=200 scripts/qa.sh # a deeper run
#
# Needs the binaries (cargo build --workspace --bins), python3 and openssl;
# installs schemathesis, openapi-spec-validator and PyJWT into .venv on first
# use (and PyJWT into a .venv made before it was needed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

EXAMPLES="${QA_EXAMPLES:-20}"
SEED="${QA_SEED:-1}"
VENV=.venv
TARGET_DIR="${CARGO_TARGET_DIR:-target}"

# PyJWT 2 with its `crypto` extra (cryptography: EdDSA) verifies join tokens.
pyjwt_ok() {
    "$VENV/bin/python" -c 'import jwt, jwt.algorithms as a, sys; sys.exit(not (jwt.__version__.startswith("2.") and a.has_crypto))' \
        2>/dev/null
}
if [[ ! -x "$VENV/bin/schemathesis" || ! -x "$VENV/bin/openapi-spec-validator" ]] || ! pyjwt_ok; then
    echo "==> installing schemathesis, openapi-spec-validator and PyJWT into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "schemathesis==4.32.*" "openapi-spec-validator==0.9.*" "PyJWT[crypto]==2.*"
fi

echo "==> openapi-spec-validator"
"$VENV/bin/openapi-spec-validator" openapi/im-service.json openapi/game-service.json

status=0
# Starts game services of its own (key rotation, a 1-second token lifetime).
echo "==> join tokens with an independent verifier (PyJWT)"
"$VENV/bin/python" scripts/join_token_interop.py "$TARGET_DIR/debug" || status=1

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
IM_PORT=$(free_port)
GAME_PORT=$(free_port)
export JWT_SECRET="qa-secret-$(openssl rand -hex 24)" RUST_LOG=warn
PIDS=()
GAME_SERVERS_CONFIG=$(mktemp "${TMPDIR:-/tmp}/qa-game-servers.XXXXXX.toml")
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -f "$GAME_SERVERS_CONFIG"
}
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
SERVER=$(JWT_SECRET="$JWT_SECRET" "$TARGET_DIR/debug/xtask" token qa-server --service --ttl 3600)
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

# game_servers_config FILE: schemathesis.toml plus real session ids and join
# tokens (solo sessions of players who talk to nobody) as dictionaries that
# schemathesis draws half of its values from, so that end, heartbeat and verify
# get past their 404 and `malformed` answers.
game_servers_config() {
    local ids=() tokens=() i player session
    for i in 1 2 3 4; do
        player=$(JWT_SECRET="$JWT_SECRET" "$TARGET_DIR/debug/xtask" token "qa-host-$i" --ttl 3600) || return 1
        session=$(curl -fsS -X POST -H "Authorization: Bearer $player" "http://127.0.0.1:$GAME_PORT/v1/connect" |
            python3 -c 'import json, sys; s = json.load(sys.stdin)["session"]; assert s["join_token"]; print(s["id"], s["join_token"])') ||
            return 1
        ids+=("\"${session% *}\"")
        tokens+=("\"${session#* }\"")
    done
    local IFS=,
    {
        cat schemathesis.toml
        cat <<EOF

# Added by scripts/qa.sh for the game-server run.
[dictionaries.qa-sessions]
values = [${ids[*]}]

[dictionaries.qa-join-tokens]
values = [${tokens[*]}]

[parameters]
"path.id" = { dictionary = "qa-sessions", probability = 0.5 }
"body.token" = { dictionary = "qa-join-tokens", probability = 0.5 }
EOF
    } >"$1"
}

# With the player token the game-server operations only ever answer 403: run
# them again as a game server. The key set needs no token (done above).
config=$GAME_SERVERS_CONFIG
if ! game_servers_config "$config"; then
    echo "error: could not make sessions for the game-server run; running it without them" >&2
    config=schemathesis.toml
    status=1
fi
echo "==> schemathesis: game-service, game servers ($EXAMPLES examples per operation, seed $SEED)"
"$VENV/bin/schemathesis" --config-file "$config" run \
    "http://127.0.0.1:$GAME_PORT/openapi.json" \
    --header "Authorization: Bearer $SERVER" \
    --include-tag 'game servers' --exclude-path /v1/join-tokens/jwks.json \
    --checks all --max-examples "$EXAMPLES" --seed "$SEED" \
    --max-response-time 5 --no-color \
    || status=1
exit "$status"
