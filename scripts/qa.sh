#!/usr/bin/env bash
# API contract checks for QA: validates both OpenAPI documents, checks join
# tokens with an independent verifier (PyJWT, scripts/join_token_interop.py),
# then, in two rounds that run side by side, starts both services on free
# ports, once on the in-memory store and once on a private redis-server
# (started here on a free port, nothing saved, killed at exit), and against
# each round runs:
#   - schemathesis (all checks, stateful phase included) on each service with
#     a player token, then on the game-server operations (tag `game servers`)
#     with a `service` token and real session ids;
#   - clients generated from the documents playing the whole flow
#     (scripts/clients_check.sh: openapi-python-client, openapi-typescript +
#     openapi-fetch).
# The game service is fuzzed by a player who chats with an available partner,
# so that its connect gives real prompts, which the documents' links carry to
# accept, reject and the session operations in the stateful phase.
#
#   scripts/qa.sh                 # a quick, fixed budget (what CI runs)
#   QA_EXAMPLES=200 scripts/qa.sh # a deeper run
#
# Needs the binaries (cargo build --workspace --bins), python3, openssl,
# redis-server and redis-cli (scripts/test.sh installs them), node and npm;
# installs schemathesis, openapi-spec-validator and PyJWT into .venv on first
# use (and PyJWT into a .venv made before it was needed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

EXAMPLES="${QA_EXAMPLES:-20}"
SEED="${QA_SEED:-1}"
VENV=.venv
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET_DIR/debug"

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
for tool in redis-server redis-cli openssl curl; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "error: $tool is missing (scripts/test.sh installs redis-server, redis-tools and openssl)" >&2
        exit 1
    }
done

echo "==> openapi-spec-validator"
"$VENV/bin/openapi-spec-validator" openapi/im-service.json openapi/game-service.json

status=0
# Starts game services of its own (key rotation, a 1-second token lifetime):
# alone, before the rounds load the machine.
echo "==> join tokens with an independent verifier (PyJWT)"
"$VENV/bin/python" scripts/join_token_interop.py "$BIN" || status=1

WORK=$(mktemp -d "${TMPDIR:-/tmp}/qa.XXXXXX")
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# until_ok SECONDS COMMAND...: polls COMMAND until it succeeds, for at most SECONDS.
until_ok() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || { echo "error: still failing after the deadline: $*" >&2; return 1; }
        sleep 0.1
    done
}
token() { JWT_SECRET="$JWT_SECRET" "$BIN/xtask" token "$@" --ttl 3600; }

# Not the quickstart's development secret, which the services refuse with Redis.
export JWT_SECRET="qa-secret-$(openssl rand -hex 24)" RUST_LOG=warn
PLAYER=$(token qa-player)
GAMER=$(token qa-gamer)
FRIEND=$(token qa-friend)
SERVER=$(token qa-server --service)

# The private Redis: a free port (never 6379), nothing written to disk.
REDIS_PORT=$(free_port)
while [[ "$REDIS_PORT" == 6379 ]]; do REDIS_PORT=$(free_port); done
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$WORK" --logfile "$WORK/redis.log" &
PIDS+=($!)
# The game service on Redis signs join tokens with a key of its own.
openssl genpkey -algorithm ed25519 -out "$WORK/join-token.pem" 2>/dev/null

declare -A IM_PORT GAME_PORT
# start_round NAME [REDIS_URL]: both services, on the memory store or on Redis.
start_round() {
    local name=$1 store=()
    [[ -n "${2:-}" ]] && store=(REDIS_URL="$2" JOIN_TOKEN_KEY_FILE="$WORK/join-token.pem")
    IM_PORT[$name]=$(free_port)
    GAME_PORT[$name]=$(free_port)
    # Rate limiting stays on (429 is documented), with room for the fuzzer's pace.
    env "${store[@]}" RATE_LIMIT_PER_SEC=500 RATE_LIMIT_BURST=1000 \
        BIND_ADDR="127.0.0.1:${IM_PORT[$name]}" "$BIN/im-service" &
    PIDS+=($!)
    env "${store[@]}" RATE_LIMIT_PER_SEC=500 RATE_LIMIT_BURST=1000 \
        BIND_ADDR="127.0.0.1:${GAME_PORT[$name]}" IM_URL="http://127.0.0.1:${IM_PORT[$name]}" \
        "$BIN/game-service" &
    PIDS+=($!)
}

