//! The Redis store: records as JSON strings, events in streams, jobs in sorted sets.
//!
//! Keys carry hash tags per player (`{p.<id>}`), per session index (`{s.<id>}`)
//! and per job shard (`{jobs.<n>}`), so load spreads over a cluster's slots.
//! A session lives in its host's slot. Every key has a TTL.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use redis::{
    AsyncCommands, Client, RedisError, Script,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use serde_json::json;
use shared_types::{UserId, game::SessionState};
use tokio::{sync::broadcast, task::JoinHandle};
use uuid::Uuid;

use super::{EVENTS_KEPT, Store, StoreError, StoreResult, StoredEvent, job_key};
use crate::domain::{
    records::{ExpiryJob, PlayerRecord, SessionRecord, SessionRef},
    tx::Changes,
};

/// Idle players and live sessions are forgotten after a day without change.
const RECORD_TTL: Duration = Duration::from_secs(24 * 3600);
/// Ended sessions stay readable for an hour.
const ENDED_SESSION_TTL: Duration = Duration::from_secs(3600);
/// Events stay replayable for an hour after the player's last event.
const EVENTS_TTL: Duration = Duration::from_secs(3600);
/// Job sets outlive any job they hold (invitations last minutes).
const JOBS_TTL: Duration = Duration::from_secs(24 * 3600);
/// Expiry jobs are spread over this many sorted sets (cluster slots).
const JOB_SHARDS: u32 = 16;

/// Key names; the part in braces is the Redis Cluster hash tag.
#[derive(Clone)]
struct Keys {
    prefix: String,
}

impl Keys {
    fn lock(&self, player: &UserId) -> String {
        format!("{}:{{p.{player}}}:lock", self.prefix)
    }
    fn player(&self, player: &UserId) -> String {
        format!("{}:{{p.{player}}}:player", self.prefix)
    }
    fn events(&self, player: &UserId) -> String {
        format!("{}:{{p.{player}}}:events", self.prefix)
    }
    fn session(&self, host: &UserId, id: Uuid) -> String {
        format!("{}:{{p.{host}}}:session:{id}", self.prefix)
    }
    fn session_host(&self, id: Uuid) -> String {
        format!("{}:{{s.{id}}}:host", self.prefix)
    }
    fn jobs(&self, shard: u32) -> String {
        format!("{}:{{jobs.{shard}}}:due", self.prefix)
    }
    fn jobs_for(&self, job: &ExpiryJob) -> String {
        // FNV-1a: stable across processes and Rust versions, unlike DefaultHasher.
        let hash = job_key(job).bytes().fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        self.jobs(hash % JOB_SHARDS)
    }
    fn channel(&self) -> String {
        format!("{}:events", self.prefix)
    }
}

struct Scripts {
    lock: Script,
    unlock: Script,
    commit: Script,
    claim: Script,
}

pub struct RedisStore {
    conn: ConnectionManager,
    keys: Keys,
    scripts: Arc<Scripts>,
    events: broadcast::Sender<StoredEvent>,
    relay: JoinHandle<()>,
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        self.relay.abort();
    }
}

fn unavailable(err: RedisError) -> StoreError {
    if err.to_string().contains("LEASE_LOST") {
        StoreError::LeaseLost
    } else {
        StoreError::Unavailable(err.into())
    }
}

