#!/usr/bin/env bash
# One benchmark run: starts a private redis-server (for --store redis), both
# services (release build) on free ports, runs loadgen against them, stops all.
#
#   scripts/bench.sh [--store memory|redis|cluster] [--replicas N] [--acks N] [loadgen options...]
#   scripts/bench.sh --store redis --concurrency 32 --duration 10 --json out.json
#   scripts/bench.sh --store redis --replicas 1 --acks 1 --concurrency 64
#   scripts/bench.sh --store cluster --replicas 1 --acks 1 --concurrency 64
#   scripts/bench.sh --store memory --streams-only 18000 --concurrency 64
#   BENCH_CALLGRIND=200 scripts/bench.sh --store redis --concurrency 8
#
# BENCH_PERF=SECS records `perf record -g` of the game service for SECS
# seconds after the warm-up (perf.data in the current directory).
# --store cluster starts a local Redis Cluster of 3 masters (Redis's commands, CPU
# and memory are summed over them).
# --replicas N starts N replicas of the redis-server (of each master, for a cluster);
# --acks N sets both services'
# REDIS_MIN_REPLICAS_ACKED (every write waits for N replicas: the cost of
# "acknowledged means replicated").
# BENCH_REDIS_STATS=1 prints Redis's calls per command at the end.
# BENCH_REDIS_MEMORY=1 prints Redis's memory by kind of key at the end
# (scripts/redis_memory.py; --store redis).
# BENCH_BUILD=0 skips the build; BENCH_PROFILE=profiling uses the `profiling`
# cargo profile (release with line tables, for perf) instead of `release`.
# BENCH_CALLGRIND=N counts instructions instead of time: both services run
# under `valgrind --tool=callgrind`, play a warm-up of N/4 pairings, then
# exactly N (`loadgen --pairings`), and the instructions each service ran in
# those N (background work included) are read with `callgrind_control` and
# divided by N: a unit that does not move with the machine's load, for
# before/after comparisons (about 50 times slower than a timed run).
# BENCH_DRAIN=N (--store redis): N lobbies whose invitation stays pending
# (`loadgen --pending N`: the Redis memory each leaves) are opened on a game
# replica that sweeps nothing (EXPIRY_POLL_MS of an hour, INVITE_TTL_SECS=1),
# so that all are due at once; then a second replica with the default sweep
# starts, and the time it takes to expire them all (its game_expiries_total
# of kind invitation) is reported.
set -euo pipefail

PERF_OUT="$PWD/perf.data"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

STORE=memory
REPLICAS=0
ACKS=0
ARGS=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --store) STORE="$2"; shift 2 ;;
        --replicas) REPLICAS="$2"; shift 2 ;;
        --acks) ACKS="$2"; shift 2 ;;
        *) ARGS+=("$1"); shift ;;
    esac
done

PROFILE="${BENCH_PROFILE:-release}"
BIN_DIR="${CARGO_TARGET_DIR:-target}/$PROFILE"
if [[ "${BENCH_BUILD:-1}" != 0 ]]; then
    cargo build --profile "$PROFILE" --bins -q
fi

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

export JWT_SECRET=bench-secret-only-for-this-benchmark-run RATE_LIMIT_PER_SEC=0 RUST_LOG="${RUST_LOG:-warn}"
# The hard limit on the development machine is 20000; take what is allowed.
ulimit -n "$(ulimit -Hn)"

PIDS=()
REDIS_DIR=""
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ -n "$REDIS_DIR" ]]; then rm -rf "$REDIS_DIR"; fi
}
trap cleanup EXIT

LOADGEN_REDIS=()
CPU_PIDS=()
if (( ACKS > REPLICAS )); then
    echo "--acks $ACKS needs at least as many --replicas (every write would answer 503)" >&2
    exit 2
