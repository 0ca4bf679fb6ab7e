//! The Redis store: records as JSON strings, events in streams, jobs in sorted
//! sets; standalone Redis or Redis Cluster.
//!
//! Keys carry a hash tag per player (`{p.<id>}`), per session index entry
//! (`{s.<id>}`) and per job shard (`{jobs.<n>}`), so load spreads over a
//! cluster's slots; a session lives in its host's slot. Every key has a TTL.
//!
//! # Commit protocol
//!
//! Standalone: a transition takes all its locks and reads what it needs in one
//! `lock_all.lua` call (all or none; the script also widens the lock set by
//! what the actor's record points at, building those key names from the
//! prefix), and writes in one `commit.lua` call, atomic, fenced on those
//! locks, which it releases.
//!
//! Cluster (a script may only touch one slot), two-phase with roll-forward:
//! 1. *Prepare*: in each locked player's slot, while the lock is still ours,
//!    store the intent (transaction id) and the whole plan. A lost lock here
//!    aborts: intents are removed and nothing was applied.
//! 2. *Apply*: one `commit.lua` call per slot; each is idempotent (an
//!    "applied" marker per slot and transaction) and clears that slot's intent.
//!    Once every locked slot holds the intent, the transaction is decided.
//!    The slots that hold an intent are applied last, so while anything is
//!    left to apply some slot still holds the intent and the plan.
//! 3. *Recovery*: whoever next locks a player whose slot still holds an intent
//!    (its writer died or lost its lease) locks the transaction's players,
//!    checks that every slot was prepared (intent or marker present) and then
//!    applies every group again (markers skip the done ones), or else aborts.
//! 4. *Sweep*: every transaction is also listed, from before it is decided
//!    until it is complete, in a job shard's slot (by when it was prepared);
//!    the sweeper claims listings older than any writer's lease and runs the
//!    same recovery for them under the same locks, so an orphaned commit is
//!    finished even if none of its players comes back (`intents`).
//!
//! So a transition is applied entirely or not at all, even when a replica dies
//! between two slots.
//!
//! # Layout
//! - `locks`: taking and releasing locks, at once (standalone) or player by player (cluster).
//! - `two_phase`: the cluster's commit (prepare, apply) and its recovery or abort.
//! - `intents`: the listing of two-phase commits under way, and the sweep of orphaned ones.
//! - `jobs`: expiry jobs, sorted sets spread over job shards.
//! - `replies`: Redis replies and errors read as store values.
//! - `keys` and `plan`: key names, and the writes a commit sends to each slot.
//! - `checkpoint`: the presence feed's lease and cursor.

mod checkpoint;
mod intents;
mod jobs;
mod keys;
mod locks;
mod plan;
mod replies;
mod two_phase;

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::{AsyncCommands, Script};
use service_kit::{
    config::redis_cluster_nodes,
    events::{
        EventLog,
        redis::{ReadError, relay_events},
    },
    redis_conn::RedisConn,
    redis_replication::Replication,
};
use shared_types::{UserId, game::GameEvent};
use tokio::{sync::broadcast, task::JoinHandle};
use uuid::Uuid;

pub use self::two_phase::CrashPoint;
use self::{
    keys::Keys,
    plan::groups,
    replies::{corrupt, decode, from_redis},
};
use super::{
    IfOpen, Locked, OrphanSweep, Relayed, Retention, Scope, Store, StoreError, StoreResult,
    StoredEvent,
};
use crate::domain::{
    records::{ExpiryJob, PlayerRecord, SessionRecord, SessionRef},
    tx::Changes,
};

/// How long connecting waits for the event relay's subscription.
const RELAY_READY_WAIT: Duration = Duration::from_secs(2);

struct Scripts {
    lock_all: Script,
    lock: Script,
    unlock: Script,
    commit: Script,
    prepare: Script,
    check: Script,
    abort: Script,
    claim: Script,
    list: Script,
}

pub struct RedisStore {
    conn: RedisConn,
    keys: Keys,
    retention: Retention,
    scripts: Arc<Scripts>,
    /// Commit slot by slot (always on a cluster; tests turn it on for standalone).
    two_phase: bool,
    events: broadcast::Sender<Relayed>,
    relay: JoinHandle<()>,
    crash: std::sync::Mutex<Option<CrashPoint>>,
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        self.relay.abort();
    }
}

