//! The Redis store: standalone or cluster, every key hash-tagged per entity and expiring.
//!
//! Keys (`P` is the configured prefix):
//! - `P:{c.<id>}:meta`      hash: participants (creator first), created (ms), active (ms of the
//!   newest message; absent until someone posts), closed, posters (who posted, in order), hidden
//!   (participants who blocked the creator when it was opened), seq (of the newest message),
//!   the last append id
//! - `P:{c.<id>}:msgs`      list: the newest `IM_MESSAGES_KEPT` messages as JSON, oldest first
//! - `P:{u.<user>}:convs`   sorted set: the conversations the user sees, scored by activity (ms)
//! - `P:{u.<user>}:open`    sorted set: the open conversations that count for the user (opened or
//!   answered), scored by activity: at most `IM_MAX_OPEN_CONVERSATIONS`, and what a partners
//!   query reads
//! - `P:{u.<user>}:contacts` set: users the user has talked with (both posted in a conversation)
//! - `P:{u.<user>}:blocks`  sorted set: users this user blocks, scored by when (ms)
//! - `P:{u.<user>}:presence` string: presence status
//!
//! A Lua script touches one slot only. Every change that lives in one slot is one script:
//! presence, block and unblock (limit included), a conversation's own state (create, append +
//! posters + activity + trim, close). A change that spans slots (creating, posting in and closing
//! a conversation also update the participants' indexes) is a fixed sequence of such scripts,
//! each idempotent, ordered so that an interruption never shows a half-written state:
//! - a user's open-conversation slot is taken (limit checked in the same script) *before* the
//!   conversation is created or the user's first message is appended, and freed *after* it is
//!   closed; a slot held by a conversation that was closed or never created is reclaimed when
//!   the user reaches the limit (the entries are checked against the conversations then);
//! - index scores are written before the conversation changes: they may run ahead of the truth,
//!   never lag behind it, and every read checks the conversation itself;
//! - contacts (who may see whose presence) are written only *after* the message that makes two
//!   users talk, so they lag the truth; every later message in the conversation re-adds the
//!   pairs already complete, which heals an update that was interrupted.
//!
//! Reads that span slots are batched: on a standalone server one pipeline, on a cluster one
//! pipeline per slot, all sent at once. Every write refreshes the TTL (retention) of the keys
//! it touches; every key is written with one.

use std::{collections::HashMap, future::Future, time::Duration};

use anyhow::{Context, anyhow};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::future::try_join_all;
use redis::{Cmd, FromRedisValue, RedisError, RedisResult, RetryMethod, Script, Value};
use serde::{Deserialize, Serialize};
use service_kit::redis_conn::RedisConn;
use shared_types::{
    UserId,
    im::{Block, Conversation, Message},
    presence::PresenceStatus,
};
use uuid::Uuid;

use super::{AppendOutcome, BlockOutcome, CreateOutcome, Store, StoreError, StoreLimits};
use crate::domain::{CandidateFacts, ConversationRecord, Relationship};

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
    pub limits: StoreLimits,
}

/// How long an open-conversation slot may name a conversation that does not exist before it
/// counts as the leftover of an interrupted creation (a creation in flight takes far less).
const UNFINISHED_CREATE_GRACE_MS: i64 = 60_000;

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
    fn user_open(&self, user: &UserId) -> String {
        format!("{}:{{u.{user}}}:open", self.prefix)
    }
    fn user_contacts(&self, user: &UserId) -> String {
        format!("{}:{{u.{user}}}:contacts", self.prefix)
    }
    fn user_blocks(&self, user: &UserId) -> String {
        format!("{}:{{u.{user}}}:blocks", self.prefix)
    }
    fn user_presence(&self, user: &UserId) -> String {
        format!("{}:{{u.{user}}}:presence", self.prefix)
    }
}

/// KEYS: presence, blocks. ARGV: status, ttl ms. A user's activity keeps their blocks alive.
const SET_PRESENCE: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
";

/// Takes (or keeps) a user's open-conversation slot for a conversation they open or answer,
/// and indexes it for them. KEYS: open, convs, contacts, blocks. ARGV: conversation id, activity
/// ms, ttl ms, limit (0: only keep a slot already held), prune-before ms, n, n stale ids to drop
/// first, then contacts to add. Returns 0, changing nothing else, when the slot is new and the
/// user is at the limit; 1 without writing when there is no slot to keep (it was freed: the
/// conversation was closed meanwhile).
const RESERVE: &str = r"
local n = tonumber(ARGV[6])
for i = 7, 6 + n do redis.call('ZREM', KEYS[1], ARGV[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[5])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  if tonumber(ARGV[4]) == 0 then return 1 end
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
end
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[2], 'GT', ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[5])
if #ARGV > 6 + n then redis.call('SADD', KEYS[3], unpack(ARGV, 7 + n)) end
for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
return 1
";

