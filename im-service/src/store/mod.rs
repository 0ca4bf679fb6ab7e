//! Storage behind one trait: an in-memory backend for one process, a Redis backend for replicas.

mod memory;
mod redis;

use std::{collections::HashMap, sync::Arc};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use service_kit::{ApiError, ops::ReadinessCheck};
use shared_types::{
    UserId,
    im::{Conversation, Message},
    presence::PresenceStatus,
};
use uuid::Uuid;

pub use self::{
    memory::MemoryStore,
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
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(source) => ApiError::store_unavailable(&source),
            StoreError::Unexpected(source) => ApiError::unexpected(&source),
        }
    }
}

/// What became of a message handed to [`Store::append_message`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendOutcome {
    Appended(Message),
    /// Closed conversations take no more messages.
    Closed,
    /// No such conversation (never created, or expired).
    Missing,
}

/// The operations the routes need. Access rules (who may read what) live in the routes;
/// the store keeps the data consistent: a conversation's state changes are atomic.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Records `user`'s presence.
    async fn set_presence(&self, user: &UserId, status: PresenceStatus) -> Result<(), StoreError>;

    /// `user`'s presence; `offline` when there is no record.
    async fn presence(&self, user: &UserId) -> Result<PresenceStatus, StoreError>;

    /// The presence of each of `users` (`offline` when there is no record).
    async fn presences(
        &self,
        users: &[UserId],
    ) -> Result<HashMap<UserId, PresenceStatus>, StoreError>;

    /// Stores a new conversation and indexes it for each participant.
    async fn create_conversation(&self, conversation: &Conversation) -> Result<(), StoreError>;

    async fn conversation(&self, id: Uuid) -> Result<Option<Conversation>, StoreError>;

    /// Every conversation `user` takes part in, open or closed, newest activity first.
    async fn conversations_of(&self, user: &UserId) -> Result<Vec<Conversation>, StoreError>;

    /// `user`'s open conversations whose last activity is at or after `since`, newest first.
    async fn open_conversations_since(
        &self,
        user: &UserId,
        since: DateTime<Utc>,
    ) -> Result<Vec<Conversation>, StoreError>;

    /// Appends a message to `conversation` (as read by the caller, who checked that `sender`
    /// takes part) and moves its last activity to `at`, in one atomic step that re-checks the
    /// conversation still exists and is open.
    async fn append_message(
        &self,
        conversation: &Conversation,
        sender: &UserId,
        text: &str,
        at: DateTime<Utc>,
    ) -> Result<AppendOutcome, StoreError>;

    /// Up to `limit` messages with `seq > after`, oldest first.
    async fn messages(
        &self,
        conversation_id: Uuid,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError>;

    /// Closes the conversation (idempotent); `None` when there is no such conversation.
    async fn close_conversation(&self, id: Uuid) -> Result<Option<Conversation>, StoreError>;

    /// Whether `a` and `b` take part in a conversation together (open or closed).
    async fn share_conversation(&self, a: &UserId, b: &UserId) -> Result<bool, StoreError>;

    /// Cheap round trip for `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Gives the calling (worker) thread its own connection where the backend
    /// has one (see `RedisConn::attach_to_this_thread`).
    fn attach_to_this_thread(&self) {}
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
