//! `GET /v1/events` for either service: a user's events as server-sent events,
//! replayed after `Last-Event-ID` (or its query twin), then live, until the
//! client leaves, the token that opened the stream expires, the replica shuts
//! down, or the hub cuts it.

use std::{sync::Arc, time::Duration};

use actix_web::{HttpRequest, HttpResponse};
use actix_web_lab::sse::{self, Sse};
use futures_util::future::BoxFuture;
use shared_types::UserId;
use tokio::sync::mpsc;

use super::{EventHub, EventLog, Payload, Relayed, StoredEvent, parse_event_id};
use crate::{ApiError, event_stream::ending_with_retry, shutdown::Shutdown, tickets::StreamPlayer};

/// Proxies close idle connections; a comment line every so often keeps the
/// stream open. A client that vanished (no FIN, no RST) is noticed through it
/// too, though not by the write itself, which the kernel's send buffer takes
/// whether or not anyone is there: the connection fails once the comment has
/// gone unacknowledged for [`crate::serve::USER_TIMEOUT`] (`TCP_USER_TIMEOUT`,
/// set on every accepted connection by [`crate::serve::on_connect`]), and the
/// stream is released with it, within this period plus that timeout.
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// The `retry:` advice at the start of every stream: how soon a client
/// reconnects (with `Last-Event-ID`) after the stream ends, at its token's
/// expiry, a replica's shutdown or a cut for lagging.
const RETRY_ADVICE: Duration = Duration::from_secs(1);

/// Something a service does for as long as a user's stream stays open, every
/// `every` from one period after it opened (the game notes the life of the
/// player's session).
pub struct WhileOpen {
    pub every: Duration,
    pub tick: Arc<dyn Fn(UserId) -> BoxFuture<'static, ()> + Send + Sync>,
}

/// The open stream's parts, from the request's extractors.
pub struct Stream<'a, E, L: ?Sized> {
    pub caller: StreamPlayer,
    pub log: Arc<L>,
    pub hub: &'a EventHub<E>,
    pub shutdown: &'a Shutdown,
    pub while_open: Option<WhileOpen>,
}

impl<E: Payload, L: EventLog<E> + ?Sized> Stream<'_, E, L> {
    /// Validates the resume point, replays, and hands the live part to a task.
    pub async fn respond(
        self,
        req: &HttpRequest,
    ) -> Result<HttpResponse<impl actix_web::body::MessageBody + use<E, L>>, ApiError> {
        let StreamPlayer {
            player,
            expires_at,
            last_event_id,
        } = self.caller;
        // The stream ends when the token that opened it (or that the ticket
        // was issued for) expires: it must not outlive the credential.
        let token_expires = tokio::time::Instant::now()
            + Duration::from_secs(expires_at.saturating_sub(unix_now()));
        let last_id = resume_point(req, last_event_id)?;
        // Subscribe before reading the store, so that every event after the replay's is in the
        // live queue (the cursor drops what is in both).
        let mut live = self.hub.subscribe(&player);
        let log = self.log;
        let replay = match &last_id {
            // The whole kept stream after the id: the store trims approximately, so it may
            // keep a few more than `EVENTS_KEPT`, and none of them is dropped here.
            Some(id) => log.events_after(&player, Some(id), usize::MAX).await,
            // Without Last-Event-ID the stream starts now: remember where "now" is.
            None => log.events_after(&player, None, 1).await,
        }
        .map_err(Into::into)?;
        // Open for good: only now are the player's oldest streams past the bound cut.
        live.keep();
        let (out, rx) = mpsc::channel::<sse::Event>(16);
        let (retry_tail, response) = ending_with_retry(
            Sse::from_infallible_receiver(rx)
                .with_keep_alive(KEEP_ALIVE)
                .with_retry_duration(RETRY_ADVICE),
            req,
        );
        let mut shutdown = self.shutdown.clone();
        let (every, tick) = match self.while_open {
            Some(WhileOpen { every, tick }) => (every, Some(tick)),
            None => (Duration::from_secs(3600), None),
        };
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        actix_web::rt::spawn(async move {
            let mut stream = Cursor {
                last_sent: last_id.as_deref().and_then(parse_event_id),
                out,
            };
            if last_id.is_some() {
                if stream.send_all(replay).await.is_err() {
                    return;
                }
            } else {
                // What counts as missed on a resync, and as already there. A known limit: an
                // event appended between the subscription and that read (one round trip) is
                // taken for one from before the stream opened.
                stream.last_sent = replay.last().and_then(|e| parse_event_id(&e.id));
            }
            loop {
                let next = tokio::select! {
                    () = stream.out.closed() => return,
                    () = shutdown.streams_end() => {
                        // The client reconnects elsewhere, at a time of its own.
                        retry_tail.advise(shutdown.reconnect_advice());
                        return;
                    }
                    () = tokio::time::sleep_until(token_expires) => return, // reconnects with a fresh token
                    next = live.events.recv() => next,
                    _ = ticks.tick() => {
                        if let Some(tick) = &tick {
                            tick(player.clone()).await;
                        }
                        continue;
                    }
                };
                let sent = match next {
                    None => return, // cut by the hub: the client reconnects and replays
                    Some(Relayed::Event(event)) => stream.send_all(vec![event]).await,
                    Some(Relayed::Resync) => {
                        let after = stream.last_sent.map(|(ms, seq)| format!("{ms}-{seq}"));
                        match log
                            .events_after(&player, after.as_deref(), usize::MAX)
                            .await
                        {
                            Ok(missed) => stream.send_all(missed).await,
                            Err(err) => {
                                tracing::warn!(%err, "resync failed; closing the stream for a replay");
                                return;
                            }
                        }
                    }
                };
                if sent.is_err() {
                    return;
                }
            }
        });
        Ok(response)
    }
}

