//! The Redis store: standalone or cluster, every key hash-tagged per entity and expiring.
//!
//! Keys (`P` is the configured prefix):
//! - `P:{c.<id>}:meta`      hash: participants, created, active (ms), closed, last append id
//! - `P:{c.<id>}:msgs`      list: messages as JSON, `seq` = position + 1
//! - `P:{u.<user>}:convs`   sorted set: conversation ids scored by last activity (ms)
//! - `P:{u.<user>}:contacts` set: users sharing a conversation with this user
//! - `P:{u.<user>}:presence` string: presence status
//!
//! A conversation's state changes (create, append + bump activity, close) are single Lua
//! scripts in the conversation's slot. Per-user indexes are updated by another script in the
//! user's slot, *before* the conversation changes: their steps are idempotent and their scores
//! only run ahead of the truth, and every read checks the conversation itself, so a failure
//! between the two steps never shows a half-written state. Every write refreshes the TTL
//! (retention) of the keys it touches.

use std::{collections::HashMap, future::Future, time::Duration};

use anyhow::{Context, anyhow};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::future::try_join_all;
use redis::{RedisError, RedisResult, RetryMethod, Script};
use serde::{Deserialize, Serialize};
use service_kit::redis_conn::RedisConn;
use shared_types::{
    UserId,
    im::{Conversation, Message},
    presence::PresenceStatus,
};
use uuid::Uuid;

use super::{AppendOutcome, Store, StoreError};

/// Where and how to keep the data.
#[derive(Debug, Clone)]
pub struct RedisStoreConfig {
    /// `redis://host:port/db`; in cluster mode a comma-separated list of seed nodes.
    pub url: String,
    pub cluster: bool,
    /// Lets several deployments (or tests) share one Redis.
    pub key_prefix: String,
    /// TTL of every key, refreshed by activity.
    pub retention: Duration,
}

struct Keys {
    prefix: String,
}

impl Keys {
    fn conversation_meta(&self, id: Uuid) -> String {
        format!("{}:{{c.{id}}}:meta", self.prefix)
    }
    fn conversation_messages(&self, id: Uuid) -> String {
        format!("{}:{{c.{id}}}:msgs", self.prefix)
    }
    fn user_conversations(&self, user: &UserId) -> String {
        format!("{}:{{u.{user}}}:convs", self.prefix)
    }
    fn user_contacts(&self, user: &UserId) -> String {
        format!("{}:{{u.{user}}}:contacts", self.prefix)
    }
    fn user_presence(&self, user: &UserId) -> String {
        format!("{}:{{u.{user}}}:presence", self.prefix)
    }
}

/// KEYS: meta. ARGV: participants (comma-separated), created ms, ttl ms.
const CREATE_CONVERSATION: &str = r"
redis.call('HSET', KEYS[1], 'participants', ARGV[1], 'created', ARGV[2], 'active', ARGV[2], 'closed', '0')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
";

/// KEYS: convs, contacts. ARGV: conversation id, activity ms, ttl ms, prune-before ms, contacts...
/// Idempotent: the score only moves forward, the set only grows.
const INDEX_USER: &str = r"
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if (not score) or tonumber(score) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if #ARGV > 4 then
  redis.call('SADD', KEYS[2], unpack(ARGV, 5))
end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
";

/// KEYS: meta, msgs. ARGV: message JSON, activity ms, ttl ms, append id.
/// Returns {seq, stored JSON}; {-1, ''} when missing, {-2, ''} when closed. Replaying the same
/// append id (a retry after a dropped connection) returns the first result instead of appending twice.
const APPEND_MESSAGE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, ''} end
if redis.call('HGET', KEYS[1], 'append_id') == ARGV[4] then
  local seq = tonumber(redis.call('HGET', KEYS[1], 'append_seq'))
  return {seq, redis.call('LINDEX', KEYS[2], seq - 1) or ''}
end
if redis.call('HGET', KEYS[1], 'closed') == '1' then return {-2, ''} end
local seq = redis.call('RPUSH', KEYS[2], ARGV[1])
local active = tonumber(redis.call('HGET', KEYS[1], 'active') or '0')
if active < tonumber(ARGV[2]) then redis.call('HSET', KEYS[1], 'active', ARGV[2]) end
redis.call('HSET', KEYS[1], 'append_id', ARGV[4], 'append_seq', seq)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return {seq, ARGV[1]}
";

/// KEYS: meta, msgs. ARGV: ttl ms. Returns the closed conversation's hash, empty when missing.
const CLOSE_CONVERSATION: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
redis.call('HSET', KEYS[1], 'closed', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[1]) end
return redis.call('HGETALL', KEYS[1])
";

struct Scripts {
    create_conversation: Script,
    index_user: Script,
    append_message: Script,
    close_conversation: Script,
}

