//! Fans events from the store out to this replica's open event streams.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use shared_types::UserId;
use tokio::sync::{broadcast::error::RecvError, mpsc};

use crate::store::{Store, StoredEvent};

/// Events one slow stream may fall behind before it is cut (it reconnects with Last-Event-ID).
const STREAM_BUFFER: usize = 64;

type Subscribers = HashMap<UserId, Vec<mpsc::Sender<StoredEvent>>>;

#[derive(Clone, Default)]
pub struct EventHub {
    subscribers: Arc<Mutex<Subscribers>>,
}

impl EventHub {
    /// Starts relaying the store's events to local subscribers.
    pub fn start(store: &Arc<dyn Store>) -> Self {
        let hub = Self::default();
        let mut events = store.subscribe();
        let relay = hub.clone();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) => relay.dispatch(event),
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(
                            missed,
                            "event hub lagged; clients replay with Last-Event-ID"
                        );
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        });
        hub
    }

    /// A receiver of `player`'s events from now on.
    pub fn subscribe(&self, player: &UserId) -> mpsc::Receiver<StoredEvent> {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        if let Ok(mut subscribers) = self.subscribers.lock() {
            subscribers.entry(player.clone()).or_default().push(tx);
        }
        rx
    }

    /// Open event streams on this replica.
    pub fn stream_count(&self) -> usize {
        self.subscribers
            .lock()
            .map(|s| s.values().map(Vec::len).sum())
            .unwrap_or_default()
    }

    fn dispatch(&self, event: StoredEvent) {
        let Ok(mut subscribers) = self.subscribers.lock() else {
            return;
        };
        if let Some(streams) = subscribers.get_mut(&event.player) {
            // A full or closed stream is dropped; its client reconnects and replays.
            streams.retain(|stream| stream.try_send(event.clone()).is_ok());
            if streams.is_empty() {
                subscribers.remove(&event.player);
            }
        }
    }
}