fn corrupt(err: serde_json::Error, what: &str) -> StoreError {
    StoreError::Corrupt(anyhow::Error::new(err).context(format!("decoding {what}")))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl RedisStore {
    /// Connects (fails fast when Redis is unreachable) and starts relaying
    /// published events to [`Store::subscribe`]rs.
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = Client::open(url).with_context(|| format!("parsing REDIS_URL {url}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .with_context(|| format!("connecting to Redis at {url}"))?;
        let keys = Keys {
            prefix: prefix.to_owned(),
        };
        let (events, _) = broadcast::channel(super::BROADCAST_CAPACITY);
        let relay = tokio::spawn(relay_events(client, keys.channel(), events.clone()));
        Ok(Self {
            conn,
            keys,
            scripts: Arc::new(Scripts {
                lock: Script::new(include_str!("lua/lock.lua")),
                unlock: Script::new(include_str!("lua/unlock.lua")),
                commit: Script::new(include_str!("lua/commit.lua")),
                claim: Script::new(include_str!("lua/claim.lua")),
            }),
            events,
            relay,
        })
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }
}

/// Forwards every event published by any replica to local subscribers;
/// resubscribes by itself after Redis comes back.
async fn relay_events(client: Client, channel: String, out: broadcast::Sender<StoredEvent>) {
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        match serde_json::from_slice::<StoredEvent>(message.get_payload_bytes()) {
                            Ok(event) => {
                                let _ = out.send(event);
                            }
                            Err(err) => tracing::warn!(%err, "undecodable event on {channel}"),
                        }
                    }
                    tracing::warn!("event subscription to Redis lost; reconnecting");
                }
                Err(err) => tracing::warn!(%err, "subscribing to {channel}"),
            },
            Err(err) => tracing::debug!(%err, "event relay cannot reach Redis yet"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A commit plan: keys are numbered in the order they are first mentioned.
struct PlanKeys(Vec<String>);

impl PlanKeys {
    fn index(&mut self, key: String) -> usize {
        if let Some(i) = self.0.iter().position(|k| *k == key) {
            return i + 1;
        }
        self.0.push(key);
        self.0.len()
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn try_lock(
        &self,
        player: &UserId,
        token: &str,
        lease: Duration,
    ) -> StoreResult<Option<PlayerRecord>> {
        let (taken, record): (i64, Option<String>) = {
            let reply: Vec<redis::Value> = self
                .scripts
                .lock
                .key(self.keys.lock(player))
                .key(self.keys.player(player))
                .arg(token)
                .arg(millis(lease))
                .invoke_async(&mut self.conn())
                .await
                .map_err(unavailable)?;
            let taken = match reply.first() {
                Some(redis::Value::Int(n)) => *n,
                _ => 0,
            };
            let record = match reply.get(1) {
                Some(redis::Value::BulkString(bytes)) => {
                    Some(String::from_utf8_lossy(bytes).into_owned())
                }
                _ => None,
            };
            (taken, record)
        };
        if taken == 0 {
            return Ok(None);
        }
        match record {
            None => Ok(Some(PlayerRecord::default())),
            Some(json) => serde_json::from_str(&json)
                .map(Some)
                .map_err(|e| corrupt(e, "a player record")),
        }
    }

    async fn unlock(&self, players: &[UserId], token: &str) -> StoreResult<()> {
        if players.is_empty() {
            return Ok(());
        }
        let mut invocation = self.scripts.unlock.prepare_invoke();
        for player in players {
            invocation.key(self.keys.lock(player));
        }
        invocation
            .arg(token)
            .invoke_async::<i64>(&mut self.conn())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn commit(&self, locked: &[UserId], token: &str, changes: &Changes) -> StoreResult<()> {
        let mut keys = PlanKeys(Vec::new());
        let fences: Vec<usize> = locked
            .iter()
            .map(|p| keys.index(self.keys.lock(p)))
            .collect();
        let mut sets = Vec::new();
        for (player, record) in &changes.players {
            let value = serde_json::to_string(record).map_err(|e| corrupt(e, "a player"))?;
            sets.push(json!([
                keys.index(self.keys.player(player)),
                value,
                millis(RECORD_TTL)
            ]));
        }
        for session in &changes.sessions {
            let ttl = millis(if session.state == SessionState::Ended {
                ENDED_SESSION_TTL
            } else {
                RECORD_TTL
            });
            let value = serde_json::to_string(session).map_err(|e| corrupt(e, "a session"))?;
            sets.push(json!([
                keys.index(self.keys.session(&session.host, session.id)),
                value,
                ttl
            ]));
            sets.push(json!([
                keys.index(self.keys.session_host(session.id)),
                session.host.as_str(),
                ttl
            ]));
        }
        let mut events = Vec::new();
        for (player, event) in &changes.events {
            let value = serde_json::to_string(event).map_err(|e| corrupt(e, "an event"))?;
            events.push(json!([
                keys.index(self.keys.events(player)),
                player.as_str(),
                value
            ]));
        }
        let mut jobs = Vec::new();
        for scheduled in &changes.jobs {
            let member = serde_json::to_string(&scheduled.job).map_err(|e| corrupt(e, "a job"))?;
            let due = scheduled.due.timestamp_millis();
            jobs.push(json!([
                keys.index(self.keys.jobs_for(&scheduled.job)),
                due,
                member
            ]));
        }
        let plan = json!({
            "fences": fences,
            "sets": sets,
            "events": events,
            "jobs": jobs,
            "unlock": fences,
            "channel": self.keys.channel(),
            "maxlen": EVENTS_KEPT,
            "events_ttl": millis(EVENTS_TTL),
            "jobs_ttl": millis(JOBS_TTL),
        });
        let mut invocation = self.scripts.commit.prepare_invoke();
        for key in &keys.0 {
            invocation.key(key);
        }
        invocation
            .arg(token)
            .arg(plan.to_string())
            .invoke_async::<i64>(&mut self.conn())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn player(&self, player: &UserId) -> StoreResult<Option<PlayerRecord>> {
        let raw: Option<String> = self
            .conn()
            .get(self.keys.player(player))
            .await
            .map_err(unavailable)?;
        raw.map(|json| serde_json::from_str(&json).map_err(|e| corrupt(e, "a player record")))
            .transpose()
    }

    async fn session(&self, at: &SessionRef) -> StoreResult<Option<SessionRecord>> {
        let raw: Option<String> = self
            .conn()
            .get(self.keys.session(&at.host, at.id))
            .await
            .map_err(unavailable)?;
        raw.map(|json| serde_json::from_str(&json).map_err(|e| corrupt(e, "a session")))
            .transpose()
    }

    async fn session_host(&self, id: Uuid) -> StoreResult<Option<UserId>> {
        let raw: Option<String> = self
            .conn()
            .get(self.keys.session_host(id))
            .await
            .map_err(unavailable)?;
        Ok(raw.and_then(|host| UserId::parse(&host).ok()))
    }

    async fn events_after(
        &self,
        player: &UserId,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<StoredEvent>> {
        let key = self.keys.events(player);
        let mut conn = self.conn();
        let entries: Vec<(String, Vec<(String, String)>)> = match after {
            Some(id) => redis::cmd("XRANGE")
                .arg(&key)
                .arg(format!("({id}"))
                .arg("+")
                .arg("COUNT")
                .arg(limit)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?,
            None => {
                let mut newest: Vec<(String, Vec<(String, String)>)> = redis::cmd("XREVRANGE")
                    .arg(&key)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(limit)
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
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

    fn subscribe(&self) -> broadcast::Receiver<StoredEvent> {
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
                .key(self.keys.jobs(shard))
                .arg(now.timestamp_millis())
                .arg(millis(lease))
                .arg(limit - claimed.len())
                .invoke_async(&mut self.conn())
                .await
                .map_err(unavailable)?;
            for member in members {
                match serde_json::from_str::<ExpiryJob>(&member) {
                    Ok(job) => claimed.push(job),
                    Err(err) => tracing::warn!(%err, member, "dropping an undecodable job"),
                }
            }
        }
        Ok(claimed)
    }

    async fn finish_job(&self, job: &ExpiryJob) -> StoreResult<()> {
        let member = serde_json::to_string(job).map_err(|e| corrupt(e, "a job"))?;
        let _: i64 = self
            .conn()
            .zrem(self.keys.jobs_for(job), member)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn ping(&self) -> StoreResult<()> {
        let _: String = redis::cmd("PING")
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