/// A message as kept in the list; `seq` and the conversation id come from where it is stored.
#[derive(Serialize, Deserialize)]
struct StoredMessage {
    sender: UserId,
    text: String,
    sent_at_ms: i64,
}

pub struct RedisStore {
    conn: RedisConn,
    keys: Keys,
    retention_ms: i64,
    scripts: Scripts,
}

/// Worth a 503 and a later retry (connection trouble, failover), as opposed to a bug.
fn is_unavailability(err: &RedisError) -> bool {
    err.is_io_error() || !matches!(err.retry_method(), RetryMethod::NoRetry)
}

/// The connection broke under the command: the manager reconnects and one retry may succeed.
fn is_broken_connection(err: &RedisError) -> bool {
    err.is_io_error() || err.is_connection_dropped() || err.is_unrecoverable_error()
}

fn store_error(err: RedisError, doing: &'static str) -> StoreError {
    if is_unavailability(&err) {
        StoreError::Unavailable(anyhow::Error::new(err).context(doing))
    } else {
        StoreError::Unexpected(anyhow::Error::new(err).context(doing))
    }
}

fn millis(instant: DateTime<Utc>) -> i64 {
    instant.timestamp_millis()
}

fn from_millis(ms: i64) -> anyhow::Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| anyhow!("timestamp {ms} out of range"))
}

fn parse_conversation(id: Uuid, hash: &HashMap<String, String>) -> anyhow::Result<Conversation> {
    let field = |name: &str| {
        hash.get(name)
            .ok_or_else(|| anyhow!("conversation {id} has no `{name}` field"))
    };
    let participants = field("participants")?
        .split(',')
        .map(UserId::parse)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("conversation {id} has an invalid participant"))?;
    let created: i64 = field("created")?.parse().context("parsing `created`")?;
    let active: i64 = field("active")?.parse().context("parsing `active`")?;
    Ok(Conversation {
        id,
        participants,
        created_at: from_millis(created)?,
        last_activity_at: from_millis(active)?,
        closed: field("closed")? == "1",
    })
}

fn parse_message(conversation_id: Uuid, seq: u64, raw: &str) -> anyhow::Result<Message> {
    let stored: StoredMessage = serde_json::from_str(raw)
        .with_context(|| format!("parsing message {seq} of conversation {conversation_id}"))?;
    Ok(Message {
        seq,
        conversation_id,
        sender: stored.sender,
        text: stored.text,
        sent_at: from_millis(stored.sent_at_ms)?,
    })
}

fn newest_first(conversations: &mut [Conversation]) {
    conversations.sort_by(|a, b| {
        b.last_activity_at
            .cmp(&a.last_activity_at)
            .then(a.id.cmp(&b.id))
    });
}

impl RedisStore {
    /// Prepares the connection without waiting for Redis: the service starts (not ready) while
    /// Redis is down and connects when it comes up. Fails only on an invalid configuration.
    pub fn connect(config: &RedisStoreConfig) -> anyhow::Result<Self> {
        if config.key_prefix.contains(['{', '}']) {
            anyhow::bail!("REDIS_KEY_PREFIX must not contain braces: they would break hash tags");
        }
        let conn = RedisConn::connect(&config.url, config.cluster)?;
        Ok(Self {
            conn,
            keys: Keys {
                prefix: config.key_prefix.clone(),
            },
            retention_ms: i64::try_from(config.retention.as_millis()).unwrap_or(i64::MAX),
            scripts: Scripts {
                create_conversation: Script::new(CREATE_CONVERSATION),
                index_user: Script::new(INDEX_USER),
                append_message: Script::new(APPEND_MESSAGE),
                close_conversation: Script::new(CLOSE_CONVERSATION),
            },
        })
    }