/// The id to replay after: the `Last-Event-ID` header, else its query twin
/// (a browser's EventSource sends the header itself when it reconnects, so
/// the header wins). Both are checked whichever is used: a malformed id is a
/// 400 either way.
fn resume_point(req: &HttpRequest, query: Option<String>) -> Result<Option<String>, ApiError> {
    let header = req
        .headers()
        .get("Last-Event-ID")
        .map(|value| value.to_str().unwrap_or_default().trim().to_owned());
    let query = query.map(|id| id.trim().to_owned());
    for raw in header.iter().chain(query.iter()) {
        if !is_resume_id(raw) {
            return Err(ApiError::invalid(
                "Last-Event-ID (or last_event_id) must look like <millis>-<seq>, each at most 19 digits",
            ));
        }
    }
    Ok(header.or(query))
}

/// `<millis>` or `<millis>-<seq>`, each 1 to 19 digits (as the OpenAPI documents say): every
/// such id is below 2^64 and has a successor to replay from.
fn is_resume_id(raw: &str) -> bool {
    let (ms, seq) = raw.split_once('-').unwrap_or((raw, "0"));
    [ms, seq]
        .iter()
        .all(|part| (1..=19).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit()))
        && parse_event_id(raw).is_some()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// One open stream: what it sent last, so nothing goes out twice or out of order.
struct Cursor {
    last_sent: Option<(u64, u64)>,
    out: mpsc::Sender<sse::Event>,
}

impl Cursor {
    async fn send_all<E: Payload>(&mut self, events: Vec<StoredEvent<E>>) -> Result<(), ()> {
        for event in events {
            let id = parse_event_id(&event.id);
            if id <= self.last_sent {
                continue;
            }
            self.last_sent = id;
            let frame = sse::Data::new(event.event.data())
                .event(event.event.name())
                .id(event.id);
            self.out.send(frame.into()).await.map_err(|_| ())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::is_resume_id;

    #[test]
    fn resume_ids_are_one_or_two_numbers_of_at_most_19_digits() {
        for good in [
            "0",
            "1795410951397",
            "1795410951397-0",
            "9999999999999999999-9999999999999999999",
        ] {
            assert!(is_resume_id(good), "{good}");
        }
        for bad in [
            "",
            "-",
            "1-",
            "-1",
            "a-1",
            "1-2-3",
            " 1",
            "+1",
            "12345678901234567890",
            "1-12345678901234567890",
            "1795410951397-0x",
        ] {
            assert!(!is_resume_id(bad), "{bad:?}");
        }
    }
}
