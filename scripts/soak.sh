#!/usr/bin/env bash
# The chaos soak (not part of the test command): the failover storm's mix of flows on a
# local Redis Cluster with replicas (3 masters, 1 replica each) and two game replicas,
# REDIS_MIN_REPLICAS_ACKED=1, for N minutes, while masters, replicas, game replicas and the
# IM service are SIGKILLed and restarted at random; then every invariant and every
# acknowledged conversation, message and session is checked.
#
#   scripts/soak.sh --minutes 10
#   scripts/soak.sh --minutes 2 --seed 42 --log /tmp/soak.log
#   SOAK_FAULTS=master,game scripts/soak.sh --minutes 5   (only these kinds: master,
#                                                         replica, game, im)
# TEST_LOG=1 echoes the services' logs (RUST_LOG for them, default info) into the output.
#
# The report (faults by kind, requests, refusals, what was acknowledged and found again) is
# printed at the end and kept with the whole output in the log (default: soak-<time>.log in
# the current directory). Needs redis-server and redis-cli (scripts/test.sh installs them).
set -euo pipefail

MINUTES=10
SEED=""
LOG="$PWD/soak-$(date -u +%Y%m%dT%H%M%SZ).log"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --minutes) MINUTES="$2"; shift 2 ;;
        --seed) SEED="$2"; shift 2 ;;
        --log) LOG="$2"; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The e2e suite refuses binaries older than the sources.
cargo build --bins -q
cargo test -p e2e --test e2e --no-run -q
export SOAK_MINUTES="$MINUTES"
if [[ -n "$SEED" ]]; then export STORM_SEED="$SEED"; fi
ulimit -n "$(ulimit -Hn)"
set +e
cargo test -q -p e2e --test e2e -- --ignored --exact --nocapture \
    storm::soak::soak_on_a_cluster_with_replicas_under_random_faults_loses_nothing_acknowledged \
    2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
set -e
echo
echo "== soak report (${MINUTES} min; whole output in $LOG)"
grep -E '^(soak|storm|failover): ' "$LOG" || true
if [[ $status -eq 0 ]]; then
    echo "== passed: every invariant held, every acknowledged write was found again"
else
    echo "== FAILED (exit $status): see $LOG"
fi
exit "$status"
