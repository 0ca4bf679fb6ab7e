//! The event relay: every event any replica publishes, forwarded to this replica's subscribers, resubscribing by itself after Redis comes back.

use std::time::Duration;

use futures_util::StreamExt;
use redis::Client;
use tokio::sync::broadcast;

use crate::store::{Relayed, StoredEvent};

/// Forwards every event published by any replica to local subscribers;
/// resubscribes by itself (trying each node in turn) after Redis comes back.
pub(super) async fn relay_events(
    nodes: Vec<String>,
    channel: String,
    out: broadcast::Sender<Relayed>,
) {
    for url in nodes.iter().cycle() {
        match Client::open(url.as_str()) {
            Ok(client) => match client.get_async_pubsub().await {
                Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                    Ok(()) => {
                        // Whatever was published while we were not subscribed is in the streams.
                        let _ = out.send(Relayed::Resync);
                        let mut messages = pubsub.on_message();
                        while let Some(message) = messages.next().await {
                            match serde_json::from_slice::<StoredEvent>(message.get_payload_bytes())
                            {
                                Ok(event) => {
                                    let _ = out.send(Relayed::Event(event));
                                }
                                Err(err) => tracing::warn!(%err, "undecodable event on {channel}"),
                            }
                        }
                        tracing::warn!("event subscription to Redis lost; reconnecting");
                    }
                    Err(err) => tracing::warn!(%err, "subscribing to {channel}"),
                },
                Err(err) => tracing::debug!(%err, "event relay cannot reach Redis yet"),
            },
            Err(err) => tracing::error!(%err, url, "invalid Redis URL for the event relay"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
