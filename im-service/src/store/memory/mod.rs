//! The embedded store: one process, nothing to install, nothing survives a restart.
//!
//! Every operation takes the one mutex, checks, then mutates: each change (limits included) is
//! atomic, and the same rules as the Redis store hold. Presence and activity records expire
//! after the retention, as the Redis keys do; the presence feed is one bounded list per shard.
//! Idempotency keys are checked and recorded in the critical section of the change they guard.

use std::{
    sync::{Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use service_kit::events::{BROADCAST_CAPACITY, Relayed};
use shared_types::{
    UserId,
    activity::{ActivityReport, PresenceChange},
    im::{Block, Conversation, GameAnnouncement, ImEvent, Message},
    presence::{Presence, PresenceStatus},
};
use tokio::sync::broadcast;
use uuid::Uuid;

use super::{
    AppendOutcome, BlockOutcome, CreateOutcome, PresenceRecorded, Store, StoreError, StoreLimits,
};
use crate::domain::{
    CandidateFacts, ConversationRecord, IdempotencyKey, Relationship, feed::Cursor,
};

mod blocks;
mod conversations;
mod events;
mod feed;
mod keyed;
mod presence;
mod state;

use self::state::State;

/// Everything in one mutex: operations are short and never await while holding it.
pub struct MemoryStore {
    state: Mutex<State>,
    limits: StoreLimits,
    feed: broadcast::Sender<Relayed<ImEvent>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_limits(StoreLimits::default())
    }
}

impl MemoryStore {
    /// A store with the default limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store with these limits, presence kept as long as `IM_RETENTION_SECS` says by default.
    pub fn with_limits(limits: StoreLimits) -> Self {
        let retention = Duration::from_secs(crate::configuration::DEFAULT_RETENTION_SECS);
        Self::with_retention(limits, retention)
    }

    /// A store with these limits whose presence and activity records expire `retention`
    /// after their last update.
    pub fn with_retention(limits: StoreLimits, retention: Duration) -> Self {
        let changes = feed::Feed::new(limits.feed_shards, limits.feed_kept);
        Self {
            state: Mutex::new(State::new(retention, changes)),
            limits,
            feed: broadcast::channel(BROADCAST_CAPACITY).0,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied change (each operation
        // checks first and mutates at the end), so the data is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn record_presence(
        &self,
        user: &UserId,
        status: PresenceStatus,
    ) -> Result<PresenceRecorded, StoreError> {
        Ok(self.record(user, status))
    }

    async fn feed_presence(
        &self,
        user: &UserId,
        changes: &[PresenceChange],
    ) -> Result<(), StoreError> {
        self.feed_changes(user, changes);
        Ok(())
    }

    async fn presence(&self, user: &UserId) -> Result<Presence, StoreError> {
        Ok(self.state().presence_of(user))
    }

    async fn relationship(
        &self,
        viewer: &UserId,
        subject: &UserId,
    ) -> Result<(Relationship, Presence), StoreError> {
        Ok(self.state().relationship(viewer, subject))
    }

    async fn apply_activity(&self, reports: &[ActivityReport]) -> Result<(), StoreError> {
        self.apply(reports);
        Ok(())
    }

    fn feed_shards(&self) -> usize {
        self.state().changes.shards()
    }

    async fn presence_changes(
        &self,
        after: &Cursor,
        limit: usize,
    ) -> Result<(Vec<PresenceChange>, Cursor), StoreError> {
        Ok(self.state().changes.read(after, limit))
    }

    async fn create_conversation_keyed(
        &self,
        conversation: &Conversation,
        key: Option<&IdempotencyKey>,
    ) -> Result<CreateOutcome, StoreError> {
        self.create(conversation, key)
    }

    async fn conversation(&self, id: Uuid) -> Result<Option<ConversationRecord>, StoreError> {
        Ok(self
            .state()
            .conversations
            .get(&id)
            .map(|c| c.record.clone()))
    }

    async fn conversations_of(&self, user: &UserId) -> Result<Vec<Conversation>, StoreError> {
        let state = self.state();
        let mut found: Vec<Conversation> = state
            .by_user
            .get(user)
            .into_iter()
            .flatten()
            .filter_map(|id| state.conversations.get(id))
            .filter(|stored| stored.record.visible_to(user))
            .map(|stored| stored.record.conversation.clone())
            .collect();
        super::newest_conversation_first(&mut found);
        Ok(found)
    }

    async fn append_message_keyed(
        &self,
        conversation: &ConversationRecord,
        sender: &UserId,
        text: &str,
        at: DateTime<Utc>,
        key: Option<&IdempotencyKey>,
    ) -> Result<AppendOutcome, StoreError> {
        self.append(conversation, sender, text, at, key)
    }

    async fn announce_keyed(
        &self,
        conversation: &ConversationRecord,
        sender: &UserId,
        text: &str,
        game: &GameAnnouncement,
        at: DateTime<Utc>,
        key: Option<&IdempotencyKey>,
    ) -> Result<AppendOutcome, StoreError> {
        self.announce_game(conversation, sender, text, game, at, key)
    }

    async fn messages(
        &self,
        conversation_id: Uuid,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        let state = self.state();
        let Some(stored) = state.conversations.get(&conversation_id) else {
            return Ok(Vec::new());
        };
        Ok(stored
            .messages
            .iter()
            .filter(|m| m.seq > after)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn close_conversation(&self, id: Uuid) -> Result<Option<Conversation>, StoreError> {
        let mut guard = self.state();
        let state = &mut *guard;
        let Some(stored) = state.conversations.get_mut(&id) else {
            return Ok(None);
        };
        let newly_closed = !stored.record.conversation.closed;
        stored.record.conversation.closed = true;
        let record = stored.record.clone();
        for participant in &record.conversation.participants {
            if let Some(open) = state.open.get_mut(participant) {
                open.remove(&id);
            }
        }
        if newly_closed {
            let event = ImEvent::Conversation(record.conversation.clone());
            state.notify(&self.feed, record.visible_participants(), &event);
        }
        Ok(Some(record.conversation))
    }

    async fn partner_sources(
        &self,
        user: &UserId,
        since: DateTime<Utc>,
    ) -> Result<(PresenceStatus, Vec<ConversationRecord>), StoreError> {
        let state = self.state();
        let status = state.status_of(user);
        let records = state
            .open
            .get(user)
            .into_iter()
            .flatten()
            .filter_map(|id| state.conversations.get(id))
            .filter(|stored| {
                stored
                    .record
                    .conversation
                    .last_activity_at
                    .is_some_and(|at| at >= since)
            })
            .map(|stored| stored.record.clone())
            .collect();
        Ok((status, records))
    }

    async fn candidate_facts(
        &self,
        user: &UserId,
        candidates: &[UserId],
    ) -> Result<Vec<CandidateFacts>, StoreError> {
        let state = self.state();
        Ok(candidates
            .iter()
            .map(|candidate| CandidateFacts {
                status: state.status_of(candidate),
                activity: state.activity_of(candidate),
                blocks_user: state.blocks(candidate, user),
                blocked_by_user: state.blocks(user, candidate),
            })
            .collect())
    }

    async fn block(
        &self,
        blocker: &UserId,
        blocked: &UserId,
        at: DateTime<Utc>,
    ) -> Result<BlockOutcome, StoreError> {
        Ok(self.put_block(blocker, blocked, at))
    }

    async fn unblock(&self, blocker: &UserId, blocked: &UserId) -> Result<(), StoreError> {
        if let Some(blocks) = self.state().blocks.get_mut(blocker) {
            blocks.remove(blocked);
        }
        Ok(())
    }

    async fn blocks(&self, blocker: &UserId) -> Result<Vec<Block>, StoreError> {
        Ok(self.list_blocks(blocker))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
