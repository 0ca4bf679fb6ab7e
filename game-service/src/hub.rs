//! Fans events from the store out to this replica's open event streams.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use shared_types::UserId;
use tokio::sync::{broadcast::error::RecvError, mpsc};

use crate::store::{Relayed, Store};

/// Events one slow stream may fall behind before it is cut (it reconnects with Last-Event-ID).
const STREAM_BUFFER: usize = 64;

type Subscribers = HashMap<UserId, Vec<mpsc::Sender<Relayed>>>;

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

    /// A receiver of `player`'s events (and resync signals) from now on.
    pub fn subscribe(&self, player: &UserId) -> mpsc::Receiver<Relayed> {
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

    /// Sends to `player`'s streams, or to every stream when `player` is `None`.
    /// A full or closed stream is dropped: its client reconnects and replays.
    fn dispatch(&self, player: Option<&UserId>, item: Relayed) {
        let Ok(mut subscribers) = self.subscribers.lock() else {
            return;
        };
        let deliver = |streams: &mut Vec<mpsc::Sender<Relayed>>| {
            streams.retain(|stream| stream.try_send(item.clone()).is_ok());
        };
        match player {
            Some(player) => {
                if let Some(streams) = subscribers.get_mut(player) {
                    deliver(streams);
                }
            }
            None => subscribers.values_mut().for_each(deliver),
        }
        subscribers.retain(|_, streams| !streams.is_empty());
    }
}
