#!/usr/bin/env bash
# Quickstart: both services on 127.0.0.1 with the embedded in-memory store.
#
#   scripts/dev.sh                       # Ctrl-C stops both
#   JWT_SECRET=... scripts/dev.sh        # another dev secret
#
# No REDIS_URL: each service keeps its state in memory (lost on exit).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The quickstart's published secret (shared_types::auth::DEV_SECRET): the
# services accept it with the in-memory store only.
export JWT_SECRET="${JWT_SECRET:-dev-secret-for-the-quickstart-only-never-in-production}"
export RUST_LOG="${RUST_LOG:-info}"
unset REDIS_URL

IM_ADDR="127.0.0.1:8081"
GAME_ADDR="127.0.0.1:8080"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"

echo "==> building both services"
cargo build --bins

IM_PID=""
GAME_PID=""

stop() {
    trap - INT TERM EXIT
    for pid in "$GAME_PID" "$IM_PID"; do
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    for pid in "$GAME_PID" "$IM_PID"; do
        if [[ -n "$pid" ]]; then
            wait "$pid" 2>/dev/null || true
        fi
    done
}

on_signal() {
    echo
    echo "==> stopping both services"
    stop
    exit 0
}

trap on_signal INT TERM
trap stop EXIT

# The web client at /play/ is served by the game service and calls the IM
# service from the browser: the IM service lets that origin in (CORS).
BIND_ADDR="$IM_ADDR" CORS_ALLOWED_ORIGINS="http://$GAME_ADDR,http://localhost:${GAME_ADDR##*:}" \
    "$TARGET_DIR/debug/im-service" &
IM_PID=$!
BIND_ADDR="$GAME_ADDR" IM_URL="http://$IM_ADDR" "$TARGET_DIR/debug/game-service" &
GAME_PID=$!

# Tokens for the two links (8 hours). The token is in the URL fragment, which
# the browser never sends to a server; the page moves it out of the address bar.
link() { echo "http://$GAME_ADDR/play/#token=$("$TARGET_DIR/debug/xtask" token "$1" --ttl 28800)"; }
ALICE_LINK=$(link alice)
BOB_LINK=$(link bob)

cat <<INFO

==> running (in-memory store, JWT_SECRET=$JWT_SECRET)
    IM service    http://$IM_ADDR    docs http://$IM_ADDR/docs/
    game service  http://$GAME_ADDR    docs http://$GAME_ADDR/docs/

    play in the browser: open each link in its own window (one is alice, one is bob):
      alice  $ALICE_LINK
      bob    $BOB_LINK
    then in both: presence "available", alice opens a conversation with bob, both
    send a message, both press Play and answer the pop-ups.

    mint a player token (same secret):   cargo xtask token alice
    a service token:                     cargo xtask token game-service --service --ttl 600

    TOKEN=\$(cargo xtask token alice)
    curl -s -X PUT http://$IM_ADDR/v1/presence -H "Authorization: Bearer \$TOKEN" \\
         -H 'Content-Type: application/json' -d '{"status":"available"}'
    curl -s -X POST http://$GAME_ADDR/v1/connect -H "Authorization: Bearer \$TOKEN"

    Ctrl-C stops both.
INFO

# Whichever service exits first (crash or bind failure), stop the other and fail.
status=0
wait -n "$IM_PID" "$GAME_PID" || status=$?
if kill -0 "$IM_PID" 2>/dev/null; then dead="game-service"; else dead="im-service"; fi
echo "==> $dead exited (status $status): stopping the other service" >&2
stop
exit $(( status == 0 ? 1 : status ))