/// Indexes a new conversation for a participant other than its creator, unless they block the
/// creator: then it stays out of their index (they never see it) and 0 is returned.
/// KEYS: convs, blocks. ARGV: conversation id, activity ms, ttl ms, prune-before ms, creator.
const INDEX_PARTICIPANT: &str = r"
if redis.call('ZSCORE', KEYS[2], ARGV[5]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return 0
end
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
";

/// Moves a conversation's scores forward in a (non-sending) participant's indexes where it is
/// already listed, and re-adds contacts already earned. KEYS: convs, open, contacts.
/// ARGV: conversation id, activity ms, ttl ms, contacts...
const TOUCH_PARTICIPANT: &str = r"
redis.call('ZADD', KEYS[1], 'XX', 'GT', ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[2], 'XX', 'GT', ARGV[2], ARGV[1])
if #ARGV > 3 then redis.call('SADD', KEYS[3], unpack(ARGV, 4)) end
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
return 1
";

/// KEYS: contacts. ARGV: ttl ms, users...
const ADD_CONTACTS: &str = r"
redis.call('SADD', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
";

/// KEYS: meta. ARGV: participants (comma-separated), created ms, ttl ms, hidden (comma-separated).
/// Creates only: a retry after a lost reply must not reset a conversation someone already uses.
const CREATE_CONVERSATION: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'participants', ARGV[1], 'created', ARGV[2], 'closed', '0',
  'hidden', ARGV[4], 'posters', '', 'seq', '0')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
";

/// KEYS: meta, msgs. ARGV: message JSON, activity ms, ttl ms, append id, messages kept, sender.
/// Appends, drops the oldest beyond the kept count, records the sender as a poster and moves
/// the last activity, at once. Returns {seq, stored JSON, posters, 1 if the sender posts here
/// for the first time}; seq -1 when missing, -2 when closed. Replaying the same append id (a
/// retry after a dropped connection) returns the first result instead of appending twice.
const APPEND_MESSAGE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, '', '', 0} end
local posters = redis.call('HGET', KEYS[1], 'posters') or ''
if redis.call('HGET', KEYS[1], 'append_id') == ARGV[4] then
  local seq = tonumber(redis.call('HGET', KEYS[1], 'append_seq'))
  local last = tonumber(redis.call('HGET', KEYS[1], 'seq'))
  local index = redis.call('LLEN', KEYS[2]) - 1 - (last - seq)
  local stored = ''
  if index >= 0 then stored = redis.call('LINDEX', KEYS[2], index) or '' end
  return {seq, stored, posters, tonumber(redis.call('HGET', KEYS[1], 'append_newly') or '0')}
end
if redis.call('HGET', KEYS[1], 'closed') == '1' then return {-2, '', '', 0} end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or redis.call('LLEN', KEYS[2])) + 1
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[5]), -1)
local active = redis.call('HGET', KEYS[1], 'active')
if (not active) or tonumber(active) < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'active', ARGV[2])
end
local newly = 0
if not string.find(',' .. posters .. ',', ',' .. ARGV[6] .. ',', 1, true) then
  if posters == '' then posters = ARGV[6] else posters = posters .. ',' .. ARGV[6] end
  newly = 1
end
redis.call('HSET', KEYS[1], 'seq', seq, 'posters', posters, 'append_id', ARGV[4],
  'append_seq', seq, 'append_newly', newly)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return {seq, ARGV[1], posters, newly}
";

/// KEYS: meta, msgs. ARGV: after, limit. Returns {seq of the first returned, messages}: the kept
/// messages with a greater seq, oldest first.
const READ_MESSAGES: &str = r"
local len = redis.call('LLEN', KEYS[2])
if len == 0 then return {0, {}} end
local last = tonumber(redis.call('HGET', KEYS[1], 'seq') or len)
local after = tonumber(ARGV[1])
if after >= last then return {0, {}} end
local first = last - len + 1
local from = math.max(after + 1, first)
local start = from - first
return {from, redis.call('LRANGE', KEYS[2], start, start + tonumber(ARGV[2]) - 1)}
";