impl RedisStore {
    /// Connects (fails fast when Redis is unreachable) and starts relaying
    /// published events to [`Store::subscribe`]rs.
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        Self::connect_with(url, prefix, false).await
    }

    /// `force_cluster`: treat a single `url` as a cluster seed (`REDIS_CLUSTER=true`).
    pub async fn connect_with(
        url: &str,
        prefix: &str,
        force_cluster: bool,
    ) -> anyhow::Result<Self> {
        let cluster = redis_cluster_nodes(url, force_cluster);
        let conn = RedisConn::connect(url, force_cluster)?;
        let keys = Keys::new(prefix);
        let (events, _) = broadcast::channel(super::BROADCAST_CAPACITY);
        let nodes = cluster.unwrap_or_else(|| vec![url.to_owned()]);
        // Wait (briefly) for the relay's subscription, so that no event of the
        // first requests is published before this replica listens.
        let mut subscribed = events.subscribe();
        let relay = tokio::spawn(relay_events(nodes, keys.channel(), events.clone()));
        let ready = tokio::time::timeout(RELAY_READY_WAIT, async {
            while !matches!(subscribed.recv().await, Ok(Relayed::Resync) | Err(_)) {}
        })
        .await;
        if ready.is_err() {
            tracing::warn!("event relay not subscribed yet; streams will resync when it is");
        }
        Ok(Self {
            two_phase: conn.is_cluster(),
            conn,
            keys,
            retention: Retention::default(),
            scripts: Arc::new(Scripts {
                lock_all: Script::new(include_str!("lua/lock_all.lua")),
                lock: Script::new(include_str!("lua/lock.lua")),
                unlock: Script::new(include_str!("lua/unlock.lua")),
                // Events are appended and published the way both services do.
                commit: service_kit::events::redis::with_append_event(include_str!(
                    "lua/commit.lua"
                )),
                prepare: Script::new(include_str!("lua/prepare.lua")),
                check: service_kit::redis_replication::read_only(Script::new(include_str!(
                    "lua/check.lua"
                ))),
                abort: Script::new(include_str!("lua/abort.lua")),
                claim: Script::new(include_str!("lua/claim.lua")),
                list: Script::new(include_str!("lua/list.lua")),
            }),
            events,
            relay,
            crash: std::sync::Mutex::new(None),
        })
    }

    /// How long keys live (default: [`Retention::default`]).
    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// Every write waits for `replication`'s replicas before it succeeds
    /// (`REDIS_MIN_REPLICAS_ACKED`; see [`service_kit::redis_replication`]).
    pub fn replicated(mut self, replication: Replication) -> Self {
        self.conn = self.conn.clone().replicated(replication);
        self
    }

    /// Commits slot by slot even on standalone Redis, as on a cluster (tests).
    pub fn with_two_phase_commit(mut self) -> Self {
        self.two_phase = true;
        self
    }

    fn conn(&self) -> RedisConn {
        self.conn.clone()
    }
}

#[async_trait]
impl EventLog<GameEvent> for RedisStore {
    type Error = StoreError;

