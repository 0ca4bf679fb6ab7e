//! What the memory store holds, behind its one mutex, and the steps several operations share.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use service_kit::events::{EventBuffer, Relayed, StoredEvent};
use shared_types::{
    UserId,
    im::{GameAnnouncement, ImEvent, Message, MessageKind},
};
use tokio::sync::broadcast;
use uuid::Uuid;

use super::{
    feed::Feed,
    keyed::KeyedRecords,
    presence::{ActivityRecord, PresenceRecord},
};
use crate::domain::{ConversationRecord, idempotency};

/// A user's events stay replayable this long after their newest, as in Redis.
const EVENTS_TTL: Duration = Duration::from_secs(3600);
/// How often a write also drops the streams that expired.
const PURGE_EVERY: Duration = Duration::from_secs(60);

pub(super) struct State {
    /// Presence records, each until `retention` after its last update (as a Redis key).
    pub(super) presence: HashMap<UserId, PresenceRecord>,
    /// Game activity, each until `retention` after the last report applied.
    pub(super) activity: HashMap<UserId, ActivityRecord>,
    /// `IM_RETENTION_SECS`, for presence and activity.
    pub(super) retention: Duration,
    /// When `presence` and `activity` were last rid of the expired records.
    pub(super) records_purged: Option<Instant>,
    /// The presence feed.
    pub(super) changes: Feed,
    pub(super) conversations: HashMap<Uuid, StoredConversation>,
    /// The conversations each user sees (listing).
    pub(super) by_user: HashMap<UserId, HashSet<Uuid>>,
    /// The open conversations that count for each user (opened or answered by them).
    pub(super) open: HashMap<UserId, HashSet<Uuid>>,
    /// Who has talked with whom (both posted in a conversation, open or closed).
    pub(super) contacts: HashMap<UserId, HashSet<UserId>>,
    /// Who blocks whom, since when.
    pub(super) blocks: HashMap<UserId, HashMap<UserId, DateTime<Utc>>>,
    /// Each user's kept events, and when the newest was appended.
    pub(super) events: HashMap<UserId, (EventBuffer<ImEvent>, Instant)>,
    /// When `events` was last rid of the streams nobody wrote to for [`EVENTS_TTL`].
    pub(super) events_purged: Option<Instant>,
    /// The idempotency keys used, each for the window after its first request.
    pub(super) keyed: KeyedRecords,
}

pub(super) struct StoredConversation {
    pub(super) record: ConversationRecord,
    /// The kept messages, oldest first.
    pub(super) messages: VecDeque<Message>,
    /// The `seq` of the newest message ever appended.
    pub(super) last_seq: u64,
    /// The game sessions announced here and the `seq` of each announcement, oldest first: at
    /// most as many as messages are kept (as the Redis store's `games` set).
    pub(super) games: VecDeque<(Uuid, u64)>,
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
        if let Some(game) = game {
            self.games.push_back((game.session_id, message.seq));
            while self.games.len() > kept {
                self.games.pop_front();
            }
        }
        message
    }

    /// The announcement of `game`'s session, when it was already announced here: the message
    /// kept, or (pushed out by newer ones) its `seq` with what this delivery says.
    pub(super) fn announced(
        &self,
        sender: &UserId,
        text: &str,
        game: &GameAnnouncement,
        at: DateTime<Utc>,
    ) -> Option<Message> {
        let seq = self
            .games
            .iter()
            .find(|(session, _)| *session == game.session_id)
            .map(|(_, seq)| *seq)?;
        let kept = self.messages.iter().find(|m| m.seq == seq).cloned();
        Some(kept.unwrap_or_else(|| Message {
            seq,
            conversation_id: self.record.conversation.id,
            sender: sender.clone(),
            text: text.to_owned(),
            sent_at: at,
            kind: MessageKind::Game,
            game: Some(game.clone()),
        }))
    }
}

impl State {
    pub(super) fn new(retention: Duration, feed: Feed) -> Self {
        Self {
            presence: HashMap::new(),
            activity: HashMap::new(),
            retention,
            records_purged: None,
            changes: feed,
            conversations: HashMap::new(),
            by_user: HashMap::new(),
            open: HashMap::new(),
            contacts: HashMap::new(),
            blocks: HashMap::new(),
            events: HashMap::new(),
            events_purged: None,
            keyed: KeyedRecords::new(idempotency::window_within(retention)),
        }
    }

    pub(super) fn blocks(&self, blocker: &UserId, blocked: &UserId) -> bool {
        self.blocks
            .get(blocker)
            .is_some_and(|blocked_ones| blocked_ones.contains_key(blocked))
    }

    pub(super) fn open_count(&self, user: &UserId) -> usize {
        self.open.get(user).map_or(0, HashSet::len)
    }

    /// How often a write also drops expired records and streams.
    pub(super) fn purge_due(last: Option<Instant>, at: Instant) -> bool {
        last.is_none_or(|purged| at.duration_since(purged) > PURGE_EVERY)
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
        let at = Instant::now();
        for user in users {
            let (buffer, last) = self
                .events
                .entry(user.clone())
                .or_insert_with(|| (EventBuffer::default(), at));
            if at.duration_since(*last) > EVENTS_TTL {
                *buffer = EventBuffer::default(); // expired, as a Redis stream would
            }
            *last = at;
            let stored = buffer.append(StoredEvent::new(user, event.clone()), now);
            let _ = feed.send(Relayed::Event(stored));
        }
        if Self::purge_due(self.events_purged, at) {
            self.events
                .retain(|_, (_, last)| at.duration_since(*last) <= EVENTS_TTL);
            self.events_purged = Some(at);
        }
    }

    /// `user`'s kept events, unless nobody wrote to them for [`EVENTS_TTL`].
    pub(super) fn events_of(&self, user: &UserId) -> Option<&EventBuffer<ImEvent>> {
        self.events
            .get(user)
            .filter(|(_, last)| last.elapsed() <= EVENTS_TTL)
            .map(|(buffer, _)| buffer)
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
