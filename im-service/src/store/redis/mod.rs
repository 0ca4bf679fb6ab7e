//! The Redis store: standalone or cluster, every key hash-tagged per entity and expiring.
//!
//! Keys (`P` is the configured prefix):
//! - `P:{c.<id>}:meta`      hash: participants (creator first), created (ms), active (ms of the
//!   newest message; absent until someone posts), closed, posters (who posted, in order), hidden
//!   (participants who blocked the creator when it was opened), seq (of the newest message),
//!   the last append id
//! - `P:{c.<id>}:msgs`      list: the newest `IM_MESSAGES_KEPT` messages as JSON, oldest first
//! - `P:{c.<id>}:games`     sorted set: the game sessions announced in the conversation, scored
//!   by the seq of their message (at most `IM_MESSAGES_KEPT`): an announcement is appended once
//! - `P:{c.<id>}:idem.msg.<sender>:<key>` hash: what the sender's `Idempotency-Key` posted
//!   here (`fingerprint`: SHA-1 of what the request asked, `seq`, `message` JSON, `newly`),
//!   written by the append it guards; TTL the key window (a day, or the retention when shorter)
//!   from the first request, never refreshed
//! - `P:{u.<user>}:convs`   sorted set: the conversations the user sees, scored by activity (ms)
//! - `P:{u.<user>}:open`    sorted set: the open conversations that count for the user (opened or
//!   answered), scored by activity: at most `IM_MAX_OPEN_CONVERSATIONS`, and what a partners
//!   query reads
//! - `P:{u.<user>}:contacts` set: users the user has talked with (both posted in a conversation)
//! - `P:{u.<user>}:blocks`  sorted set: users this user blocks, scored by when (ms)
//! - `P:{u.<user>}:idem.conv:<key>` hash: what the user's `Idempotency-Key` opened
//!   (`fingerprint`, `answer`: the conversation as opened), written by the script that takes
//!   the creator's open-conversation slot; TTL as a message's key
//! - `P:{u.<user>}:presence` string: presence status
//! - `P:{u.<user>}:presence_seq` hash: `seq` of the user's newest status change, and `p.<seq>`
//!   = "<status> <ms>" for each change not yet known to be in the presence feed (the unfed
//!   marks); as long-lived as the presence
//! - `P:{u.<user>}:activity` hash: the user's game activity (`session`, `mode`, `since` ms;
//!   absent when not playing) and `seq` of the newest report applied
//! - `P:{feed.<n>}:changes` stream: shard `n` of the presence feed (`IM_FEED_SHARDS`, by
//!   FNV-1a of the user id): entries `user_id`, `status`, `seq`, `at` (ms), trimmed to about
//!   `IM_FEED_KEPT`, kept at least a day after the newest
//! - `P:{feed.<n>}:appended` sorted set: users scored by the newest `seq` appended to the
//!   shard (the newest `IM_FEED_KEPT`): each change is appended once, a user's in `seq` order
//! - `P:{u.<user>}:events`  stream: the user's newest IM events (an hour after the newest),
//!   each also published on `P:events` for every replica's streams
//! - `P:{u.<user>}:event_marks` sorted set: marks of the events appended, scored by when
//!   (a retried fan-out finds its own; twice as many as the events kept)
//!
//! A Lua script touches one slot only. Every change that lives in one slot is one script:
//! presence, a user's activity reports, block and unblock (limit included), a conversation's own state (create, append +
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
//!   pairs already complete, which heals an update that was interrupted;
//! - a presence change is recorded (status, `seq`, unfed mark) in the user's slot, then
//!   appended to its feed shard, then its mark cleared: an interruption leaves the mark, and
//!   the user's next presence update appends the marked changes again (the shard takes each
//!   once); see `Store::set_presence`;
//! - an idempotency key is recorded by the script of the step that commits its change (the
//!   creator's slot for a creation, the append for a message); a repeat finds it there, changes
//!   nothing, and finishes the later steps (each idempotent) under the first request's id;
//! - events come last, after the change they tell of, one script per user's slot, each
//!   appended once (a mark per event): an interrupted fan-out may leave a user without the
//!   event (never with an event of a change that did not happen); clients read the
//!   conversation again when their stream (re)opens.
//!
//! Reads that span slots are batched: on a standalone server one pipeline, on a cluster one
//! pipeline per slot, all sent at once. Every write refreshes the TTL (retention) of the keys
//! it touches; every key is written with one.
//!
//! # Layout
//! - `conversations` and `messages`: creating, listing and closing conversations; appending
//!   and reading messages (the cross-slot sequences above).
//! - `open_slots`: the open-conversation limit: taking, keeping, freeing, reclaiming slots.
//! - `presence`, `blocks`, `partners`: presence and contacts; blocks; what a partners query reads.
//! - `activity`, `feed`: game activity reports; the presence feed (appending, reading).
//! - `commands`: retrying once on a broken connection, script calls, batches per slot.
//! - `keys`, `scripts` (`lua/`), `values`: key names, the Lua scripts, stored values.
//!
//! Each operation of [`Store`] is a function of its topic's module; what several share
//! (running commands, reading records, taking slots, adding contacts) are `RedisStore` methods.

