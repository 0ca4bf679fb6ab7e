//! The memory store's writes to conversations: creating one and appending messages (people's and a service's), each with its idempotency key checked and recorded in the same critical section.

use std::collections::{HashSet, VecDeque};

use chrono::{DateTime, Utc};
use service_kit::events::Relayed;
use shared_types::{
    UserId,
    im::{Conversation, GameAnnouncement, ImEvent, Message},
};
use tokio::sync::broadcast;
use uuid::Uuid;

use super::{
    MemoryStore,
    keyed::Replay,
    state::{State, StoredConversation},
};
use crate::{
    domain::{ConversationRecord, IdempotencyKey, idempotency},
    store::{AppendOutcome, CreateOutcome, StoreError},
};

impl MemoryStore {
    /// [`crate::store::Store::create_conversation_keyed`].
    pub(super) fn create(
        &self,
        conversation: &Conversation,
        key: Option<&IdempotencyKey>,
    ) -> Result<CreateOutcome, StoreError> {
        let mut state = self.state();
        let Some(creator) = conversation.participants.first() else {
            return Err(StoreError::Unexpected(anyhow::anyhow!(
                "a conversation without participants"
            )));
        };
        let fingerprint = idempotency::conversation_fingerprint(&conversation.participants);
        if let Some(key) = key {
            match state.keyed.conversation(creator, key, &fingerprint) {
                Replay::New => {}
                Replay::Same(first) => return Ok(CreateOutcome::Created(first)),
                Replay::Reused => return Ok(CreateOutcome::KeyReused),
            }
        }
        if state.open_count(creator) >= self.limits.max_open_conversations {
            return Ok(CreateOutcome::Limit);
        }
        let mut record = ConversationRecord::new(conversation.clone());
        record.hidden_from = conversation
            .participants
            .iter()
            .filter(|p| *p != creator && state.blocks(p, creator))
            .cloned()
            .collect();
        for participant in &conversation.participants {
            if record.visible_to(participant) {
                state
                    .by_user
                    .entry(participant.clone())
                    .or_default()
                    .insert(conversation.id);
            }
        }
        state
            .open
            .entry(creator.clone())
            .or_default()
            .insert(conversation.id);
        state.conversations.insert(
            conversation.id,
            StoredConversation {
                record: record.clone(),
                messages: VecDeque::new(),
                last_seq: 0,
                games: VecDeque::new(),
            },
        );
        if let Some(key) = key {
            state
                .keyed
                .record_conversation(creator, key, fingerprint, record.clone());
        }
        let event = ImEvent::Conversation(conversation.clone());
        state.notify(&self.feed, record.visible_participants(), &event);
        Ok(CreateOutcome::Created(record))
    }

    /// [`crate::store::Store::append_message_keyed`].
    pub(super) fn append(
        &self,
        conversation: &ConversationRecord,
        sender: &UserId,
        text: &str,
        at: DateTime<Utc>,
        key: Option<&IdempotencyKey>,
    ) -> Result<AppendOutcome, StoreError> {
        let conversation_id = conversation.conversation.id;
        let fingerprint = idempotency::message_fingerprint(text, None)?;
        let mut guard = self.state();
        let state = &mut *guard;
        if let Some(answer) = state.before_append(conversation_id, sender, key, &fingerprint) {
            return Ok(answer);
        }
        let Some(stored) = state.conversations.get_mut(&conversation_id) else {
            return Ok(AppendOutcome::Missing);
        };
        if stored.record.conversation.closed {
            return Ok(AppendOutcome::Closed);
        }
        let counted = state
            .open
            .get(sender)
            .is_some_and(|open| open.contains(&conversation_id));
        if !counted
            && state.open.get(sender).map_or(0, HashSet::len) >= self.limits.max_open_conversations
        {
            return Ok(AppendOutcome::Limit);
        }
        let message = stored.push(sender, text, None, at, self.limits.messages_kept);
        let meta = &mut stored.record.conversation;
        meta.last_activity_at = Some(meta.last_activity_at.map_or(at, |last| last.max(at)));
        let newly_posting = !stored.record.posters.contains(sender);
        if newly_posting {
            stored.record.posters.push(sender.clone());
        }
        let others: Vec<UserId> = stored
            .record
            .posters
            .iter()
            .filter(|p| *p != sender)
            .cloned()
            .collect();
        state
            .open
            .entry(sender.clone())
            .or_default()
            .insert(conversation_id);
        let record = stored.record.clone();
        if newly_posting {
            for other in others {
                state
                    .contacts
                    .entry(sender.clone())
                    .or_default()
                    .insert(other.clone());
                state
                    .contacts
                    .entry(other)
                    .or_default()
                    .insert(sender.clone());
            }
        }
        Ok(state.appended(&self.feed, &record, sender, key, fingerprint, message))
    }

    /// [`crate::store::Store::announce_keyed`].
    pub(super) fn announce_game(
        &self,
        conversation: &ConversationRecord,
        sender: &UserId,
        text: &str,
        game: &GameAnnouncement,
        at: DateTime<Utc>,
        key: Option<&IdempotencyKey>,
    ) -> Result<AppendOutcome, StoreError> {
        let conversation_id = conversation.conversation.id;
        let fingerprint = idempotency::message_fingerprint(text, Some(game))?;
        let mut guard = self.state();
        let state = &mut *guard;
        if let Some(answer) = state.before_append(conversation_id, sender, key, &fingerprint) {
            return Ok(answer);
        }
        let Some(stored) = state.conversations.get_mut(&conversation_id) else {
            return Ok(AppendOutcome::Missing);
        };
        // Announced before (a retry): the first answer again, and nobody hears of it twice.
        if let Some(first) = stored.announced(sender, text, game, at) {
            return Ok(AppendOutcome::Appended(first));
        }
        if stored.record.conversation.closed {
            return Ok(AppendOutcome::Closed);
        }
        let message = stored.push(sender, text, Some(game), at, self.limits.messages_kept);
        let record = stored.record.clone();
        Ok(state.appended(&self.feed, &record, sender, key, fingerprint, message))
    }
}

impl State {
    /// What an append answers before anything else: `Missing` for a conversation that is not
    /// there, a keyed retry's first answer (or `KeyReused`); `None`: go on.
    fn before_append(
        &self,
        conversation_id: Uuid,
        sender: &UserId,
        key: Option<&IdempotencyKey>,
        fingerprint: &str,
    ) -> Option<AppendOutcome> {
        if !self.conversations.contains_key(&conversation_id) {
            return Some(AppendOutcome::Missing);
        }
        match self
            .keyed
            .message(conversation_id, sender, key?, fingerprint)
        {
            Replay::New => None,
            Replay::Same(first) => Some(AppendOutcome::Appended(first)),
            Replay::Reused => Some(AppendOutcome::KeyReused),
        }
    }

    /// An appended `message`: its key's answer recorded, its readers told.
    fn appended(
        &mut self,
        feed: &broadcast::Sender<Relayed<ImEvent>>,
        record: &ConversationRecord,
        sender: &UserId,
        key: Option<&IdempotencyKey>,
        fingerprint: String,
        message: Message,
    ) -> AppendOutcome {
        if let Some(key) = key {
            self.keyed
                .record_message(sender, key, fingerprint, message.clone());
        }
        let event = ImEvent::Message(message.clone());
        self.notify(feed, record.visible_participants(), &event);
        AppendOutcome::Appended(message)
    }
}
