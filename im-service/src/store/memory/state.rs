//! What the memory store holds, behind its one mutex, and the steps several operations share.

use std::collections::{HashMap, HashSet, VecDeque};

use chrono::{DateTime, Utc};
use service_kit::events::{EventBuffer, Relayed, StoredEvent};
use shared_types::{
    UserId,
    im::{GameAnnouncement, ImEvent, Message, MessageKind},
    presence::PresenceStatus,
};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::domain::ConversationRecord;

#[derive(Default)]
pub(super) struct State {
    pub(super) presence: HashMap<UserId, PresenceStatus>,
    pub(super) conversations: HashMap<Uuid, StoredConversation>,
    /// The conversations each user sees (listing).
    pub(super) by_user: HashMap<UserId, HashSet<Uuid>>,
    /// The open conversations that count for each user (opened or answered by them).
    pub(super) open: HashMap<UserId, HashSet<Uuid>>,
    /// Who has talked with whom (both posted in a conversation, open or closed).
    pub(super) contacts: HashMap<UserId, HashSet<UserId>>,
    /// Who blocks whom, since when.
    pub(super) blocks: HashMap<UserId, HashMap<UserId, DateTime<Utc>>>,
    /// Each user's kept events.
    pub(super) events: HashMap<UserId, EventBuffer<ImEvent>>,
}

pub(super) struct StoredConversation {
    pub(super) record: ConversationRecord,
    /// The kept messages, oldest first.
    pub(super) messages: VecDeque<Message>,
    /// The `seq` of the newest message ever appended.
    pub(super) last_seq: u64,
}

impl StoredConversation {
    /// Appends the next message (a `game` one when `game` is given), keeping the newest `kept`.
    pub(super) fn push(
        &mut self,
        sender: &UserId,
        text: &str,
        game: Option<&GameAnnouncement>,
        at: DateTime<Utc>,
        kept: usize,
    ) -> Message {
        self.last_seq += 1;
        let message = Message {
            seq: self.last_seq,
            conversation_id: self.record.conversation.id,
            sender: sender.clone(),
            text: text.to_owned(),
            sent_at: at,
            kind: if game.is_some() {
                MessageKind::Game
            } else {
                MessageKind::Text
            },
            game: game.cloned(),
        };
        self.messages.push_back(message.clone());
        while self.messages.len() > kept {
            self.messages.pop_front();
        }
        message
    }
}

impl State {
    pub(super) fn blocks(&self, blocker: &UserId, blocked: &UserId) -> bool {
        self.blocks
            .get(blocker)
            .is_some_and(|blocked_ones| blocked_ones.contains_key(blocked))
    }

    pub(super) fn open_count(&self, user: &UserId) -> usize {
        self.open.get(user).map_or(0, HashSet::len)
    }

    /// Appends `event` to each of `users`' streams and relays it, in the
    /// same critical section as the change it tells of.
    pub(super) fn notify<'a>(
        &mut self,
        feed: &broadcast::Sender<Relayed<ImEvent>>,
        users: impl IntoIterator<Item = &'a UserId>,
        event: &ImEvent,
    ) {
        let now = u64::try_from(Utc::now().timestamp_millis()).unwrap_or_default();
        for user in users {
            let stored = self
                .events
                .entry(user.clone())
                .or_default()
                .append(StoredEvent::new(user, event.clone()), now);
            let _ = feed.send(Relayed::Event(stored));
        }
    }

    /// Those who see `user`'s presence change: whoever talked with them, no block either way.
    pub(super) fn presence_watchers(&self, user: &UserId) -> Vec<UserId> {
        self.contacts
            .get(user)
            .into_iter()
            .flatten()
            .filter(|contact| !self.blocks(user, contact) && !self.blocks(contact, user))
            .cloned()
            .collect()
    }
}