mod activity;
mod blocks;
mod commands;
mod conversations;
mod events;
mod feed;
mod keys;
mod messages;
mod open_slots;
mod partners;
mod presence;
mod scripts;
mod values;

use std::time::Duration;

use anyhow::anyhow;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use service_kit::{
    config::redis_cluster_nodes,
    events::{
        BROADCAST_CAPACITY, EventLog, Relayed, StoredEvent,
        redis::{ReadError, relay_events},
    },
    redis_conn::RedisConn,
    redis_replication::Replication,
};
use shared_types::{
    UserId,
    activity::{ActivityReport, PresenceChange},
    im::{Block, Conversation, GameAnnouncement, ImEvent, Message},
    presence::{Presence, PresenceStatus},
};
use tokio::{sync::broadcast, task::JoinHandle};
use uuid::Uuid;

use self::{keys::Keys, scripts::Scripts};
use super::{
    AppendOutcome, BlockOutcome, CreateOutcome, PresenceRecorded, Store, StoreError, StoreLimits,
};
use crate::domain::{
    CandidateFacts, ConversationRecord, IdempotencyKey, Relationship, feed::Cursor,
};

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
    /// Replicas every write waits for (`REDIS_MIN_REPLICAS_ACKED`).
    pub replication: Replication,
}

pub struct RedisStore {
    conn: RedisConn,
    keys: Keys,
    retention_ms: i64,
    limits: StoreLimits,
    scripts: Scripts,
    /// Every event any replica appends, relayed from Redis.
    feed: broadcast::Sender<Relayed<ImEvent>>,
    relay: JoinHandle<()>,
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        self.relay.abort();
    }
}

impl RedisStore {
    /// Prepares the connection without waiting for Redis: the service starts (not ready) while
    /// Redis is down and connects when it comes up. Fails only on an invalid configuration.
    pub fn connect(config: &RedisStoreConfig) -> anyhow::Result<Self> {
        if config.key_prefix.contains(['{', '}']) {
            anyhow::bail!("REDIS_KEY_PREFIX must not contain braces: they would break hash tags");
        }
        let conn = RedisConn::connect(&config.url, config.cluster)?.replicated(config.replication);
        let keys = Keys::new(&config.key_prefix);
        // The relay subscribes (and resubscribes) by itself, whenever Redis is up; streams
        // resync from the store each time it does.
        let (feed, _) = broadcast::channel(BROADCAST_CAPACITY);
        let relay = tokio::spawn(relay_events(
            redis_cluster_nodes(&config.url, config.cluster)
                .unwrap_or_else(|| vec![config.url.clone()]),
            keys.events_channel(),
            feed.clone(),
        ));
        Ok(Self {
            conn,
            keys,
            retention_ms: i64::try_from(config.retention.as_millis()).unwrap_or(i64::MAX),
            limits: config.limits,
            scripts: Scripts::load(),
            feed,
            relay,
        })
    }
}

#[async_trait]
impl EventLog<ImEvent> for RedisStore {
    type Error = StoreError;

