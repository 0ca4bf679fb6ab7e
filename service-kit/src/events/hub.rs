//! Fans events from the store out to this replica's open event streams.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use shared_types::UserId;
use tokio::sync::{broadcast::error::RecvError, mpsc};

use prometheus::IntGauge;

use super::{EventLog, Payload, Relayed};

/// Events one slow stream may fall behind before it is cut (it reconnects with Last-Event-ID).
const STREAM_BUFFER: usize = 64;

/// Each player's open streams on this replica, by subscription id.
type Subscribers<E> = HashMap<UserId, Vec<(u64, mpsc::Sender<Relayed<E>>)>>;

/// Default `MAX_STREAMS_PER_PLAYER`: a few devices and tabs, not a thousand.
pub const DEFAULT_MAX_STREAMS_PER_PLAYER: usize = 8;

/// `MAX_STREAMS_PER_PLAYER`: the streams one user may hold on one replica (at least 1).
pub fn max_streams_from_env() -> anyhow::Result<usize> {
    let max: usize =
        crate::config::env_or("MAX_STREAMS_PER_PLAYER", DEFAULT_MAX_STREAMS_PER_PLAYER)?;
    anyhow::ensure!(max >= 1, "MAX_STREAMS_PER_PLAYER must be at least 1");
    Ok(max)
}

pub struct EventHub<E> {
    inner: Arc<Inner<E>>,
}

impl<E> Clone for EventHub<E> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<E> {
    subscribers: Mutex<Subscribers<E>>,
    next_id: AtomicU64,
    /// Streams one player may hold on this replica; `0` means
    /// [`DEFAULT_MAX_STREAMS_PER_PLAYER`].
    max_per_player: usize,
    /// The service's gauge of open streams.
    open: IntGauge,
}

/// A live subscription: its receiver, and on drop it leaves the hub (so a
/// closed stream costs nothing afterwards, even if its player never gets
/// another event).
pub struct Subscription<E> {
    pub events: mpsc::Receiver<Relayed<E>>,
    hub: Arc<Inner<E>>,
    player: UserId,
    id: u64,
}

impl<E> Subscription<E> {
    /// The stream is open for good (its replay was read): past the per-player bound, the
    /// player's oldest streams on this replica are cut now, not when a stream that then
    /// failed to open was asked for.
    pub fn keep(&self) {
        let max = match self.hub.max_per_player {
            0 => DEFAULT_MAX_STREAMS_PER_PLAYER,
            n => n,
        };
        if let Ok(mut subscribers) = self.hub.subscribers.lock()
            && let Some(streams) = subscribers.get_mut(&self.player)
        {
            let excess = streams.len().saturating_sub(max);
            streams.drain(..excess);
        }
    }
}

impl<E> Drop for Subscription<E> {
    fn drop(&mut self) {
        self.hub.open.dec();
        if let Ok(mut subscribers) = self.hub.subscribers.lock()
            && let Some(streams) = subscribers.get_mut(&self.player)
        {
            streams.retain(|(id, _)| *id != self.id);
            if streams.is_empty() {
                subscribers.remove(&self.player);
            }
        }
    }
}

