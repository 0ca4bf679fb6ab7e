//! The embedded store: one process, nothing to install, nothing survives a restart.

use std::{
    collections::{HashMap, HashSet},
    sync::{Mutex, MutexGuard, PoisonError},
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use shared_types::{
    UserId,
    im::{Conversation, Message},
    presence::PresenceStatus,
};
use uuid::Uuid;

use super::{AppendOutcome, Store, StoreError};

#[derive(Default)]
struct State {
    presence: HashMap<UserId, PresenceStatus>,
    conversations: HashMap<Uuid, StoredConversation>,
    by_user: HashMap<UserId, HashSet<Uuid>>,
}

struct StoredConversation {
    meta: Conversation,
    messages: Vec<Message>,
}

impl State {
    fn conversations_of<'a>(&'a self, user: &UserId) -> impl Iterator<Item = &'a Conversation> {
        self.by_user
            .get(user)
            .into_iter()
            .flatten()
            .filter_map(|id| self.conversations.get(id))
            .map(|stored| &stored.meta)
    }
}

/// Everything in one mutex: operations are short and never await while holding it.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied change (each operation
        // mutates at the end), so the data is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn newest_first(conversations: &mut [Conversation]) {
    conversations.sort_by(|a, b| {
        b.last_activity_at
            .cmp(&a.last_activity_at)
            .then(a.id.cmp(&b.id))
    });
}

#[async_trait]
impl Store for MemoryStore {
    async fn set_presence(&self, user: &UserId, status: PresenceStatus) -> Result<(), StoreError> {
        self.state().presence.insert(user.clone(), status);
        Ok(())
    }

    async fn presence(&self, user: &UserId) -> Result<PresenceStatus, StoreError> {
        Ok(self.state().presence.get(user).copied().unwrap_or_default())
    }

    async fn presences(
        &self,
        users: &[UserId],
    ) -> Result<HashMap<UserId, PresenceStatus>, StoreError> {
        let state = self.state();
        Ok(users
            .iter()
            .map(|user| {
                let status = state.presence.get(user).copied().unwrap_or_default();
                (user.clone(), status)
            })
            .collect())
    }

    async fn create_conversation(&self, conversation: &Conversation) -> Result<(), StoreError> {
        let mut state = self.state();
        for participant in &conversation.participants {
            state
                .by_user
                .entry(participant.clone())
                .or_default()
                .insert(conversation.id);
        }
        state.conversations.insert(
            conversation.id,
            StoredConversation {
                meta: conversation.clone(),
                messages: Vec::new(),
            },
        );
        Ok(())
    }

    async fn conversation(&self, id: Uuid) -> Result<Option<Conversation>, StoreError> {
        Ok(self.state().conversations.get(&id).map(|c| c.meta.clone()))
    }

    async fn conversations_of(&self, user: &UserId) -> Result<Vec<Conversation>, StoreError> {
        let mut found: Vec<Conversation> = self.state().conversations_of(user).cloned().collect();
        newest_first(&mut found);
        Ok(found)
    }

    async fn open_conversations_since(
        &self,
        user: &UserId,
        since: DateTime<Utc>,
    ) -> Result<Vec<Conversation>, StoreError> {
        let mut found: Vec<Conversation> = self
            .state()
            .conversations_of(user)
            .filter(|c| !c.closed && c.last_activity_at >= since)
            .cloned()
            .collect();
        newest_first(&mut found);
        Ok(found)
    }

    async fn append_message(
        &self,
        conversation: &Conversation,
        sender: &UserId,
        text: &str,
        at: DateTime<Utc>,
    ) -> Result<AppendOutcome, StoreError> {
        let conversation_id = conversation.id;
        let mut state = self.state();
        let Some(stored) = state.conversations.get_mut(&conversation_id) else {
            return Ok(AppendOutcome::Missing);
        };
        if stored.meta.closed {
            return Ok(AppendOutcome::Closed);
        }
        let message = Message {
            seq: stored.messages.len() as u64 + 1,
            conversation_id,
            sender: sender.clone(),
            text: text.to_owned(),
            sent_at: at,
        };
        stored.messages.push(message.clone());
        stored.meta.last_activity_at = stored.meta.last_activity_at.max(at);
        Ok(AppendOutcome::Appended(message))
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
        let skip = usize::try_from(after).unwrap_or(usize::MAX);
        Ok(stored
            .messages
            .iter()
            .skip(skip)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn close_conversation(&self, id: Uuid) -> Result<Option<Conversation>, StoreError> {
        let mut state = self.state();
        Ok(state.conversations.get_mut(&id).map(|stored| {
            stored.meta.closed = true;
            stored.meta.clone()
        }))
    }

    async fn share_conversation(&self, a: &UserId, b: &UserId) -> Result<bool, StoreError> {
        Ok(self
            .state()
            .conversations_of(a)
            .any(|c| c.participants.contains(b)))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