fi
# Until master $1's replicas acknowledge its writes (WAIT), as the services will require.
wait_for_acks() {
    (( ACKS > 0 )) || return 0
    local acked
    for _ in $(seq 200); do
        acked=$(redis-cli -p "$1" wait "$ACKS" 100 2>/dev/null || true)
        if [[ $acked =~ ^[0-9]+$ ]] && (( acked >= ACKS )); then return 0; fi
    done
    echo "port $1: its replicas never acknowledged (WAIT $ACKS)" >&2
    exit 1
}
case "$STORE" in
    memory) unset REDIS_URL ;;
    redis)
        REDIS_PORT=$(free_port)
        REDIS_DIR=$(mktemp -d)
        redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --repl-diskless-sync-delay 0 \
            --dir "$REDIS_DIR" --logfile "$REDIS_DIR/redis.log" &
        PIDS+=($!)
        CPU_PIDS+=(--cpu-pid "redis=$!")
        for _ in $(seq 100); do
            redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
            sleep 0.05
        done
        export REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
        for i in $(seq "$REPLICAS"); do
            port=$(free_port)
            mkdir -p "$REDIS_DIR/replica-$i"
            redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
                --repl-diskless-sync-delay 0 --replicaof 127.0.0.1 "$REDIS_PORT" \
                --dir "$REDIS_DIR/replica-$i" --logfile "$REDIS_DIR/replica-$i/redis.log" &
            PIDS+=($!)
            CPU_PIDS+=(--cpu-pid "redis-replicas=$!")
            for _ in $(seq 200); do
                redis-cli -p "$port" info replication 2>/dev/null \
                    | grep -q 'master_link_status:up' && break
                sleep 0.05
            done
        done
        wait_for_acks "$REDIS_PORT"
        export REDIS_MIN_REPLICAS_ACKED="$ACKS"
        LOADGEN_REDIS=(--redis-url "$REDIS_URL")
        # Replicas on Redis share one join-token signing key.
        openssl genpkey -algorithm ed25519 -out "$REDIS_DIR/join-token.pem"
        export JOIN_TOKEN_KEY_FILE="$REDIS_DIR/join-token.pem"
        ;;
    cluster)
        REDIS_DIR=$(mktemp -d)
        NODES=()
        MASTER_URLS=()
        declare -A NODE_PID
        for i in $(seq $((3 * (REPLICAS + 1)))); do
            port=$(free_port)
            # A node's cluster bus is its port + 10000: keep both free.
            while (( port > 55000 )); do port=$(free_port); done
            mkdir -p "$REDIS_DIR/$port"
            redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
                --repl-diskless-sync-delay 0 --cluster-enabled yes \
                --cluster-config-file nodes.conf --cluster-node-timeout 1500 \
                --cluster-replica-validity-factor 0 \
                --dir "$REDIS_DIR/$port" --logfile "$REDIS_DIR/$port/redis.log" &
            PIDS+=($!)
            NODE_PID[$port]=$!
            for _ in $(seq 100); do
                redis-cli -p "$port" ping >/dev/null 2>&1 && break
                sleep 0.05
            done
            NODES+=("127.0.0.1:$port")
        done
        if ! redis-cli --cluster create "${NODES[@]}" --cluster-replicas "$REPLICAS" \
            --cluster-yes >"$REDIS_DIR/create.log" 2>&1; then
            cat "$REDIS_DIR/create.log" >&2
            exit 1
        fi
        for node in "${NODES[@]}"; do
            port=${node##*:}
            ok=""
            for _ in $(seq 200); do
                if redis-cli -p "$port" cluster info 2>/dev/null | grep -q 'cluster_state:ok'; then
                    ok=1
                    break
                fi
                sleep 0.05
            done
            [[ -n "$ok" ]] || { echo "node $node: cluster_state never ok" >&2; exit 1; }
            if redis-cli -p "$port" info replication | grep -q 'role:master'; then
                MASTER_URLS+=("redis://$node")
                CPU_PIDS+=(--cpu-pid "redis=${NODE_PID[$port]}")
                wait_for_acks "$port"
            else
                CPU_PIDS+=(--cpu-pid "redis-replicas=${NODE_PID[$port]}")
            fi
        done
        if [[ ${#MASTER_URLS[@]} -ne 3 ]]; then
            echo "the cluster has ${#MASTER_URLS[@]} masters, not 3" >&2
            exit 1
        fi
        export REDIS_URL="redis+cluster://$(IFS=,; echo "${NODES[*]}")"
        export REDIS_MIN_REPLICAS_ACKED="$ACKS"
        LOADGEN_REDIS=(--redis-url "$(IFS=,; echo "${MASTER_URLS[*]}")")
        openssl genpkey -algorithm ed25519 -out "$REDIS_DIR/join-token.pem"
        export JOIN_TOKEN_KEY_FILE="$REDIS_DIR/join-token.pem"
        ;;
    *) echo "--store memory|redis|cluster" >&2; exit 2 ;;
esac

IM_PORT=$(free_port)
GAME_PORT=$(free_port)
WRAP=()
STARTUP_TRIES=200
if [[ -n "${BENCH_CALLGRIND:-}" ]]; then
    WRAP=(valgrind --tool=callgrind --callgrind-out-file=/dev/null --log-file=/dev/null)
    STARTUP_TRIES=1200
fi
BIND_ADDR="127.0.0.1:$IM_PORT" "${WRAP[@]}" "$BIN_DIR/im-service" &
IM_PID=$!
PIDS+=("$IM_PID")
GAME_ENV=()
if [[ -n "${BENCH_DRAIN:-}" ]]; then
    [[ "$STORE" == redis ]] || { echo "BENCH_DRAIN needs --store redis" >&2; exit 2; }
    export INVITE_TTL_SECS=1
    GAME_ENV=(EXPIRY_POLL_MS=3600000)
fi
env "${GAME_ENV[@]}" BIND_ADDR="127.0.0.1:$GAME_PORT" IM_URL="http://127.0.0.1:$IM_PORT" "${WRAP[@]}" "$BIN_DIR/game-service" &
GAME_PID=$!
PIDS+=("$GAME_PID")
for port in "$IM_PORT" "$GAME_PORT"; do
    for _ in $(seq "$STARTUP_TRIES"); do
        curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break
        sleep 0.05
    done
done

if [[ -n "${BENCH_PERF:-}" ]]; then
    (sleep 2 && perf record -F 999 -g -p "$GAME_PID" -o "$PERF_OUT" -- sleep "$BENCH_PERF" \
        >/dev/null 2>&1) &
    PERF_PID=$!
fi

echo "==> store=$STORE replicas=$REPLICAS acks=$ACKS load=$(cut -d' ' -f1-3 /proc/loadavg)" >&2
loadgen() {
    "$BIN_DIR/loadgen" --game-url "http://127.0.0.1:$GAME_PORT" \
        --im-url "http://127.0.0.1:$IM_PORT" --jwt-secret "$JWT_SECRET" \
        --game-pid "$GAME_PID" --cpu-pid "game=$GAME_PID" --cpu-pid "im=$IM_PID" \
        "${CPU_PIDS[@]}" "${LOADGEN_REDIS[@]}" "$@"
}
# The instructions callgrind counted in process $1 so far, over all its threads.
instructions() {
    callgrind_control -e Ir "$1" 2>/dev/null | awk '/^ *Th [0-9]+/ { gsub(",", "", $3); sum += $3 } END { print sum + 0 }'
}
if [[ -n "${BENCH_CALLGRIND:-}" ]]; then
    N=$BENCH_CALLGRIND
    QUICK=(--warmup 0 --baseline 0 --timeout 120)
    loadgen "${QUICK[@]}" --pairings $(( N / 4 > 0 ? N / 4 : 1 )) "${ARGS[@]}" >/dev/null
    callgrind_control -z "$GAME_PID" >/dev/null 2>&1
    callgrind_control -z "$IM_PID" >/dev/null 2>&1
    loadgen "${QUICK[@]}" --pairings "$N" "${ARGS[@]}"
    GAME_IR=$(instructions "$GAME_PID")
    IM_IR=$(instructions "$IM_PID")
    echo "instructions per pairing ($N pairings under callgrind): game $(( GAME_IR / N )), im $(( IM_IR / N ))"
elif [[ -n "${BENCH_DRAIN:-}" ]]; then
    loadgen --pending "$BENCH_DRAIN" "${ARGS[@]}" | tee "$REDIS_DIR/pending.txt"
    # "loadgen run ID: OPENED of N lobbies …": what is left to expire.
    OPENED=$(awk '/lobbies left waiting/ { print $4; exit }' "$REDIS_DIR/pending.txt")
    # Every invitation is past its second now; a replica that sweeps takes them on.
    sleep 1.5
    DRAIN_PORT=$(free_port)
    BIND_ADDR="127.0.0.1:$DRAIN_PORT" IM_URL="http://127.0.0.1:$IM_PORT" "$BIN_DIR/game-service" &
    PIDS+=($!)
    STARTED=$(date +%s.%N)
    expired=0
    until (( expired >= OPENED )); do
        sleep 0.2
        expired=$(curl -fs "http://127.0.0.1:$DRAIN_PORT/metrics" 2>/dev/null \
            | awk '/^game_expiries_total\{kind="invitation"\}/ { print $2 }')
        expired=${expired:-0}
        if (( $(echo "$(date +%s.%N) - $STARTED > 1800" | bc) )); then
            echo "drain: only $expired of $OPENED expired after 30 minutes" >&2
            exit 1
        fi
    done
    took=$(echo "$(date +%s.%N) - $STARTED" | bc)
    echo "drain: $expired invitations due at once expired by a fresh replica in ${took} s (its start-up included)"
else
    loadgen "${ARGS[@]}"
fi
if [[ -n "${PERF_PID:-}" ]]; then wait "$PERF_PID" || true; fi
if [[ -n "${BENCH_REDIS_MEMORY:-}" && "$STORE" == redis ]]; then
    python3 scripts/redis_memory.py "$REDIS_PORT" >&2
fi
if [[ -n "${BENCH_REDIS_STATS:-}" && "$STORE" == redis ]]; then
    # Calls per command over the whole run (warm-up and bounds included).
    redis-cli -p "$REDIS_PORT" info commandstats | grep -o '^cmdstat_[a-z]*:calls=[0-9]*' >&2
fi