impl<E: Payload> EventHub<E> {
    /// Starts relaying the log's events to local subscribers; a player
    /// holds at most `max_per_player` streams here (opening one more closes
    /// their oldest, whose client reconnects with `Last-Event-ID` if it is
    /// still there). `open` counts the streams held.
    pub fn start<L: EventLog<E> + ?Sized>(log: &L, max_per_player: usize, open: IntGauge) -> Self {
        let hub = Self::new(max_per_player, open);
        let mut events = log.subscribe();
        let relay = hub.clone();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(Relayed::Event(event)) => {
                        let player = event.player.clone();
                        relay.dispatch(Some(&player), Relayed::Event(event));
                    }
                    Ok(Relayed::Resync) => relay.dispatch(None, Relayed::Resync),
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "event hub lagged; streams re-read the store");
                        relay.dispatch(None, Relayed::Resync);
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        });
        hub
    }

    fn new(max_per_player: usize, open: IntGauge) -> Self {
        Self {
            inner: Arc::new(Inner {
                subscribers: Mutex::default(),
                next_id: AtomicU64::default(),
                max_per_player,
                open,
            }),
        }
    }

    /// `player`'s events (and resync signals) from now on, until the
    /// subscription is dropped. Once it is kept ([`Subscription::keep`]), the
    /// oldest of the player's streams past the per-player bound are cut
    /// (their receivers end).
    pub fn subscribe(&self, player: &UserId) -> Subscription<E> {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut subscribers) = self.inner.subscribers.lock() {
            subscribers
                .entry(player.clone())
                .or_default()
                .push((id, tx));
        }
        // Counted while the subscription lives: a stream the hub cut stays
        // open until its handler notices and drops it.
        self.inner.open.inc();
        Subscription {
            events: rx,
            hub: self.inner.clone(),
            player: player.clone(),
            id,
        }
    }

    /// Open event streams on this replica.
    pub fn stream_count(&self) -> usize {
        self.inner
            .subscribers
            .lock()
            .map(|s| s.values().map(Vec::len).sum())
            .unwrap_or_default()
    }

    /// Sends to `player`'s streams (one map lookup), or to every stream when
    /// `player` is `None`. A full stream is cut: its client reconnects and replays.
    fn dispatch(&self, player: Option<&UserId>, item: Relayed<E>) {
        let Ok(mut subscribers) = self.inner.subscribers.lock() else {
            return;
        };
        let deliver = |streams: &mut Vec<(u64, mpsc::Sender<Relayed<E>>)>| {
            streams.retain(|(_, stream)| stream.try_send(item.clone()).is_ok());
        };
        match player {
            Some(player) => {
                if let Some(streams) = subscribers.get_mut(player) {
                    deliver(streams);
                    if streams.is_empty() {
                        subscribers.remove(player);
                    }
                }
            }
            None => {
                subscribers.values_mut().for_each(deliver);
                subscribers.retain(|_, streams| !streams.is_empty());
            }
        }
    }
}

#[cfg(test)]
#[expect(clippy::expect_used, reason = "tests")]
mod tests {
    use super::*;

    /// A payload for the tests: the hub only routes it.
    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Note;

    impl Payload for Note {
        fn name(&self) -> &'static str {
            "note"
        }
        fn data(&self) -> String {
            "{}".into()
        }
    }

    fn hub(max_per_player: usize) -> EventHub<Note> {
        EventHub::new(
            max_per_player,
            IntGauge::new("open", "open streams").expect("a gauge"),
        )
    }

    #[test]
    fn a_dropped_subscription_leaves_the_hub() {
        let hub = hub(0);
        let alice = UserId::parse("alice").expect("valid id");
        let first = hub.subscribe(&alice);
        let second = hub.subscribe(&alice);
        assert_eq!(hub.stream_count(), 2);
        drop(first);
        assert_eq!(hub.stream_count(), 1);
        drop(second);
        assert_eq!(hub.stream_count(), 0);
        assert!(hub.inner.subscribers.lock().expect("lock").is_empty());
    }

    #[test]
    fn past_the_bound_a_players_oldest_stream_is_cut() {
        let hub = hub(2);
        let alice = UserId::parse("alice").expect("valid id");
        let mut oldest = hub.subscribe(&alice);
        oldest.keep();
        let mut older = hub.subscribe(&alice);
        older.keep();
        let newest = hub.subscribe(&alice);
        assert_eq!(
            hub.stream_count(),
            3,
            "nothing is cut before the new stream is kept"
        );
        newest.keep();
        assert_eq!(hub.stream_count(), 2);
        assert!(
            matches!(
                oldest.events.try_recv(),
                Err(mpsc::error::TryRecvError::Disconnected)
            ),
            "the oldest stream ends"
        );
        hub.dispatch(Some(&alice), Relayed::Resync);
        assert_eq!(older.events.try_recv().ok(), Some(Relayed::Resync));
        let bob = UserId::parse("bob").expect("valid id");
        let other = hub.subscribe(&bob);
        other.keep();
        assert_eq!(hub.stream_count(), 3, "the bound is per player");
    }

    #[test]
    fn an_event_reaches_only_its_players_streams() {
        let hub = hub(0);
        let alice = UserId::parse("alice").expect("valid id");
        let bob = UserId::parse("bob").expect("valid id");
        let mut to_alice = hub.subscribe(&alice);
        let mut to_bob = hub.subscribe(&bob);
        hub.dispatch(Some(&alice), Relayed::Resync);
        assert_eq!(to_alice.events.try_recv().ok(), Some(Relayed::Resync));
        assert!(to_bob.events.try_recv().is_err());
        hub.dispatch(None, Relayed::Resync);
        assert_eq!(to_alice.events.try_recv().ok(), Some(Relayed::Resync));
        assert_eq!(to_bob.events.try_recv().ok(), Some(Relayed::Resync));
    }
}