/// KEYS: meta, msgs. ARGV: ttl ms. Returns the closed conversation's hash, empty when missing.
const CLOSE_CONVERSATION: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
redis.call('HSET', KEYS[1], 'closed', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[1]) end
return redis.call('HGETALL', KEYS[1])
";

/// KEYS: blocks. ARGV: blocked user, at ms, ttl ms, limit. Returns 0 blocked, 1 already
/// blocked (its time kept), -1 at the limit (nothing changed).
const BLOCK: &str = r"
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return -1 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 0
";

/// KEYS: blocks. ARGV: blocked user, ttl ms.
const UNBLOCK: &str = r"
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
";

struct Scripts {
    set_presence: Script,
    reserve: Script,
    index_participant: Script,
    touch_participant: Script,
    add_contacts: Script,
    create_conversation: Script,
    append_message: Script,
    read_messages: Script,
    close_conversation: Script,
    block: Script,
    unblock: Script,
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
    limits: StoreLimits,
    scripts: Scripts,
}

/// Commands that all name keys of one entity (one hash tag, so one slot).
type Group = Vec<Cmd>;

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

/// A score read back from Redis (a float holding whole milliseconds).
fn score_millis(score: f64) -> i64 {
    // Scores are milliseconds written by this store: well within f64's exact integers.
    #[expect(clippy::cast_possible_truncation, reason = "whole milliseconds")]
    let ms = score.round() as i64;
    ms
}

fn parse<T: FromRedisValue>(value: Value, what: &str) -> Result<T, StoreError> {
    redis::from_redis_value(value)
        .map_err(|err| StoreError::Unexpected(anyhow!("parsing {what}: {err}")))
}

/// Comma-separated user ids; empty entries are skipped.
fn parse_users(raw: &str) -> anyhow::Result<Vec<UserId>> {
    raw.split(',')
        .filter(|item| !item.is_empty())
        .map(UserId::parse)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("invalid user id in {raw:?}"))
}

