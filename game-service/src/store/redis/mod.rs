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
//! 3. *Recovery*: whoever next locks a player whose slot still holds an intent
//!    (its writer died or lost its lease) locks the transaction's players,
//!    checks that every slot was prepared (intent or marker present) and then
//!    applies every group again (markers skip the done ones), or else aborts.
//!
//! So a transition is applied entirely or not at all, even when a replica dies
//! between two slots.

mod keys;
mod plan;

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use redis::{AsyncCommands, Client, RedisError, Script, Value};
use service_kit::{config::redis_cluster_nodes, redis_conn::RedisConn};
use shared_types::UserId;
use tokio::{sync::broadcast, task::JoinHandle};
use uuid::Uuid;

use self::{
    keys::{JOB_SHARDS, Keys},
    plan::{Group, INTENT_TTL, TwoPhasePlan, groups, millis},
};
use super::{Locked, Relayed, Retention, Scope, Store, StoreError, StoreResult, StoredEvent};
use crate::domain::{
    records::{ExpiryJob, PlayerRecord, SessionRecord, SessionRef},
    tx::Changes,
};

/// A player's record and the sessions it hosts, as read under its lock.
type HostedRecords = (PlayerRecord, Vec<(Uuid, Option<SessionRecord>)>);

/// How long recovery waits for the locks of an interrupted transaction.
const RECOVERY_WAIT: Duration = Duration::from_secs(3);
const RECOVERY_LEASE: Duration = Duration::from_secs(5);
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

/// Where a simulated replica death interrupts the next two-phase commit (tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// After preparing this many players' slots.
    AfterPrepared(usize),
    /// After applying this many groups.
    AfterApplied(usize),
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        self.relay.abort();
    }
}

fn from_redis(err: RedisError) -> StoreError {
    if err.to_string().contains("LEASE_LOST") {
        StoreError::LeaseLost
    } else {
        StoreError::Unavailable(err.into())
    }
}

fn corrupt(err: serde_json::Error, what: &str) -> StoreError {
    StoreError::Corrupt(anyhow::Error::new(err).context(format!("decoding {what}")))
}