# chatting IM_URL: qa-gamer and qa-friend are available and both posted in one
# conversation, so qa-gamer's connect gives an invite prompt naming qa-friend.
chatting() {
    local im=$1 chat who
    for who in "$GAMER" "$FRIEND"; do
        curl -fsS -X PUT "$im/v1/presence" -H "Authorization: Bearer $who" \
            -H 'content-type: application/json' -d '{"status":"available"}' >/dev/null || return 1
    done
    chat=$(curl -fsS -X POST "$im/v1/conversations" -H "Authorization: Bearer $GAMER" \
        -H 'content-type: application/json' -d '{"participants":["qa-friend"]}' |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])') || return 1
    for who in "$GAMER" "$FRIEND"; do
        curl -fsS -X POST "$im/v1/conversations/$chat/messages" -H "Authorization: Bearer $who" \
            -H 'content-type: application/json' -d '{"text":"a game?"}' >/dev/null || return 1
    done
}

# game_servers_config FILE GAME_URL: schemathesis.toml plus real session ids and
# join tokens (solo sessions of players who talk to nobody) as dictionaries
# that schemathesis draws half of its values from, so that end, heartbeat and
# verify get past their 404 and `malformed` answers.
game_servers_config() {
    local ids=() tokens=() i player session
    for i in 1 2 3 4; do
        player=$(token "qa-host-$i") || return 1
        session=$(curl -fsS -X POST -H "Authorization: Bearer $player" "$2/v1/connect" |
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

# Each check of the rounds runs in the background into a log of its own; the
# logs are printed in order once everything has finished.
JOBS=()
declare -A JOB_PID
job() {
    local label=$1
    shift
    "$@" >"$WORK/${label//[^a-z]/-}.log" 2>&1 &
    JOB_PID[$label]=$!
    JOBS+=("$label")
}
schemathesis_run() {
    local config=$1 url=$2 bearer=$3
    shift 3
    "$VENV/bin/schemathesis" --config-file "$config" run "$url/openapi.json" \
        --header "Authorization: Bearer $bearer" \
        --checks all --max-examples "$EXAMPLES" --seed "$SEED" \
        --max-response-time 5 --no-color "$@"
}

until_ok 10 redis-cli -p "$REDIS_PORT" ping
start_round memory
start_round redis "redis://127.0.0.1:$REDIS_PORT"
clients=()
for round in memory redis; do
    im="http://127.0.0.1:${IM_PORT[$round]}"
    game="http://127.0.0.1:${GAME_PORT[$round]}"
    until_ok 20 curl -fsS "$im/readyz"
    until_ok 20 curl -fsS "$game/readyz"

    echo "==> $round store: schemathesis on im-service and game-service (as a player, as game servers; $EXAMPLES examples per operation, seed $SEED)"
    job "$round: schemathesis im-service" schemathesis_run schemathesis.toml "$im" "$PLAYER"
    if ! chatting "$im"; then
        echo "error: could not make a conversation for the game-service run" >&2
        status=1
    fi
    job "$round: schemathesis game-service" schemathesis_run schemathesis.toml "$game" "$GAMER"
    # With the player token the game-server operations only ever answer 403:
    # run them again as a game server. The key set needs no token (done above).
    config="$WORK/$round-game-servers.toml"
    if ! game_servers_config "$config" "$game"; then
        echo "error: could not make sessions for the game-server run; running it without them" >&2
        config=schemathesis.toml
        status=1
    fi
    job "$round: schemathesis game-service, game servers" schemathesis_run "$config" "$game" "$SERVER" \
        --include-tag 'game servers' --exclude-path /v1/join-tokens/jwks.json
    clients+=("$game" "$im")
done
job "generated clients, both rounds" scripts/clients_check.sh "${clients[@]}"

for label in "${JOBS[@]}"; do
    if wait "${JOB_PID[$label]}"; then result=ok; else result=FAILED; status=1; fi
    echo "==> $label: $result"
    cat "$WORK/${label//[^a-z]/-}.log"
done
exit "$status"