    /// Runs `op`, once more if the connection broke under it: after Redis restarts, the first
    /// command on the old connection fails while the manager reconnects. Every operation given
    /// here is idempotent (appends carry an id the script deduplicates).
    async fn run<T, F, Fut>(&self, doing: &'static str, op: F) -> Result<T, StoreError>
    where
        F: Fn(RedisConn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        match op(self.conn.clone()).await {
            Ok(value) => Ok(value),
            Err(err) if is_broken_connection(&err) => {
                tracing::debug!(error = %err, doing, "redis connection broke; retrying once");
                op(self.conn.clone())
                    .await
                    .map_err(|err| store_error(err, doing))
            }
            Err(err) => Err(store_error(err, doing)),
        }
    }

    async fn index_for_user(
        &self,
        user: &UserId,
        conversation_id: Uuid,
        at: DateTime<Utc>,
        contacts: &[&UserId],
    ) -> Result<(), StoreError> {
        let convs = self.keys.user_conversations(user);
        let contacts_key = self.keys.user_contacts(user);
        let id = conversation_id.to_string();
        let at_ms = millis(at);
        let prune_before = at_ms.saturating_sub(self.retention_ms);
        self.run("indexing a conversation for a user", |mut conn| {
            let mut invocation = self.scripts.index_user.key(&convs);
            invocation
                .key(&contacts_key)
                .arg(&id)
                .arg(at_ms)
                .arg(self.retention_ms)
                .arg(prune_before);
            for contact in contacts {
                invocation.arg(contact.as_str());
            }
            async move { invocation.invoke_async::<i64>(&mut conn).await }
        })
        .await
        .map(drop)
    }

    async fn load_conversation(&self, id: Uuid) -> Result<Option<Conversation>, StoreError> {
        let key = self.keys.conversation_meta(id);
        let hash: HashMap<String, String> = self
            .run("reading a conversation", |mut conn| {
                let key = &key;
                async move { redis::cmd("HGETALL").arg(key).query_async(&mut conn).await }
            })
            .await?;
        if hash.is_empty() {
            return Ok(None);
        }
        Ok(Some(parse_conversation(id, &hash)?))
    }

    /// The conversations behind index entries, skipping those that expired. One command per
    /// conversation (they live in different slots), sent concurrently on the multiplexed connection.
    async fn load_conversations(&self, ids: Vec<String>) -> Result<Vec<Conversation>, StoreError> {
        let ids: Vec<Uuid> = ids.iter().filter_map(|raw| raw.parse().ok()).collect();
        let loaded = try_join_all(ids.into_iter().map(|id| self.load_conversation(id))).await?;
        let mut conversations: Vec<Conversation> = loaded.into_iter().flatten().collect();
        newest_first(&mut conversations);
        Ok(conversations)
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn set_presence(&self, user: &UserId, status: PresenceStatus) -> Result<(), StoreError> {
        let key = self.keys.user_presence(user);
        self.run("setting presence", |mut conn| {
            let key = &key;
            async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(status.as_str())
                    .arg("PX")
                    .arg(self.retention_ms)
                    .exec_async(&mut conn)
                    .await
            }
        })
        .await
    }

    async fn presence(&self, user: &UserId) -> Result<PresenceStatus, StoreError> {
        let key = self.keys.user_presence(user);
        let raw: Option<String> = self
            .run("reading presence", |mut conn| {
                let key = &key;
                async move { redis::cmd("GET").arg(key).query_async(&mut conn).await }
            })
            .await?;
        match raw {
            None => Ok(PresenceStatus::Offline),
            Some(raw) => raw
                .parse()
                .with_context(|| format!("stored presence of {user}"))
                .map_err(StoreError::Unexpected),
        }
    }

    async fn presences(
        &self,
        users: &[UserId],
    ) -> Result<HashMap<UserId, PresenceStatus>, StoreError> {
        let statuses = try_join_all(users.iter().map(|user| self.presence(user))).await?;
        Ok(users.iter().cloned().zip(statuses).collect())
    }

    async fn create_conversation(&self, conversation: &Conversation) -> Result<(), StoreError> {
        // Indexes first: if the conversation itself is never written, the index entries point
        // at nothing and reads skip them. One script per user (each in its own slot).
        try_join_all(conversation.participants.iter().map(|user| {
            let contacts: Vec<&UserId> = conversation
                .participants
                .iter()
                .filter(|other| *other != user)
                .collect();
            async move {
                self.index_for_user(
                    user,
                    conversation.id,
                    conversation.last_activity_at,
                    &contacts,
                )
                .await
            }
        }))
        .await?;
        let key = self.keys.conversation_meta(conversation.id);
        let participants = conversation
            .participants
            .iter()
            .map(UserId::as_str)
            .collect::<Vec<_>>()
            .join(",");
        let created = millis(conversation.created_at);
        self.run("creating a conversation", |mut conn| {
            let mut invocation = self.scripts.create_conversation.key(&key);
            invocation
                .arg(&participants)
                .arg(created)
                .arg(self.retention_ms);
            async move { invocation.invoke_async::<i64>(&mut conn).await }
        })
        .await
        .map(drop)
    }

    async fn conversation(&self, id: Uuid) -> Result<Option<Conversation>, StoreError> {
        self.load_conversation(id).await
    }

    async fn conversations_of(&self, user: &UserId) -> Result<Vec<Conversation>, StoreError> {
        let key = self.keys.user_conversations(user);
        let ids: Vec<String> = self
            .run("listing a user's conversations", |mut conn| {
                let key = &key;
                async move {
                    redis::cmd("ZRANGE")
                        .arg(key)
                        .arg(0)
                        .arg(-1)
                        .query_async(&mut conn)
                        .await
                }
            })
            .await?;
        self.load_conversations(ids).await
    }

    async fn open_conversations_since(
        &self,
        user: &UserId,
        since: DateTime<Utc>,
    ) -> Result<Vec<Conversation>, StoreError> {
        let key = self.keys.user_conversations(user);
        let since_ms = millis(since);
        // Index scores never lag behind the conversations (indexes are written first), so this
        // range holds every conversation active since `since`, plus possibly a few that are not.
        let ids: Vec<String> = self
            .run("listing a user's recent conversations", |mut conn| {
                let key = &key;
                async move {
                    redis::cmd("ZRANGE")
                        .arg(key)
                        .arg(since_ms)
                        .arg("+inf")
                        .arg("BYSCORE")
                        .query_async(&mut conn)
                        .await
                }
            })
            .await?;
        let mut conversations = self.load_conversations(ids).await?;
        conversations.retain(|c| !c.closed && c.last_activity_at >= since);
        Ok(conversations)
    }

    async fn append_message(
        &self,
        conversation: &Conversation,
        sender: &UserId,
        text: &str,
        at: DateTime<Utc>,
    ) -> Result<AppendOutcome, StoreError> {
        let conversation_id = conversation.id;
        if conversation.closed {
            return Ok(AppendOutcome::Closed);
        }
        // Scores first (they may run ahead of the truth, never lag behind it).
        try_join_all(
            conversation
                .participants
                .iter()
                .map(|user| self.index_for_user(user, conversation_id, at, &[])),
        )
        .await?;
        let meta = self.keys.conversation_meta(conversation_id);
        let msgs = self.keys.conversation_messages(conversation_id);
        let payload = serde_json::to_string(&StoredMessage {
            sender: sender.clone(),
            text: text.to_owned(),
            sent_at_ms: millis(at),
        })
        .context("encoding a message")?;
        let append_id = Uuid::new_v4().to_string();
        let (seq, stored): (i64, String) = self
            .run("appending a message", |mut conn| {
                let mut invocation = self.scripts.append_message.key(&meta);
                invocation
                    .key(&msgs)
                    .arg(&payload)
                    .arg(millis(at))
                    .arg(self.retention_ms)
                    .arg(&append_id);
                async move { invocation.invoke_async(&mut conn).await }
            })
            .await?;
        match seq {
            -1 => Ok(AppendOutcome::Missing),
            -2 => Ok(AppendOutcome::Closed),
            seq => {
                let seq = u64::try_from(seq).context("negative message seq")?;
                let raw = if stored.is_empty() { &payload } else { &stored };
                Ok(AppendOutcome::Appended(parse_message(
                    conversation_id,
                    seq,
                    raw,
                )?))
            }
        }
    }

    async fn messages(
        &self,
        conversation_id: Uuid,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let Ok(start) = i64::try_from(after) else {
            return Ok(Vec::new());
        };
        let stop = start.saturating_add(i64::try_from(limit).unwrap_or(i64::MAX) - 1);
        let key = self.keys.conversation_messages(conversation_id);
        let raw: Vec<String> = self
            .run("reading messages", |mut conn| {
                let key = &key;
                async move {
                    redis::cmd("LRANGE")
                        .arg(key)
                        .arg(start)
                        .arg(stop)
                        .query_async(&mut conn)
                        .await
                }
            })
            .await?;
        raw.iter()
            .zip(after + 1..)
            .map(|(raw, seq)| parse_message(conversation_id, seq, raw).map_err(StoreError::from))
            .collect()
    }

    async fn close_conversation(&self, id: Uuid) -> Result<Option<Conversation>, StoreError> {
        let meta = self.keys.conversation_meta(id);
        let msgs = self.keys.conversation_messages(id);
        let hash: HashMap<String, String> = self
            .run("closing a conversation", |mut conn| {
                let mut invocation = self.scripts.close_conversation.key(&meta);
                invocation.key(&msgs).arg(self.retention_ms);
                async move { invocation.invoke_async(&mut conn).await }
            })
            .await?;
        if hash.is_empty() {
            return Ok(None);
        }
        Ok(Some(parse_conversation(id, &hash)?))
    }

    async fn share_conversation(&self, a: &UserId, b: &UserId) -> Result<bool, StoreError> {
        let key = self.keys.user_contacts(a);
        self.run("checking a contact", |mut conn| {
            let key = &key;
            async move {
                redis::cmd("SISMEMBER")
                    .arg(key)
                    .arg(b.as_str())
                    .query_async(&mut conn)
                    .await
            }
        })
        .await
    }

    fn attach_to_this_thread(&self) {
        self.conn.attach_to_this_thread();
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let pong: String = self
            .run("pinging redis", |mut conn| async move {
                redis::cmd("PING").query_async(&mut conn).await
            })
            .await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(StoreError::Unexpected(anyhow!("PING answered {pong:?}")))
        }
    }
}
