//! The memory store's idempotency keys: what each key's first request asked (its fingerprint) and what it was answered, kept for the window as the Redis records are.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use shared_types::{UserId, im::Message};
use uuid::Uuid;

use crate::domain::{ConversationRecord, IdempotencyKey};

/// How often a keyed write also drops the records past the window.
const PURGE_EVERY: Duration = Duration::from_secs(60);

/// A key's first request: what it asked and what it was answered.
struct Recorded<T> {
    fingerprint: String,
    answer: T,
    at: Instant,
}

/// What a key says about a request.
pub(super) enum Replay<T> {
    /// Not used (or no longer remembered): the request does its work.
    New,
    /// Used for the same request: its first answer.
    Same(T),
    /// Used for another request.
    Reused,
}

/// Every key remembered, by scope: a creator's conversations, a sender's messages in one
/// conversation.
pub(super) struct KeyedRecords {
    /// How long a key is remembered after its first request.
    window: Duration,
    conversations: HashMap<(UserId, IdempotencyKey), Recorded<ConversationRecord>>,
    messages: HashMap<(Uuid, UserId, IdempotencyKey), Recorded<Message>>,
    purged: Option<Instant>,
}

fn replay<T: Clone>(
    recorded: Option<&Recorded<T>>,
    fingerprint: &str,
    window: Duration,
) -> Replay<T> {
    match recorded {
        Some(first) if first.at.elapsed() <= window => {
            if first.fingerprint == fingerprint {
                Replay::Same(first.answer.clone())
            } else {
                Replay::Reused
            }
        }
        _ => Replay::New,
    }
}

impl KeyedRecords {
    pub(super) fn new(window: Duration) -> Self {
        Self {
            window,
            conversations: HashMap::new(),
            messages: HashMap::new(),
            purged: None,
        }
    }

    /// What `creator`'s `key` says about a creation with this fingerprint.
    pub(super) fn conversation(
        &self,
        creator: &UserId,
        key: &IdempotencyKey,
        fingerprint: &str,
    ) -> Replay<ConversationRecord> {
        let scope = (creator.clone(), key.clone());
        replay(self.conversations.get(&scope), fingerprint, self.window)
    }

    pub(super) fn record_conversation(
        &mut self,
        creator: &UserId,
        key: &IdempotencyKey,
        fingerprint: String,
        answer: ConversationRecord,
    ) {
        self.purge();
        let scope = (creator.clone(), key.clone());
        let recorded = Recorded {
            fingerprint,
            answer,
            at: Instant::now(),
        };
        self.conversations.insert(scope, recorded);
    }

    /// What `sender`'s `key` in conversation `id` says about a message with this fingerprint.
    pub(super) fn message(
        &self,
        id: Uuid,
        sender: &UserId,
        key: &IdempotencyKey,
        fingerprint: &str,
    ) -> Replay<Message> {
        let scope = (id, sender.clone(), key.clone());
        replay(self.messages.get(&scope), fingerprint, self.window)
    }

    pub(super) fn record_message(
        &mut self,
        sender: &UserId,
        key: &IdempotencyKey,
        fingerprint: String,
        answer: Message,
    ) {
        self.purge();
        let scope = (answer.conversation_id, sender.clone(), key.clone());
        let recorded = Recorded {
            fingerprint,
            answer,
            at: Instant::now(),
        };
        self.messages.insert(scope, recorded);
    }

    /// Drops the records past the window, at most every [`PURGE_EVERY`]: every record goes
    /// once its window is over, as a Redis key with a TTL does.
    fn purge(&mut self) {
        let now = Instant::now();
        if self
            .purged
            .is_some_and(|purged| now.duration_since(purged) <= PURGE_EVERY)
        {
            return;
        }
        let window = self.window;
        self.conversations
            .retain(|_, first| now.duration_since(first.at) <= window);
        self.messages
            .retain(|_, first| now.duration_since(first.at) <= window);
        self.purged = Some(now);
    }
}