fn text(value: Option<&Value>) -> Option<String> {
    match value {
        Some(Value::BulkString(bytes)) if !bytes.is_empty() => {
            Some(String::from_utf8_lossy(bytes).into_owned())
        }
        Some(Value::SimpleString(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// What `lock.lua` saw.
enum LockReply {
    Busy,
    Taken {
        record: Option<String>,
        intent: Option<String>,
        sessions: Vec<Option<String>>,
    },
}

/// Reads `lock_all.lua`'s reply: `{0}`, or
/// `{1, #players, id, record..., #sessions, id, session...}`.
fn parse_locked(reply: &[Value]) -> StoreResult<Option<Locked>> {
    let malformed = || StoreError::Corrupt(anyhow::anyhow!("malformed lock_all.lua reply"));
    let count = |value: Option<&Value>| match value {
        Some(Value::Int(n)) => usize::try_from(*n).map_err(|_| malformed()),
        _ => Err(malformed()),
    };
    if count(reply.first())? != 1 {
        return Ok(None);
    }
    let mut locked = Locked::default();
    let players = count(reply.get(1))?;
    let mut at = 2;
    for _ in 0..players {
        let id = text(reply.get(at)).ok_or_else(malformed)?;
        let player = UserId::parse(&id).map_err(|_| malformed())?;
        let record = decode(text(reply.get(at + 1)), "a player record")?;
        locked.players.insert(player, record.unwrap_or_default());
        at += 2;
    }
    let sessions = count(reply.get(at))?;
    at += 1;
    for _ in 0..sessions {
        let id = text(reply.get(at)).ok_or_else(malformed)?;
        let id = Uuid::parse_str(&id).map_err(|_| malformed())?;
        locked
            .sessions
            .insert(id, decode(text(reply.get(at + 1)), "a session")?);
        at += 2;
    }
    Ok(Some(locked))
}

/// Decodes a stored JSON value; `None` stays `None`.
fn decode<T: serde::de::DeserializeOwned>(
    raw: Option<String>,
    what: &str,
) -> StoreResult<Option<T>> {
    raw.map(|json| serde_json::from_str(&json).map_err(|e| corrupt(e, what)))
        .transpose()
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
                commit: Script::new(include_str!("lua/commit.lua")),
                prepare: Script::new(include_str!("lua/prepare.lua")),
                check: Script::new(include_str!("lua/check.lua")),
                abort: Script::new(include_str!("lua/abort.lua")),
                claim: Script::new(include_str!("lua/claim.lua")),
            }),
            events,
            relay,
            crash: std::sync::Mutex::new(None),
        })
    }

    /// Makes the next two-phase commit stop at `point` as if the replica died:
    /// its locks are released (as their lease would run out) and it fails.
    #[doc(hidden)]
    pub fn crash_next_commit_at(&self, point: CrashPoint) {
        if let Ok(mut crash) = self.crash.lock() {
            *crash = Some(point);
        }
    }

    async fn crash_here(
        &self,
        point: CrashPoint,
        locked: &[UserId],
        token: &str,
    ) -> StoreResult<()> {
        let armed = self
            .crash
            .lock()
            .ok()
            .and_then(|mut c| c.take_if(|p| *p == point));
        if armed.is_none() {
            return Ok(());
        }
        for player in locked {
            self.unlock_one(player, token).await?;
        }
        Err(StoreError::Unavailable(anyhow::anyhow!(
            "simulated crash at {point:?}"
        )))
    }

    /// How long keys live (default: [`Retention::default`]).
    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
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

    /// Takes one player's lock and reads, under it, the record, the slot's
    /// intent and `hosted` (sessions of this host).
    async fn lock_one(
        &self,
        player: &UserId,
        hosted: &[&SessionRef],
        token: &str,
        lease: Duration,
    ) -> StoreResult<LockReply> {
        let mut invocation = self.scripts.lock.prepare_invoke();
        invocation
            .key(&self.keys.lock(player).name)
            .key(&self.keys.player(player).name)
            .key(&self.keys.intent(player).name);
        for at in hosted {
            invocation.key(&self.keys.session(&at.host, at.id).name);
        }
        let reply: Vec<Value> = invocation
            .arg(token)
            .arg(millis(lease))
            .invoke_async(&mut self.conn())
            .await
            .map_err(from_redis)?;
        if !matches!(reply.first(), Some(Value::Int(1))) {
            return Ok(LockReply::Busy);
        }
        Ok(LockReply::Taken {
            record: text(reply.get(1)),
            intent: text(reply.get(2)),
            sessions: (3..3 + hosted.len()).map(|i| text(reply.get(i))).collect(),
        })
    }

    /// Standalone: the prediction, every lock and every read in one
    /// `lock_all.lua` call.
    async fn lock_at_once(
        &self,
        players: &[UserId],
        sessions: &[SessionRef],
        predict: Option<(&UserId, Scope)>,
        token: &str,
        lease: Duration,
    ) -> StoreResult<Option<Locked>> {
        let mut invocation = self.scripts.lock_all.prepare_invoke();
        let (actor, scope) = match predict {
            Some((actor, Scope::Record)) => (actor.as_str(), "record"),
            Some((actor, Scope::WithCandidates)) => (actor.as_str(), "candidates"),
            None => ("", "record"),
        };
        invocation
            .arg(token)
            .arg(millis(lease))
            .arg(self.keys.prefix())
            .arg(actor)
            .arg(scope)
            .arg(players.len());
        for player in players {
            invocation.arg(player.as_str());
        }
        for at in sessions {
            invocation.arg(at.id.to_string()).arg(at.host.as_str());
        }
        let reply: Vec<Value> = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(from_redis)?;
        parse_locked(&reply)
    }

    /// Cluster (or two-phase tests): one player at a time in the given
    /// (sorted) order, each with the sessions it hosts; all or none.
    async fn lock_each(
        &self,
        players: &[UserId],
        sessions: &[&SessionRef],
        token: &str,
        lease: Duration,
    ) -> StoreResult<Option<Locked>> {
        let mut locked = Locked::default();
        for (i, player) in players.iter().enumerate() {
            let hosted: Vec<&SessionRef> = sessions
                .iter()
                .copied()
                .filter(|at| &at.host == player)
                .collect();
            let taken = self.lock_player(player, &hosted, token, lease).await;
            match taken {
                Ok(Some((record, loaded))) => {
                    locked.players.insert(player.clone(), record);
                    locked.sessions.extend(loaded);
                }
                Ok(None) | Err(_) => {
                    if let Err(err) = self.unlock(&players[..i], token).await {
                        tracing::debug!(%err, "releasing partial locks; they expire anyway");
                    }
                    return taken.map(|_| None);
                }
            }
        }
        Ok(Some(locked))
    }

    /// One player's lock (an intent of a dead transaction is resolved first,
    /// then everything re-read), its record and the sessions it hosts.
    async fn lock_player(
        &self,
        player: &UserId,
        hosted: &[&SessionRef],
        token: &str,
        lease: Duration,
    ) -> StoreResult<Option<HostedRecords>> {
        for _ in 0..3 {
            match self.lock_one(player, hosted, token, lease).await? {
                LockReply::Busy => return Ok(None),
                LockReply::Taken {
                    intent: Some(tx), ..
                } if tx != token => self.recover(player, &tx, token).await?,
                LockReply::Taken {
                    record, sessions, ..
                } => {
                    let record = decode(record, "a player record")?.unwrap_or_default();
                    let mut loaded = Vec::with_capacity(hosted.len());
                    for (at, raw) in hosted.iter().zip(sessions) {
                        loaded.push((at.id, decode(raw, "a session")?));
                    }
                    return Ok(Some((record, loaded)));
                }
            }
        }
        Err(StoreError::Contended)
    }

    async fn unlock_one(&self, player: &UserId, token: &str) -> StoreResult<()> {
        self.scripts
            .unlock
            .key(&self.keys.lock(player).name)
            .arg(token)
            .invoke_async::<i64>(&mut self.conn())
            .await
            .map_err(from_redis)?;
        Ok(())
    }

    async fn apply(&self, group: &Group, token: &str) -> StoreResult<()> {
        let mut invocation = self.scripts.commit.prepare_invoke();
        for key in &group.keys {
            invocation.key(key);
        }
        invocation
            .arg(token)
            .arg(serde_json::to_string(&group.plan).map_err(|e| corrupt(e, "a plan"))?)
            .invoke_async::<i64>(&mut self.conn())
            .await
            .map_err(from_redis)?;
        Ok(())
    }

    async fn abort(&self, players: &[UserId], tx: &str) -> StoreResult<()> {
        for player in players {
            self.scripts
                .abort
                .key(&self.keys.intent(player).name)
                .key(&self.keys.intent_plan(player).name)
                .arg(tx)
                .invoke_async::<i64>(&mut self.conn())
                .await
                .map_err(from_redis)?;
        }
        Ok(())
    }

    async fn commit_two_phase(
        &self,
        locked: &[UserId],
        token: &str,
        groups: Vec<Group>,
    ) -> StoreResult<()> {
        let plan = TwoPhasePlan {
            tx: token.to_owned(),
            players: locked.to_vec(),
            groups,
        };
        let encoded = serde_json::to_string(&plan).map_err(|e| corrupt(e, "a plan"))?;
        for (i, player) in locked.iter().enumerate() {
            self.crash_here(CrashPoint::AfterPrepared(i), locked, token)
                .await?;
            let prepared = self
                .scripts
                .prepare
                .key(&self.keys.lock(player).name)
                .key(&self.keys.intent(player).name)
                .key(&self.keys.intent_plan(player).name)
                .arg(token)
                .arg(token)
                .arg(&encoded)
                .arg(millis(INTENT_TTL))
                .invoke_async::<i64>(&mut self.conn())
                .await
                .map_err(from_redis);
            if let Err(err) = prepared {
                // Not decided yet: undo the intents written so far (recovery would too).
                if let Err(abort) = self.abort(&locked[..i], token).await {
                    tracing::warn!(%abort, "aborting a two-phase commit; recovery will");
                }
                return Err(err);
            }
        }
        // Decided: every group is applied now or, if we die, by recovery.
        for (i, group) in plan.groups.iter().enumerate() {
            self.crash_here(CrashPoint::AfterApplied(i), locked, token)
                .await?;
            match self.apply(group, token).await {
                Ok(()) => {}
                Err(StoreError::LeaseLost) => {
                    tracing::warn!(
                        "lease lost after prepare; the next lock holder finishes the commit"
                    );
                }
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Finishes or aborts the transaction `tx` whose intent sits in `player`'s
    /// slot. `token` already holds `player`'s lock; locks taken here for the
    /// transaction's other players are released again (re-entrant ones are not).
    async fn recover(&self, player: &UserId, tx: &str, token: &str) -> StoreResult<()> {
        let raw: Option<String> = self
            .conn()
            .get(&self.keys.intent_plan(player).name)
            .await
            .map_err(from_redis)?;
        let Some(raw) = raw else {
            return self.abort(std::slice::from_ref(player), tx).await;
        };
        let plan: TwoPhasePlan = serde_json::from_str(&raw).map_err(|e| corrupt(e, "a plan"))?;
        tracing::info!(tx, players = ?plan.players, "recovering an interrupted commit");
        let mut sorted = plan.players.clone();
        sorted.sort();
        let mut taken_here = Vec::new();
        let outcome = self
            .recover_locked(&plan, &sorted, token, &mut taken_here)
            .await;
        for other in &taken_here {
            if let Err(err) = self.unlock_one(other, token).await {
                tracing::debug!(%err, "releasing a recovery lock; it expires anyway");
            }
        }
        outcome
    }

    async fn recover_locked(
        &self,
        plan: &TwoPhasePlan,
        sorted: &[UserId],
        token: &str,
        taken_here: &mut Vec<UserId>,
    ) -> StoreResult<()> {
        let started = std::time::Instant::now();
        for other in sorted {
            loop {
                let already_ours: Option<String> = self
                    .conn()
                    .get(&self.keys.lock(other).name)
                    .await
                    .map_err(from_redis)?;
                if already_ours.as_deref() == Some(token) {
                    break;
                }
                if let LockReply::Taken { .. } =
                    self.lock_one(other, &[], token, RECOVERY_LEASE).await?
                {
                    taken_here.push(other.clone());
                    break;
                }
                if started.elapsed() > RECOVERY_WAIT {
                    return Err(StoreError::Contended);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let mut prepared_everywhere = true;
        for other in sorted {
            let tag = format!("p.{other}");
            let prepared: i64 = self
                .scripts
                .check
                .key(&self.keys.intent(other).name)
                .key(&self.keys.applied(&tag, &plan.tx).name)
                .arg(&plan.tx)
                .invoke_async(&mut self.conn())
                .await
                .map_err(from_redis)?;
            prepared_everywhere &= prepared == 1;
        }
        if !prepared_everywhere {
            tracing::info!(
                tx = plan.tx,
                "interrupted commit was not fully prepared: aborted"
            );
            return self.abort(sorted, &plan.tx).await;
        }
        for group in &plan.groups {
            // Our token holds every lock now; the original unlock list is not ours to run.
            let mut group = group.clone();
            group.plan.unlock.clear();
            self.apply(&group, token).await?;
        }
        tracing::info!(tx = plan.tx, "interrupted commit rolled forward");
        Ok(())
    }
}

/// Forwards every event published by any replica to local subscribers;
/// resubscribes by itself (trying each node in turn) after Redis comes back.
async fn relay_events(nodes: Vec<String>, channel: String, out: broadcast::Sender<Relayed>) {
    for url in nodes.iter().cycle() {
        match Client::open(url.as_str()) {
            Ok(client) => match client.get_async_pubsub().await {
                Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                    Ok(()) => {
                        // Whatever was published while we were not subscribed is in the streams.
                        let _ = out.send(Relayed::Resync);
                        let mut messages = pubsub.on_message();
                        while let Some(message) = messages.next().await {
                            match serde_json::from_slice::<StoredEvent>(message.get_payload_bytes())
                            {
                                Ok(event) => {
                                    let _ = out.send(Relayed::Event(event));
                                }
                                Err(err) => tracing::warn!(%err, "undecodable event on {channel}"),
                            }
                        }
                        tracing::warn!("event subscription to Redis lost; reconnecting");
                    }
                    Err(err) => tracing::warn!(%err, "subscribing to {channel}"),
                },
                Err(err) => tracing::debug!(%err, "event relay cannot reach Redis yet"),
            },
            Err(err) => tracing::error!(%err, url, "invalid Redis URL for the event relay"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
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
        let hosted: Vec<&SessionRef> = sessions
            .iter()
            .filter(|at| players.contains(&at.host))
            .collect();
        self.lock_each(&players, &hosted, token, lease).await
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

    async fn events_after(
        &self,
        player: &UserId,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<StoredEvent>> {
        let key = self.keys.events(player).name;
        let mut conn = self.conn();
        type Entries = Vec<(String, Vec<(String, String)>)>;
        let entries: Entries = match after {
            Some(id) => redis::cmd("XRANGE")
                .arg(&key)
                .arg(format!("({id}"))
                .arg("+")
                .arg("COUNT")
                .arg(limit)
                .query_async(&mut conn)
                .await
                .map_err(from_redis)?,
            None => {
                let mut newest: Entries = redis::cmd("XREVRANGE")
                    .arg(&key)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(limit)
                    .query_async(&mut conn)
                    .await
                    .map_err(from_redis)?;
                newest.reverse();
                newest
            }
        };
        entries
            .into_iter()
            .filter_map(|(id, fields)| {
                fields
                    .into_iter()
                    .find(|(name, _)| name == "e")
                    .map(|(_, json)| (id, json))
            })
            .map(|(id, json)| {
                Ok(StoredEvent {
                    player: player.clone(),
                    id,
                    event: serde_json::from_str(&json).map_err(|e| corrupt(e, "an event"))?,
                })
            })
            .collect()
    }

    fn subscribe(&self) -> broadcast::Receiver<Relayed> {
        self.events.subscribe()
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease: Duration,
    ) -> StoreResult<Vec<ExpiryJob>> {
        let mut claimed = Vec::new();
        for shard in 0..JOB_SHARDS {
            if claimed.len() >= limit {
                break;
            }
            let members: Vec<String> = self
                .scripts
                .claim
                .key(&self.keys.jobs(shard).name)
                .arg(now.timestamp_millis())
                .arg(millis(lease))
                .arg(limit - claimed.len())
                .invoke_async(&mut self.conn())
                .await
                .map_err(from_redis)?;
            for member in members {
                match serde_json::from_str::<ExpiryJob>(&member) {
                    Ok(job) => claimed.push(job),
                    Err(err) => tracing::warn!(%err, member, "skipping an undecodable job"),
                }
            }
        }
        Ok(claimed)
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
