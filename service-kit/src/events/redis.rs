//! Events in Redis: each user's stream is a Redis stream (field `e`: the
//! event's JSON), appended and published by the service's own scripts; read
//! back here, and relayed from the publish channel to this replica.

use std::time::Duration;

use futures_util::StreamExt;
use redis::{Client, IntoConnectionInfo, aio::ConnectionLike};
use shared_types::UserId;
use tokio::sync::broadcast;

use super::{Payload, Relayed, StoredEvent};
use crate::redis_sentinel::SentinelTarget;

/// The Lua function `append_event(stream, player, json, maxlen, ttl_ms,
/// channel)` that every script appending events calls: one definition of the
/// stored and published format for both services.
pub const APPEND_EVENT_LUA: &str = include_str!("lua/append_event.lua");

/// `body` (a script that calls `append_event`) with its definition prepended.
pub fn with_append_event(body: &str) -> redis::Script {
    redis::Script::new(&format!("{APPEND_EVENT_LUA}\n{body}"))
}

/// Why reading a stream failed: Redis itself, or an entry that does not decode.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("reading events from Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("an undecodable event in {key}: {error}")]
    Corrupt {
        key: String,
        error: serde_json::Error,
    },
}

/// `player`'s events in stream `key` after `after` (the newest `limit` when
/// `None`), oldest first: one XRANGE (or XREVRANGE) round trip.
pub async fn events_after<E: Payload>(
    conn: &mut impl ConnectionLike,
    key: &str,
    player: &UserId,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<StoredEvent<E>>, ReadError> {
    type Entries = Vec<(String, Vec<(String, String)>)>;
    // Redis takes a COUNT up to i64::MAX.
    let limit = limit.min(i64::MAX as usize);
    let entries: Entries = match after {
        Some(id) => {
            redis::cmd("XRANGE")
                .arg(key)
                .arg(format!("({id}"))
                .arg("+")
                .arg("COUNT")
                .arg(limit)
                .query_async(conn)
                .await?
        }
        None => {
            let mut newest: Entries = redis::cmd("XREVRANGE")
                .arg(key)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(limit)
                .query_async(conn)
                .await?;
            newest.reverse();
            newest
        }
    };
    entries
        .into_iter()
        .filter_map(|(id, fields)| {
            fields
                .into_iter()
                .find(|(name, _)| name == "e")
                .map(|(_, json)| (id, json))
        })
        .map(|(id, json)| {
            Ok(StoredEvent {
                player: player.clone(),
                id,
                event: serde_json::from_str(&json).map_err(|error| ReadError::Corrupt {
                    key: key.to_owned(),
                    error,
                })?,
            })
        })
        .collect()
}

/// Forwards every event published on `channel` by any replica to local
/// subscribers; resubscribes by itself (trying each node in turn, or the primary the
/// Sentinels name) after Redis
/// comes back, and then asks the streams to resync (whatever was published
/// meanwhile is in the stored streams).
pub async fn relay_events<E: Payload>(
    nodes: Vec<String>,
    channel: String,
    out: broadcast::Sender<Relayed<E>>,
) {
    for node in nodes.iter().cycle() {
        // Behind Sentinel, subscribe to whichever node is the primary now.
        let url = match SentinelTarget::parse(node) {
            Ok(Some(target)) => match target.primary_url().await {
                Ok(primary) => primary,
                Err(err) => {
                    tracing::debug!(error = format!("{err:#}"), "event relay: no primary yet");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
            },
            _ => node.clone(),
        };
        let url = url.as_str();
        let info = url
            .into_connection_info()
            .map(|info| info.set_tcp_settings(crate::redis_conn::tcp_settings()));
        match info.and_then(Client::open) {
            Ok(client) => match client.get_async_pubsub().await {
                Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                    Ok(()) => {
                        let _ = out.send(Relayed::Resync);
                        let mut messages = pubsub.on_message();
                        while let Some(message) = messages.next().await {
                            match serde_json::from_slice::<StoredEvent<E>>(
                                message.get_payload_bytes(),
                            ) {
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