fn join_users<'a>(users: impl IntoIterator<Item = &'a UserId>) -> String {
    users
        .into_iter()
        .map(UserId::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

fn parse_record(id: Uuid, hash: &HashMap<String, String>) -> anyhow::Result<ConversationRecord> {
    let field = |name: &str| {
        hash.get(name)
            .ok_or_else(|| anyhow!("conversation {id} has no `{name}` field"))
    };
    let users = |name: &str| {
        hash.get(name)
            .map(|raw| parse_users(raw))
            .transpose()
            .map(Option::unwrap_or_default)
            .with_context(|| format!("conversation {id}, `{name}`"))
    };
    let participants = parse_users(field("participants")?)
        .with_context(|| format!("conversation {id}, `participants`"))?;
    let created: i64 = field("created")?.parse().context("parsing `created`")?;
    let active = hash
        .get("active")
        .map(|raw| raw.parse::<i64>())
        .transpose()
        .context("parsing `active`")?
        .map(from_millis)
        .transpose()?;
    Ok(ConversationRecord {
        conversation: Conversation {
            id,
            participants,
            created_at: from_millis(created)?,
            last_activity_at: active,
            closed: field("closed")? == "1",
        },
        posters: users("posters")?,
        hidden_from: users("hidden")?,
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
        b.activity_key()
            .cmp(&a.activity_key())
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
            limits: config.limits,
            scripts: Scripts {
                set_presence: Script::new(SET_PRESENCE),
                reserve: Script::new(RESERVE),
                index_participant: Script::new(INDEX_PARTICIPANT),
                touch_participant: Script::new(TOUCH_PARTICIPANT),
                add_contacts: Script::new(ADD_CONTACTS),
                create_conversation: Script::new(CREATE_CONVERSATION),
                append_message: Script::new(APPEND_MESSAGE),
                read_messages: Script::new(READ_MESSAGES),
                close_conversation: Script::new(CLOSE_CONVERSATION),
                block: Script::new(BLOCK),
                unblock: Script::new(UNBLOCK),
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

    /// One script call (every key in one slot).
    async fn invoke<T: FromRedisValue>(
        &self,
        doing: &'static str,
        script: &Script,
        keys: &[String],
        args: &[String],
    ) -> Result<T, StoreError> {
        self.run(doing, |mut conn| {
            let mut invocation = script.prepare_invoke();
            for key in keys {
                invocation.key(key);
            }
            for arg in args {
                invocation.arg(arg);
            }
            async move { invocation.invoke_async(&mut conn).await }
        })
        .await
    }

    /// Sends groups of commands at once, each group naming keys of one slot only: on a
    /// standalone server one pipeline for all of them, on a cluster one pipeline per group, all
    /// in flight together. Returns each group's replies, in order.
    async fn batch(
        &self,
        doing: &'static str,
        groups: &[Group],
    ) -> Result<Vec<Vec<Value>>, StoreError> {
        if groups.iter().all(Vec::is_empty) {
            return Ok(groups.iter().map(|_| Vec::new()).collect());
        }
        self.run(doing, |mut conn| async move {
            if conn.is_cluster() {
                try_join_all(groups.iter().map(|group| {
                    let mut conn = conn.clone();
                    async move {
                        if group.is_empty() {
                            return Ok(Vec::new());
                        }
                        let mut pipe = redis::pipe();
                        for cmd in group {
                            pipe.add_command(cmd.clone());
                        }
                        pipe.query_async::<Vec<Value>>(&mut conn).await
                    }
                }))
                .await
            } else {
                let mut pipe = redis::pipe();
                for cmd in groups.iter().flatten() {
                    pipe.add_command(cmd.clone());
                }
                let mut replies = pipe.query_async::<Vec<Value>>(&mut conn).await?.into_iter();
                Ok(groups
                    .iter()
                    .map(|group| replies.by_ref().take(group.len()).collect())
                    .collect())
            }
        })
        .await
    }

    /// The conversations with these ids that exist, by id: one read per conversation, batched.
    async fn load_records(
        &self,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, ConversationRecord>, StoreError> {
        let groups: Vec<Group> = ids
            .iter()
            .map(|id| {
                let mut cmd = redis::cmd("HGETALL");
                cmd.arg(self.keys.conversation_meta(*id));
                vec![cmd]
            })
            .collect();
        let replies = self.batch("reading conversations", &groups).await?;
        let mut found = HashMap::new();
        for (id, reply) in ids.iter().zip(replies) {
            let Some(value) = reply.into_iter().next() else {
                continue;
            };
            let hash: HashMap<String, String> = parse(value, "a conversation")?;
            if !hash.is_empty() {
                found.insert(*id, parse_record(*id, &hash)?);
            }
        }
        Ok(found)
    }

    /// Takes `user`'s open-conversation slot for `id` (or keeps it, moving its score to `at`),
    /// adding `contacts`; `false` when the user is at the limit. At the limit, slots naming
    /// conversations that were closed, or never created and older than a grace period (steps
    /// an interruption left behind), are reclaimed and the reservation tried once more.
    async fn reserve(
        &self,
        user: &UserId,
        id: Uuid,
        at: DateTime<Utc>,
        contacts: &[&UserId],
    ) -> Result<bool, StoreError> {
        let limit = self.limits.max_open_conversations;
        if self
            .invoke_reserve(user, id, at, limit, &[], contacts)
            .await?
        {
            return Ok(true);
        }
        let stale = self.stale_open_entries(user, at).await?;
        if stale.is_empty() {
            return Ok(false);
        }
        self.invoke_reserve(user, id, at, limit, &stale, contacts)
            .await
    }

    /// As [`RedisStore::reserve`] for a user who already holds the slot (the conversation's
    /// creator, or someone who posted in it): moves it forward, never takes a new one.
    async fn keep_reserved(
        &self,
        user: &UserId,
        id: Uuid,
        at: DateTime<Utc>,
        contacts: &[&UserId],
    ) -> Result<(), StoreError> {
        self.invoke_reserve(user, id, at, 0, &[], contacts)
            .await
            .map(drop)
    }

    async fn invoke_reserve(
        &self,
        user: &UserId,
        id: Uuid,
        at: DateTime<Utc>,
        limit: usize,
        stale: &[String],
        contacts: &[&UserId],
    ) -> Result<bool, StoreError> {
        let at_ms = millis(at);
        let keys = [
            self.keys.user_open(user),
            self.keys.user_conversations(user),
            self.keys.user_contacts(user),
            self.keys.user_blocks(user),
        ];
        let mut args = vec![
            id.to_string(),
            at_ms.to_string(),
            self.retention_ms.to_string(),
            limit.to_string(),
            at_ms.saturating_sub(self.retention_ms).to_string(),
            stale.len().to_string(),
        ];
        args.extend(stale.iter().cloned());
        args.extend(contacts.iter().map(|c| c.to_string()));
        let taken: i64 = self
            .invoke(
                "taking an open-conversation slot",
                &self.scripts.reserve,
                &keys,
                &args,
            )
            .await?;
        Ok(taken == 1)
    }

    /// The entries of `user`'s open conversations that no longer hold a slot: closed
    /// conversations, and missing ones reserved more than a grace period before `now`.
    async fn stale_open_entries(
        &self,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let mut cmd = redis::cmd("ZRANGE");
        cmd.arg(self.keys.user_open(user))
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES");
        let reply = self
            .batch("listing open conversations", &[vec![cmd]])
            .await?;
        let entries: Vec<(String, f64)> = match reply.into_iter().flatten().next() {
            Some(value) => parse(value, "open conversations")?,
            None => Vec::new(),
        };
        let ids: Vec<Uuid> = entries
            .iter()
            .filter_map(|(raw, _)| raw.parse().ok())
            .collect();
        let records = self.load_records(&ids).await?;
        let grace_floor = millis(now).saturating_sub(UNFINISHED_CREATE_GRACE_MS);
        Ok(entries
            .into_iter()
            .filter(|(raw, score)| match raw.parse::<Uuid>() {
                Err(_) => true,
                Ok(id) => match records.get(&id) {
                    Some(record) => record.conversation.closed,
                    None => score_millis(*score) < grace_floor,
                },
            })
            .map(|(raw, _)| raw)
            .collect())
    }

    /// Adds `users` to `user`'s contacts.
    async fn add_contacts(&self, user: &UserId, users: &[&UserId]) -> Result<(), StoreError> {
        if users.is_empty() {
            return Ok(());
        }
        let mut args = vec![self.retention_ms.to_string()];
        args.extend(users.iter().map(|u| u.to_string()));
        self.invoke::<i64>(
            "adding contacts",
            &self.scripts.add_contacts,
            &[self.keys.user_contacts(user)],
            &args,
        )
        .await
        .map(drop)
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn set_presence(&self, user: &UserId, status: PresenceStatus) -> Result<(), StoreError> {
        self.invoke::<i64>(
            "setting presence",
            &self.scripts.set_presence,
            &[self.keys.user_presence(user), self.keys.user_blocks(user)],
            &[status.as_str().to_owned(), self.retention_ms.to_string()],
        )
        .await
        .map(drop)
    }

    async fn presence(&self, user: &UserId) -> Result<PresenceStatus, StoreError> {
        let key = self.keys.user_presence(user);
        let raw: Option<String> = self
            .run("reading presence", |mut conn| {
                let key = &key;
                async move { redis::cmd("GET").arg(key).query_async(&mut conn).await }
            })
            .await?;
        parse_presence(user, raw)
    }

    async fn relationship(
        &self,
        viewer: &UserId,
        subject: &UserId,
    ) -> Result<(Relationship, PresenceStatus), StoreError> {
        let mut talked = redis::cmd("SISMEMBER");
        talked
            .arg(self.keys.user_contacts(viewer))
            .arg(subject.as_str());
        let mut viewer_blocks = redis::cmd("ZSCORE");
        viewer_blocks
            .arg(self.keys.user_blocks(viewer))
            .arg(subject.as_str());
        let mut presence = redis::cmd("GET");
        presence.arg(self.keys.user_presence(subject));
        let mut subject_blocks = redis::cmd("ZSCORE");
        subject_blocks
            .arg(self.keys.user_blocks(subject))
            .arg(viewer.as_str());
        let replies = self
            .batch(
                "reading a relationship",
                &[vec![talked, viewer_blocks], vec![presence, subject_blocks]],
            )
            .await?;
        let mut values = replies.into_iter().flatten();
        let mut next = |what: &str| {
            values
                .next()
                .ok_or_else(|| StoreError::Unexpected(anyhow!("no reply for {what}")))
        };
        let talked: bool = parse(next("contacts")?, "contacts")?;
        let viewer_blocks: Option<f64> = parse(next("blocks")?, "blocks")?;
        let status: Option<String> = parse(next("presence")?, "presence")?;
        let subject_blocks: Option<f64> = parse(next("blocks")?, "blocks")?;
        Ok((
            Relationship {
                talked,
                viewer_blocks: viewer_blocks.is_some(),
                subject_blocks: subject_blocks.is_some(),
            },
            parse_presence(subject, status)?,
        ))
    }

    async fn create_conversation(
        &self,
        conversation: &Conversation,
    ) -> Result<CreateOutcome, StoreError> {
        let Some(creator) = conversation.participants.first() else {
            return Err(StoreError::Unexpected(anyhow!(
                "a conversation without participants"
            )));
        };
        let id = conversation.id;
        let created = conversation.created_at;
        // 1. The creator's slot (the limit) and index.
        if !self.reserve(creator, id, created, &[]).await? {
            return Ok(CreateOutcome::Limit);
        }
        // 2. The others' indexes, in their own slots, each checking there whether they block
        //    the creator (then the conversation stays out of their index).
        let others: Vec<&UserId> = conversation.participants.iter().skip(1).collect();
        let created_ms = millis(created).to_string();
        let prune_before = millis(created)
            .saturating_sub(self.retention_ms)
            .to_string();
        let indexed: Vec<i64> = try_join_all(others.iter().map(|user| {
            let keys = [
                self.keys.user_conversations(user),
                self.keys.user_blocks(user),
            ];
            let args = [
                id.to_string(),
                created_ms.clone(),
                self.retention_ms.to_string(),
                prune_before.clone(),
                creator.to_string(),
            ];
            async move {
                self.invoke(
                    "indexing a conversation for a participant",
                    &self.scripts.index_participant,
                    &keys,
                    &args,
                )
                .await
            }
        }))
        .await?;
        let mut record = ConversationRecord::new(conversation.clone());
        record.hidden_from = others
            .iter()
            .zip(indexed)
            .filter(|(_, indexed)| *indexed == 0)
            .map(|(user, _)| (*user).clone())
            .collect();
        // 3. The conversation itself.
        self.invoke::<i64>(
            "creating a conversation",
            &self.scripts.create_conversation,
            &[self.keys.conversation_meta(id)],
            &[
                join_users(&conversation.participants),
                created_ms,
                self.retention_ms.to_string(),
                join_users(&record.hidden_from),
            ],
        )
        .await?;
        Ok(CreateOutcome::Created(record))
    }

    async fn conversation(&self, id: Uuid) -> Result<Option<ConversationRecord>, StoreError> {
        Ok(self.load_records(&[id]).await?.remove(&id))
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
        let ids: Vec<Uuid> = ids.iter().filter_map(|raw| raw.parse().ok()).collect();
        let mut conversations: Vec<Conversation> = self
            .load_records(&ids)
            .await?
            .into_values()
            .filter(|record| record.visible_to(user))
            .map(|record| record.conversation)
            .collect();
        newest_first(&mut conversations);
        Ok(conversations)
    }

    async fn append_message(
        &self,
        record: &ConversationRecord,
        sender: &UserId,
        text: &str,
        at: DateTime<Utc>,
    ) -> Result<AppendOutcome, StoreError> {
        let conversation = &record.conversation;
        let id = conversation.id;
        if conversation.closed {
            return Ok(AppendOutcome::Closed);
        }
        let at_ms = millis(at).to_string();
        // Pairs already complete before this message: re-adding them is safe (they lag the
        // truth) and heals a contact update an earlier append could not finish.
        let sender_contacts: Vec<&UserId> = record.talking_with(sender).collect();
        let touch_others = || {
            try_join_all(
                conversation
                    .participants
                    .iter()
                    .filter(|user| *user != sender && record.visible_to(user))
                    .map(|user| {
                        let keys = [
                            self.keys.user_conversations(user),
                            self.keys.user_open(user),
                            self.keys.user_contacts(user),
                        ];
                        let mut args =
                            vec![id.to_string(), at_ms.clone(), self.retention_ms.to_string()];
                        args.extend(record.talking_with(user).map(|u| u.to_string()));
                        async move {
                            self.invoke::<i64>(
                                "moving a participant's conversation forward",
                                &self.scripts.touch_participant,
                                &keys,
                                &args,
                            )
                            .await
                        }
                    }),
            )
        };
        // 1. Indexes first; a first message that answers a conversation takes the sender's
        //    slot before anything else, and is refused at the limit.
        if record.counts_for(sender) {
            let (kept, touched) = tokio::join!(
                self.keep_reserved(sender, id, at, &sender_contacts),
                touch_others()
            );
            kept?;
            touched?;
        } else {
            if !self.reserve(sender, id, at, &sender_contacts).await? {
                return Ok(AppendOutcome::Limit);
            }
            touch_others().await?;
        }
        // 2. The message, the posters and the activity, in the conversation's slot.
        let payload = serde_json::to_string(&StoredMessage {
            sender: sender.clone(),
            text: text.to_owned(),
            sent_at_ms: millis(at),
        })
        .context("encoding a message")?;
        let append_id = Uuid::new_v4().to_string();
        let (seq, stored, posters, newly): (i64, String, String, i64) = self
            .invoke(
                "appending a message",
                &self.scripts.append_message,
                &[
                    self.keys.conversation_meta(id),
                    self.keys.conversation_messages(id),
                ],
                &[
                    payload.clone(),
                    at_ms,
                    self.retention_ms.to_string(),
                    append_id,
                    self.limits.messages_kept.to_string(),
                    sender.to_string(),
                ],
            )
            .await?;
        let seq = match seq {
            -1 => return Ok(AppendOutcome::Missing),
            -2 => return Ok(AppendOutcome::Closed),
            seq => u64::try_from(seq).context("negative message seq")?,
        };
        // 3. A first message that makes the sender talk with earlier posters: now (and only
        //    now, after the message) they may see each other's presence.
        if newly == 1 {
            let posters = parse_users(&posters)?;
            let others: Vec<&UserId> = posters.iter().filter(|p| *p != sender).collect();
            if !others.is_empty() {
                let sender_side = self.add_contacts(sender, &others);
                let their_side = try_join_all(
                    others
                        .iter()
                        .map(|other| self.add_contacts(other, std::slice::from_ref(&sender))),
                );
                let (mine, theirs) = tokio::join!(sender_side, their_side);
                mine?;
                theirs?;
            }
        }
        let raw = if stored.is_empty() { &payload } else { &stored };
        Ok(AppendOutcome::Appended(parse_message(id, seq, raw)?))
    }

    async fn messages(
        &self,
        conversation_id: Uuid,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        if limit == 0 || i64::try_from(after).is_err() {
            return Ok(Vec::new());
        }
        let (first, raw): (i64, Vec<String>) = self
            .invoke(
                "reading messages",
                &self.scripts.read_messages,
                &[
                    self.keys.conversation_meta(conversation_id),
                    self.keys.conversation_messages(conversation_id),
                ],
                &[after.to_string(), limit.to_string()],
            )
            .await?;
        let first = u64::try_from(first).context("negative message seq")?;
        raw.iter()
            .zip(first..)
            .map(|(raw, seq)| parse_message(conversation_id, seq, raw).map_err(StoreError::from))
            .collect()
    }

    async fn close_conversation(&self, id: Uuid) -> Result<Option<Conversation>, StoreError> {
        let hash: HashMap<String, String> = self
            .invoke(
                "closing a conversation",
                &self.scripts.close_conversation,
                &[
                    self.keys.conversation_meta(id),
                    self.keys.conversation_messages(id),
                ],
                &[self.retention_ms.to_string()],
            )
            .await?;
        if hash.is_empty() {
            return Ok(None);
        }
        let record = parse_record(id, &hash)?;
        // Then every participant's slot is freed (closing again frees them again).
        let groups: Vec<Group> = record
            .conversation
            .participants
            .iter()
            .map(|user| {
                let mut cmd = redis::cmd("ZREM");
                cmd.arg(self.keys.user_open(user)).arg(id.to_string());
                vec![cmd]
            })
            .collect();
        self.batch("freeing open-conversation slots", &groups)
            .await?;
        Ok(Some(record.conversation))
    }

    async fn partner_sources(
        &self,
        user: &UserId,
        since: DateTime<Utc>,
    ) -> Result<(PresenceStatus, Vec<ConversationRecord>), StoreError> {
        // The user's presence and their newest open conversations at once, in their slot.
        let mut presence = redis::cmd("GET");
        presence.arg(self.keys.user_presence(user));
        let mut open = redis::cmd("ZRANGE");
        open.arg(self.keys.user_open(user))
            .arg("+inf")
            .arg(millis(since))
            .arg("BYSCORE")
            .arg("REV")
            .arg("LIMIT")
            .arg(0)
            .arg(self.limits.max_open_conversations);
        let mut replies = self
            .batch(
                "reading a user's open conversations",
                &[vec![presence, open]],
            )
            .await?
            .into_iter()
            .flatten();
        let status: Option<String> = parse(replies.next().unwrap_or(Value::Nil), "presence")?;
        let status = parse_presence(user, status)?;
        if status == PresenceStatus::Offline {
            return Ok((status, Vec::new()));
        }
        let ids: Vec<String> = parse(
            replies.next().unwrap_or(Value::Array(Vec::new())),
            "open conversations",
        )?;
        let ids: Vec<Uuid> = ids.iter().filter_map(|raw| raw.parse().ok()).collect();
        let records = self.load_records(&ids).await?.into_values().collect();
        Ok((status, records))
    }

    async fn candidate_facts(
        &self,
        user: &UserId,
        candidates: &[UserId],
    ) -> Result<Vec<CandidateFacts>, StoreError> {
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let mut blocked_by_user = redis::cmd("ZMSCORE");
        blocked_by_user.arg(self.keys.user_blocks(user));
        for candidate in candidates {
            blocked_by_user.arg(candidate.as_str());
        }
        let mut groups: Vec<Group> = vec![vec![blocked_by_user]];
        for candidate in candidates {
            let mut presence = redis::cmd("GET");
            presence.arg(self.keys.user_presence(candidate));
            let mut blocks_user = redis::cmd("ZSCORE");
            blocks_user
                .arg(self.keys.user_blocks(candidate))
                .arg(user.as_str());
            groups.push(vec![presence, blocks_user]);
        }
        let mut replies = self
            .batch("reading partner candidates", &groups)
            .await?
            .into_iter();
        let blocked: Vec<Option<f64>> = parse(
            replies
                .next()
                .into_iter()
                .flatten()
                .next()
                .unwrap_or(Value::Nil),
            "blocks",
        )?;
        candidates
            .iter()
            .zip(replies)
            .enumerate()
            .map(|(i, (candidate, reply))| {
                let mut reply = reply.into_iter();
                let status: Option<String> = parse(reply.next().unwrap_or(Value::Nil), "presence")?;
                let blocks_user: Option<f64> = parse(reply.next().unwrap_or(Value::Nil), "blocks")?;
                Ok(CandidateFacts {
                    status: parse_presence(candidate, status)?,
                    blocks_user: blocks_user.is_some(),
                    blocked_by_user: blocked.get(i).copied().flatten().is_some(),
                })
            })
            .collect()
    }

    async fn block(
        &self,
        blocker: &UserId,
        blocked: &UserId,
        at: DateTime<Utc>,
    ) -> Result<BlockOutcome, StoreError> {
        let outcome: i64 = self
            .invoke(
                "blocking a user",
                &self.scripts.block,
                &[self.keys.user_blocks(blocker)],
                &[
                    blocked.to_string(),
                    millis(at).to_string(),
                    self.retention_ms.to_string(),
                    self.limits.max_blocks.to_string(),
                ],
            )
            .await?;
        Ok(match outcome {
            0 => BlockOutcome::Blocked,
            1 => BlockOutcome::AlreadyBlocked,
            _ => BlockOutcome::Limit,
        })
    }

    async fn unblock(&self, blocker: &UserId, blocked: &UserId) -> Result<(), StoreError> {
        self.invoke::<i64>(
            "unblocking a user",
            &self.scripts.unblock,
            &[self.keys.user_blocks(blocker)],
            &[blocked.to_string(), self.retention_ms.to_string()],
        )
        .await
        .map(drop)
    }

    async fn blocks(&self, blocker: &UserId) -> Result<Vec<Block>, StoreError> {
        let key = self.keys.user_blocks(blocker);
        let entries: Vec<(String, f64)> = self
            .run("listing blocks", |mut conn| {
                let key = &key;
                async move {
                    redis::cmd("ZRANGE")
                        .arg(key)
                        .arg(0)
                        .arg(-1)
                        .arg("WITHSCORES")
                        .query_async(&mut conn)
                        .await
                }
            })
            .await?;
        let mut blocks = entries
            .into_iter()
            .map(|(user, score)| {
                Ok(Block {
                    user_id: UserId::parse(&user)
                        .with_context(|| format!("a blocked user id {user:?}"))?,
                    blocked_at: from_millis(score_millis(score))?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        super::newest_block_first(&mut blocks);
        Ok(blocks)
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

fn parse_presence(user: &UserId, raw: Option<String>) -> Result<PresenceStatus, StoreError> {
    match raw {
        None => Ok(PresenceStatus::Offline),
        Some(raw) => raw
            .parse()
            .with_context(|| format!("stored presence of {user}"))
            .map_err(StoreError::Unexpected),
    }
}
