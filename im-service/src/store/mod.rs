//! Storage behind one trait: an in-memory backend for one process, a Redis backend for replicas.

mod memory;
mod outcomes;
mod partners_query;
mod redis;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use service_kit::{ApiError, ops::ReadinessCheck};
use shared_types::{
    UserId,
    activity::{ActivityReport, PresenceChange},
    im::{Block, Conversation, GameAnnouncement, Message, PartnersResponse},
    presence::{Presence, PresenceStatus},
};
use uuid::Uuid;

use crate::domain::{
    CandidateFacts, ConversationRecord, IdempotencyKey, PartnersRequest, Relationship, feed::Cursor,
};

pub use self::{
    memory::MemoryStore,
    outcomes::{AppendOutcome, BlockOutcome, CreateOutcome, PresenceRecorded},
    redis::{RedisStore, RedisStoreConfig},
};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached (down, restarting, timing out): worth retrying later.
    #[error("the store is unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Anything else: a bug or corrupt data.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<StoreError> for ApiError {
    /// Also counts the failure: every request that fails on the store passes
    /// here exactly once, on its way to its problem.
    fn from(err: StoreError) -> Self {
        crate::metrics::STORE_ERRORS.inc();
        match err {
            StoreError::Unavailable(source) => ApiError::store_unavailable(&source),
            StoreError::Unexpected(source) => ApiError::unexpected(&source),
        }
    }
}

/// The limits a store enforces in the same atomic step as the change they bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// Open conversations a user opened or answered (posted in).
    pub max_open_conversations: usize,
    /// Messages kept per conversation: an append drops the oldest beyond it.
    pub messages_kept: usize,
    /// Users one user may block.
    pub max_blocks: usize,
    /// Shards of the presence feed (`IM_FEED_SHARDS`, 1-64): a user's changes all go to one.
    pub feed_shards: usize,
    /// Changes kept per feed shard (`IM_FEED_KEPT`; Redis trims approximately, keeping at
    /// least this many).
    pub feed_kept: usize,
}

impl Default for StoreLimits {
    fn default() -> Self {
        crate::configuration::Limits::default().store()
    }
}