    async fn events_after(
        &self,
        player: &UserId,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<StoredEvent>> {
        let key = self.keys.events(player).name;
        service_kit::events::redis::events_after(&mut self.conn(), &key, player, after, limit)
            .await
            .map_err(|err| match err {
                ReadError::Redis(err) => from_redis(err),
                ReadError::Corrupt { error, .. } => corrupt(error, "an event"),
            })
    }

    fn subscribe(&self) -> broadcast::Receiver<Relayed> {
        self.events.subscribe()
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn lock(
        &self,
        players: &[UserId],
        sessions: &[SessionRef],
        predict: Option<(&UserId, Scope)>,
        token: &str,
        lease: Duration,
    ) -> StoreResult<Option<Locked>> {
        if !self.two_phase {
            return self
                .lock_at_once(players, sessions, predict, token, lease)
                .await;
        }
        // A script may touch one slot only: read the actor's record first.
        let (players, sessions) = match predict {
            Some((actor, scope)) => {
                let record = self.player(actor).await?.unwrap_or_default();
                super::predict(actor, &record, scope, players, sessions)
            }
            None => (players.to_vec(), sessions.to_vec()),
        };
        self.lock_each_hosting(&players, &sessions, token, lease)
            .await
    }

    async fn lock_if_open(
        &self,
        actor: &UserId,
        token: &str,
        lease: Duration,
    ) -> StoreResult<Option<IfOpen>> {
        if self.two_phase {
            // A cluster reads the record before it locks anyway: decide on that read.
            let record = self.player(actor).await?.unwrap_or_default();
            if super::nothing_open(&record) {
                return Ok(Some(IfOpen::NothingOpen));
            }
            let (players, sessions) = super::predict(
                actor,
                &record,
                Scope::Record,
                std::slice::from_ref(actor),
                &[],
            );
            let locked = self
                .lock_each_hosting(&players, &sessions, token, lease)
                .await?;
            return Ok(locked.map(IfOpen::Locked));
        }
        self.lock_at_once_if_open(actor, token, lease).await
    }

    async fn unlock(&self, players: &[UserId], token: &str) -> StoreResult<()> {
        if players.is_empty() {
            return Ok(());
        }
        if self.conn.is_cluster() {
            for player in players {
                self.unlock_one(player, token).await?;
            }
            return Ok(());
        }
        let mut invocation = self.scripts.unlock.prepare_invoke();
        for player in players {
            invocation.key(&self.keys.lock(player).name);
        }
        invocation
            .arg(token)
            .invoke_async::<i64>(&mut self.conn())
            .await
            .map_err(from_redis)?;
        Ok(())
    }

    async fn commit(&self, locked: &[UserId], token: &str, changes: &Changes) -> StoreResult<()> {
        if self.two_phase {
            let split = groups(&self.keys, &self.retention, locked, changes, Some(token))?;
            if split.len() > 1 {
                return self.commit_two_phase(locked, token, split).await;
            }
        }
        // One slot (or standalone Redis): a single atomic call.
        for group in groups(&self.keys, &self.retention, locked, changes, None)? {
            self.apply(&group, token).await?;
        }
        Ok(())
    }

    async fn player(&self, player: &UserId) -> StoreResult<Option<PlayerRecord>> {
        let raw: Option<String> = self
            .conn()
            .get(&self.keys.player(player).name)
            .await
            .map_err(from_redis)?;
        decode(raw, "a player record")
    }

    async fn session(&self, at: &SessionRef) -> StoreResult<Option<SessionRecord>> {
        let raw: Option<String> = self
            .conn()
            .get(&self.keys.session(&at.host, at.id).name)
            .await
            .map_err(from_redis)?;
        decode(raw, "a session")
    }

    async fn session_host(&self, id: Uuid) -> StoreResult<Option<UserId>> {
        let raw: Option<String> = self
            .conn()
            .get(&self.keys.session_host(id).name)
            .await
            .map_err(from_redis)?;
        Ok(raw.and_then(|host| UserId::parse(&host).ok()))
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease: Duration,
    ) -> StoreResult<Vec<ExpiryJob>> {
        self.claim_jobs(now, limit, lease).await
    }

    async fn finish_job(&self, job: &ExpiryJob) -> StoreResult<()> {
        let member = serde_json::to_string(job).map_err(|e| corrupt(e, "a job"))?;
        let _: i64 = self
            .conn()
            .zrem(&self.keys.jobs_for(job).name, member)
            .await
            .map_err(from_redis)?;
        Ok(())
    }

    async fn finish_jobs(&self, jobs: &[ExpiryJob]) -> StoreResult<()> {
        self.remove_jobs(jobs).await
    }

    async fn due_count(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        self.count_due_jobs(now).await
    }

    async fn finish_orphaned_intents(
        &self,
        prepared_before: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<OrphanSweep> {
        self.sweep_intents(prepared_before, limit).await
    }

    fn attach_to_this_thread(&self) {
        self.conn.attach_to_this_thread();
    }

    async fn ping(&self) -> StoreResult<()> {
        let _: String = redis::cmd("PING")
            .query_async(&mut self.conn())
            .await
            .map_err(from_redis)?;
        Ok(())
    }
}
