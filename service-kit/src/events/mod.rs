//! Stored, replayable, relayed per-user events, one implementation for both services.
//!
//! A service appends a user's events to that user's stream in the same atomic
//! step as the change they describe (its own store's script or lock), and
//! publishes them; every replica relays what is published ([`relay`]) to the
//! event streams it holds ([`EventHub`]); a client that reconnects with
//! `Last-Event-ID` is replayed what it missed from the store ([`EventLog`]).
//! [`sse`] serves `GET /v1/events` from these parts.
//!
//! Ids are `<millis>-<seq>`, increasing per user (Redis stream ids; the
//! memory stores make the same, [`EventBuffer`]).

mod buffer;
mod hub;
pub mod redis;
pub mod sse;

use async_trait::async_trait;
use shared_types::UserId;
pub use shared_types::events::Payload;
use tokio::sync::broadcast;

pub use buffer::EventBuffer;
pub use hub::{DEFAULT_MAX_STREAMS_PER_PLAYER, EventHub, Subscription, max_streams_from_env};

/// Events one user's stream keeps for `Last-Event-ID` replay.
pub const EVENTS_KEPT: usize = 256;

/// Events one replica may buffer between the store and its event streams.
pub const BROADCAST_CAPACITY: usize = 65_536;

/// An event as stored in a user's stream (and published to every replica).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(bound = "E: Payload")]
pub struct StoredEvent<E> {
    pub player: UserId,
    pub id: String,
    pub event: E,
}

impl<E> StoredEvent<E> {
    /// An event for `player`, its id given by the store when appended.
    pub fn new(player: &UserId, event: E) -> Self {
        Self {
            player: player.clone(),
            id: String::new(),
            event,
        }
    }
}

/// What a store relays to its subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relayed<E> {
    Event(StoredEvent<E>),
    /// Events may have been missed (the subscription to Redis was
    /// re-established, or the relay lagged): live streams re-read what they
    /// lack from the store.
    Resync,
}

/// Where a service's events are read back: replay after an id, and the live feed.
#[async_trait]
pub trait EventLog<E: Payload>: Send + Sync + 'static {
    type Error: Into<crate::ApiError> + std::fmt::Display + Send;

    /// The user's events after `after` (the newest `limit` when `None`), oldest first.
    async fn events_after(
        &self,
        player: &UserId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredEvent<E>>, Self::Error>;

    /// Every event appended from now on, by any replica.
    fn subscribe(&self) -> broadcast::Receiver<Relayed<E>>;
}

/// Orders stream ids `<millis>-<seq>` numerically (a bare `<millis>` is
/// `<millis>-0`, as in Redis); `None` for a malformed id.
pub fn parse_event_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    Some((ms.parse().ok()?, seq.parse().ok()?))
}