/// The operations the routes need. Access rules (who may read what) live in the routes and in
/// [`crate::domain`]; the store keeps the data consistent and enforces the limits in the same
/// atomic step as each change (see each backend for what "atomic" means there).
/// A store is also where the users' IM event streams are read back (replay
/// and the live feed), through the machinery both services share.
#[async_trait]
pub trait Store:
    service_kit::events::EventLog<shared_types::im::ImEvent, Error = StoreError>
{
    /// Step one of [`Store::set_presence`], in `user`'s slot, atomically: records the status
    /// and, when it changed (no record counts as `offline`), numbers the change (`seq` =
    /// max(the previous change's + 1, now in ms), the previous kept with the record) and marks
    /// it unfed; then tells the user's contacts (a `presence` event, their activity included).
    /// Returns every change still marked unfed, this one included.
    async fn record_presence(
        &self,
        user: &UserId,
        status: PresenceStatus,
    ) -> Result<PresenceRecorded, StoreError>;

    /// Step two of [`Store::set_presence`]: appends `changes` (`user`'s, oldest first) to their
    /// feed shard, each once (a change no newer than the newest of the user's already there is
    /// not appended again), then clears their unfed marks.
    async fn feed_presence(
        &self,
        user: &UserId,
        changes: &[PresenceChange],
    ) -> Result<(), StoreError>;

    /// Records `user`'s presence, tells their contacts when it changed, and appends the change
    /// to the presence feed; returns the presence as recorded (their activity included).
    ///
    /// The change lives in the user's slot and the feed in its shard's, so on a cluster these
    /// are two steps ([`Store::record_presence`], then [`Store::feed_presence`]), and a
    /// replica that dies between them (or a feed shard that cannot be reached) would lose the
    /// change from the feed. The first step therefore marks the change unfed in the same
    /// atomic step as the change, and the mark is cleared only once the change is in the
    /// feed; any later `PUT /v1/presence` of the user finds the marked changes and appends
    /// them (same `seq`) before anything else, even if the status did not change. A client
    /// that retries after a failed or unanswered request thus completes the append, and the
    /// feed's per-user check keeps a repeated append from showing twice. What remains open: a
    /// marked change waits for that user's next `PUT /v1/presence` (at most
    /// [`crate::domain::feed::MAX_UNFED`] of them are kept, and they expire with the presence
    /// record).
    async fn set_presence(
        &self,
        user: &UserId,
        status: PresenceStatus,
    ) -> Result<Presence, StoreError> {
        let recorded = self.record_presence(user, status).await?;
        if !recorded.unfed.is_empty() {
            self.feed_presence(user, &recorded.unfed).await?;
        }
        Ok(recorded.presence)
    }

    /// `user`'s presence and activity; `offline` when there is no record.
    async fn presence(&self, user: &UserId) -> Result<Presence, StoreError>;

    /// What decides whether `viewer` may see `subject`'s presence, and that presence.
    async fn relationship(
        &self,
        viewer: &UserId,
        subject: &UserId,
    ) -> Result<(Relationship, Presence), StoreError>;

    /// Applies game activity reports (any users, any order; see
    /// [`crate::domain::ActivityState::apply`]), each user's atomically in their slot, in
    /// `seq` order. Every actual change of a user's activity tells their contacts, exactly as
    /// a status change does (a `presence` event with the new activity); an ignored report
    /// tells nobody. Activity lives as long as presence (retention), refreshed by each report
    /// applied.
    async fn apply_activity(&self, reports: &[ActivityReport]) -> Result<(), StoreError>;

    /// How many shards the presence feed has: what a cursor must have.
    fn feed_shards(&self) -> usize;

    /// Up to `limit` presence changes after `after` (see [`crate::domain::feed::merge`]), and
    /// the cursor after them (`after` itself when nothing is new).
    async fn presence_changes(
        &self,
        after: &Cursor,
        limit: usize,
    ) -> Result<(Vec<PresenceChange>, Cursor), StoreError>;

    /// Stores a new conversation (nobody has posted yet) and indexes it for each participant
    /// who sees it, unless its creator (the first participant) is at the open-conversation
    /// limit. A participant who blocks the creator never sees it.
    async fn create_conversation(
        &self,
        conversation: &Conversation,
    ) -> Result<CreateOutcome, StoreError> {
        self.create_conversation_keyed(conversation, None).await
    }

    /// As [`Store::create_conversation`]; with `key`, once per (creator, key) for the window
    /// of [`crate::domain::idempotency::window_within`]. The first creation records the key
    /// in the same atomic step as it takes the creator's open-conversation slot. A repeat with
    /// the same participants ([`crate::domain::idempotency::conversation_fingerprint`])
    /// creates nothing and answers the conversation the first one opened, as it was opened
    /// (id, creation time, participants), after finishing that creation if an interruption
    /// left it half done; with other participants it is [`CreateOutcome::KeyReused`].
    /// Concurrent requests with one key make one conversation.
    async fn create_conversation_keyed(
        &self,
        conversation: &Conversation,
        key: Option<&IdempotencyKey>,
    ) -> Result<CreateOutcome, StoreError>;

    async fn conversation(&self, id: Uuid) -> Result<Option<ConversationRecord>, StoreError>;

    /// Every conversation `user` sees, open or closed, newest activity first.
    async fn conversations_of(&self, user: &UserId) -> Result<Vec<Conversation>, StoreError>;

    /// Appends a message to `conversation` (as read by the caller, who checked that `sender`
    /// sees it), records that `sender` posted, moves its last activity to `at` and drops the
    /// messages beyond [`StoreLimits::messages_kept`], in one atomic step that re-checks the
    /// conversation still exists and is open. A sender's first message in a conversation they
    /// did not open counts it against their open conversations, and is refused at the limit.
    async fn append_message(
        &self,
        conversation: &ConversationRecord,
        sender: &UserId,
        text: &str,
        at: DateTime<Utc>,
    ) -> Result<AppendOutcome, StoreError> {
        self.append_message_keyed(conversation, sender, text, at, None)
            .await
    }

    /// As [`Store::append_message`]; with `key`, once per (conversation, sender, key) for the
    /// window of [`crate::domain::idempotency::window_within`]. The first append records the
    /// key in the same atomic step as the message, in the conversation's slot. A repeat with
    /// the same text appends nothing, tells nobody again and answers that first message (same
    /// `seq`, even once the conversation is closed or the message no longer kept); with
    /// another text it is [`AppendOutcome::KeyReused`]. Concurrent requests with one key
    /// append one message.
    async fn append_message_keyed(
        &self,
        conversation: &ConversationRecord,
        sender: &UserId,
        text: &str,
        at: DateTime<Utc>,
        key: Option<&IdempotencyKey>,
    ) -> Result<AppendOutcome, StoreError>;

    /// Appends a `game` message from a service (`sender`) to `conversation`, in the same
    /// atomic step and under the same checks as [`Store::append_message`], but it is nobody's
    /// talk: it records no poster, moves no activity and counts against no limit.
    ///
    /// Idempotent per (conversation, `game.session_id`): when that session was already
    /// announced here (the game service retrying after a lost answer), nothing is appended and
    /// nobody hears of it again; the answer is the first message, closed conversation or not.
    /// Should [`StoreLimits::messages_kept`] newer messages have pushed that message out, the
    /// answer is its `seq` with this delivery's text and time (the first is no longer kept).
    /// The sessions announced are remembered for as many announcements as messages are kept.
    async fn announce(
        &self,
        conversation: &ConversationRecord,
        sender: &UserId,
        text: &str,
        game: &GameAnnouncement,
        at: DateTime<Utc>,
    ) -> Result<AppendOutcome, StoreError> {
        self.announce_keyed(conversation, sender, text, game, at, None)
            .await
    }

    /// As [`Store::announce`], with an idempotency key as [`Store::append_message_keyed`]
    /// takes one: a key already used here by `sender` answers its first message (same text
    /// and announcement) or [`AppendOutcome::KeyReused`], before the session is looked up.
    async fn announce_keyed(
        &self,
        conversation: &ConversationRecord,
        sender: &UserId,
        text: &str,
        game: &GameAnnouncement,
        at: DateTime<Utc>,
        key: Option<&IdempotencyKey>,
    ) -> Result<AppendOutcome, StoreError>;

    /// Up to `limit` of the kept messages with `seq > after`, oldest first.
    async fn messages(
        &self,
        conversation_id: Uuid,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError>;

    /// Closes the conversation (idempotent) and frees its slot for every participant; `None`
    /// when there is no such conversation.
    async fn close_conversation(&self, id: Uuid) -> Result<Option<Conversation>, StoreError>;

    /// `user`'s presence, and their open conversations that counted for them (opened or
    /// answered) with a newest message at or after `since`, at most
    /// [`StoreLimits::max_open_conversations`] of them: what a partners query starts from.
    /// The list may hold a few more (closed or older) that the rule then leaves out.
    async fn partner_sources(
        &self,
        user: &UserId,
        since: DateTime<Utc>,
    ) -> Result<(PresenceStatus, Vec<ConversationRecord>), StoreError>;

    /// For each of `candidates` (in order): their presence and activity, and whether a block
    /// stands between them and `user`, either way.
    async fn candidate_facts(
        &self,
        user: &UserId,
        candidates: &[UserId],
    ) -> Result<Vec<CandidateFacts>, StoreError>;

    /// `blocker` blocks `blocked` (never themselves: the route refuses that), at `at`.
    async fn block(
        &self,
        blocker: &UserId,
        blocked: &UserId,
        at: DateTime<Utc>,
    ) -> Result<BlockOutcome, StoreError>;

    /// Lifts the block, if any (idempotent).
    async fn unblock(&self, blocker: &UserId, blocked: &UserId) -> Result<(), StoreError>;

    /// The users `blocker` blocks, newest block first (ties by user id).
    async fn blocks(&self, blocker: &UserId) -> Result<Vec<Block>, StoreError>;

    /// Cheap round trip for `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Gives the calling (worker) thread its own connection where the backend
    /// has one (see `RedisConn::attach_to_this_thread`).
    fn attach_to_this_thread(&self) {}

    /// Who `request.user` is talking to right now (docs/CONTRACT.md, "Partners"): the rule of
    /// [`crate::domain::latest_per_partner`] over [`Store::partner_sources`], then blocks and presence from
    /// [`Store::candidate_facts`], read in batches, the newest candidates first, until
    /// `request.limit` partners are found. The work is bounded by the open-conversation limit
    /// whatever the user's history.
    async fn partners(&self, request: &PartnersRequest) -> Result<PartnersResponse, StoreError> {
        self.partners_among(request, None).await
    }

    /// As [`Store::partners`], but only `among` these users when given (the others are not
    /// even looked up): which of a conversation's participants a game may invite.
    async fn partners_among(
        &self,
        request: &PartnersRequest,
        among: Option<&[UserId]>,
    ) -> Result<PartnersResponse, StoreError> {
        partners_query::among(self, request, among).await
    }

    /// What `viewer` (a player, not `subject`) sees of `subject`'s presence: `None` unless they
    /// have talked (both posted in a conversation) and no block stands between them.
    async fn presence_seen_by(
        &self,
        viewer: &UserId,
        subject: &UserId,
    ) -> Result<Option<Presence>, StoreError> {
        let (relationship, presence) = self.relationship(viewer, subject).await?;
        Ok(relationship.reveals_presence().then_some(presence))
    }
}

/// The order of [`Store::conversations_of`]: newest activity first, ties by id.
fn newest_conversation_first(conversations: &mut [Conversation]) {
    conversations.sort_by(|a, b| {
        b.activity_key()
            .cmp(&a.activity_key())
            .then(a.id.cmp(&b.id))
    });
}

/// The order of `GET /v1/blocks`: newest block first, ties by user id.
pub(crate) fn newest_block_first(blocks: &mut [Block]) {
    blocks.sort_by(|a, b| {
        b.blocked_at
            .cmp(&a.blocked_at)
            .then(a.user_id.cmp(&b.user_id))
    });
}

/// `/readyz` asks the store.
pub struct StoreReadiness(pub Arc<dyn Store>);

impl ReadinessCheck for StoreReadiness {
    fn name(&self) -> &'static str {
        "store"
    }

    fn check(&self) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move { self.0.ping().await.map_err(anyhow::Error::from) })
    }
}