    async fn events_after(
        &self,
        user: &UserId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredEvent<ImEvent>>, StoreError> {
        let key = self.keys.user_events(user);
        service_kit::events::redis::events_after(&mut self.conn.clone(), &key, user, after, limit)
            .await
            .map_err(|err| match err {
                ReadError::Redis(err) => StoreError::Unavailable(err.into()),
                corrupt @ ReadError::Corrupt { .. } => StoreError::Unexpected(corrupt.into()),
            })
    }

    fn subscribe(&self) -> broadcast::Receiver<Relayed<ImEvent>> {
        self.feed.subscribe()
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn record_presence(
        &self,
        user: &UserId,
        status: PresenceStatus,
    ) -> Result<PresenceRecorded, StoreError> {
        presence::record(self, user, status).await
    }

    async fn feed_presence(
        &self,
        user: &UserId,
        changes: &[PresenceChange],
    ) -> Result<(), StoreError> {
        feed::append(self, user, changes).await
    }

    async fn presence(&self, user: &UserId) -> Result<Presence, StoreError> {
        presence::get(self, user).await
    }

    async fn relationship(
        &self,
        viewer: &UserId,
        subject: &UserId,
    ) -> Result<(Relationship, Presence), StoreError> {
        presence::relationship(self, viewer, subject).await
    }

    async fn apply_activity(&self, reports: &[ActivityReport]) -> Result<(), StoreError> {
        activity::apply(self, reports).await
    }

    fn feed_shards(&self) -> usize {
        self.limits.feed_shards.max(1)
    }

    async fn presence_changes(
        &self,
        after: &Cursor,
        limit: usize,
    ) -> Result<(Vec<PresenceChange>, Cursor), StoreError> {
        feed::read(self, after, limit).await
    }

    async fn create_conversation_keyed(
        &self,
        conversation: &Conversation,
        key: Option<&IdempotencyKey>,
    ) -> Result<CreateOutcome, StoreError> {
        conversations::create(self, conversation, key).await
    }

    async fn conversation(&self, id: Uuid) -> Result<Option<ConversationRecord>, StoreError> {
        conversations::find(self, id).await
    }

    async fn conversations_of(&self, user: &UserId) -> Result<Vec<Conversation>, StoreError> {
        conversations::of_user(self, user).await
    }

    async fn append_message_keyed(
        &self,
        record: &ConversationRecord,
        sender: &UserId,
        text: &str,
        at: DateTime<Utc>,
        key: Option<&IdempotencyKey>,
    ) -> Result<AppendOutcome, StoreError> {
        messages::append(self, record, sender, text, at, key).await
    }

    async fn announce_keyed(
        &self,
        record: &ConversationRecord,
        sender: &UserId,
        text: &str,
        game: &GameAnnouncement,
        at: DateTime<Utc>,
        key: Option<&IdempotencyKey>,
    ) -> Result<AppendOutcome, StoreError> {
        messages::announce(self, record, sender, text, game, at, key).await
    }

    async fn messages(
        &self,
        conversation_id: Uuid,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        messages::read(self, conversation_id, after, limit).await
    }

    async fn close_conversation(&self, id: Uuid) -> Result<Option<Conversation>, StoreError> {
        conversations::close(self, id).await
    }

    async fn partner_sources(
        &self,
        user: &UserId,
        since: DateTime<Utc>,
    ) -> Result<(PresenceStatus, Vec<ConversationRecord>), StoreError> {
        partners::sources(self, user, since).await
    }

    async fn candidate_facts(
        &self,
        user: &UserId,
        candidates: &[UserId],
    ) -> Result<Vec<CandidateFacts>, StoreError> {
        partners::candidate_facts(self, user, candidates).await
    }

    async fn block(
        &self,
        blocker: &UserId,
        blocked: &UserId,
        at: DateTime<Utc>,
    ) -> Result<BlockOutcome, StoreError> {
        blocks::block(self, blocker, blocked, at).await
    }

    async fn unblock(&self, blocker: &UserId, blocked: &UserId) -> Result<(), StoreError> {
        blocks::unblock(self, blocker, blocked).await
    }

    async fn blocks(&self, blocker: &UserId) -> Result<Vec<Block>, StoreError> {
        blocks::list(self, blocker).await
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
