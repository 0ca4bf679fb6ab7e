//! End-to-end scenarios: the real `im-service` and `game-service` binaries against a
//! private redis-server, driven over HTTP the way game clients drive them.
//!
//! Build the binaries first (`cargo build --bins`; `scripts/test.sh` does it), then
//! `cargo test -p e2e --test e2e`. Set `TEST_LOG=1` to see the services' logs (shown for
//! failing tests, or for all with `-- --nocapture`). A binary older than its sources is refused
//! (`E2E_ALLOW_STALE=1` overrides), so the suite never silently tests yesterday's code.
//!
//! # On a Redis Cluster
//! `E2E_REDIS=cluster cargo test -p e2e --test e2e` runs every world on one private 3-master
//! Redis Cluster per test binary (`REDIS_URL=redis+cluster://…`, a unique `REDIS_KEY_PREFIX`
//! per world), instead of a redis-server per world (`E2E_REDIS` unset or `standalone`). The
//! store checks read every master. The three tests that kill, pause or restart Redis itself
//! (`faults::with_redis_killed_…`, `faults::with_redis_paused_…`,
//! `resilience::with_redis_down_…`) keep a private standalone redis-server in both modes and
//! say so on stderr, and so does `partition::…` (its Redis also listens on a veth's address);
//! `faults::with_one_cluster_master_paused_…` freezes one master of a
//! cluster of its own, in both modes. `scripts/test.sh` runs the suite both ways.
//!
//! # Layout
//! - [`helpers`]: `spawn_world()`, players, raw requests, the SSE reader.
//! - [`abuse`]: what an attacker would try: tokens, metrics, streams, secrets, slow callers.
//! - [`chat`]: lobbies announced in conversations, games launched from one, modes under a race.
//! - [`matchmaking`]: who counts as a partner; solo when nobody does.
//! - [`invitations`]: invite, join, accept, reject, subsets, trios, leaving.
//! - [`races`]: both players arriving at once; superseded invite prompts.
//! - [`decisions`]: reconnecting is idempotent; answers are final.
//! - [`expiry`]: unanswered invitations expire.
//! - [`expiry_scale`]: a hundred lobbies expiring under two sweeping replicas, each once.
//! - [`replicas`]: two game-service replicas on one Redis behave as one.
//! - [`partition`]: a replica cut off from Redis (network namespace, nftables): 503s, the
//!   other replica serving, nothing stale after the heal.
//! - [`resilience`]: IM service down or slow; Redis down.
//! - [`faults`]: Redis killed or paused mid-flow (or one master of a cluster paused), the IM
//!   service slow, dead or failing behind the circuit breaker, a replica SIGKILLed, SIGTERM.
//! - [`storm`]: hundreds of pairs and trios racing on two replicas; the invariants afterwards.
//! - [`cluster`]: the flows on a real Redis Cluster.
//! - [`events`]: pushed events and `Last-Event-ID` replay.
//! - [`tickets`]: event-stream tickets: any replica, expiry, other players, never logged.
//! - [`cors`]: `CORS_ALLOWED_ORIGINS` on both services: preflights, allowed and other origins.
//! - [`security`]: tokens, other players' prompts and sessions, malformed requests.
//! - [`operations`]: health, readiness, metrics, OpenAPI and docs on both services.
//! - [`im`]: the IM service's partners answer on its own.
//! - [`im_events`]: the IM service's event stream: who hears what, replay on any IM replica,
//!   tickets.
//! - [`trust`]: talking takes two, blocks, and every per-user limit.
//! - [`lifecycle`]: join tokens, game servers ending sessions and heartbeats, abandonment.
//! - [`vanished`]: a stream client gone without closing its connection is let go.

mod abuse;
mod chat;
mod cluster;
mod cors;
mod decisions;
mod events;
mod expiry;
mod expiry_scale;
mod failover;
mod faults;
mod helpers;
mod im;
mod im_events;
mod invitations;
mod lifecycle;
mod matchmaking;
mod operations;
mod partition;
mod races;
mod replica_acks;
mod replicas;
mod replication_harness;
mod resilience;
mod security;
mod storm;
mod tickets;
mod trust;
mod vanished;
