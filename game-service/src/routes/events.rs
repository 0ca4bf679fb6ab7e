//! `GET /v1/events`: the player's events as server-sent events, replayable with `Last-Event-ID`.

use std::time::Duration;

use actix_web::{HttpRequest, Responder, get, web};
use actix_web_lab::sse::{self, Sse};
use service_kit::{
    ApiError, event_stream::ending_with_retry, shutdown::Shutdown, tickets::StreamPlayer,
};
use shared_types::problem::Problem;
use tokio::sync::mpsc;

use crate::{
    game::Game,
    hub::EventHub,
    store::{EVENTS_KEPT, Relayed, StoredEvent, parse_event_id},
};

/// One server-sent event as it appears on the stream (documentation of the wire format).
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "describes the text/event-stream frames in the OpenAPI document"
)]
#[schema(example = json!({"id": "1795410951397-0", "event": "prompt_cancelled", "data": "{\"prompt_id\":\"7c9e6679-7425-40de-944b-e07fc1f90ae7\",\"reason\":\"superseded\",\"replaced_by\":\"5e1f4c3a-7b2d-4e8f-9a6b-1c2d3e4f5a6b\"}"}))]
pub struct EventFrame {
    /// `<millis>-<seq>`, increasing per player: send it back as `Last-Event-ID` to resume after it.
    #[schema(pattern = r"^\d+-\d+$", example = "1795410951397-0")]
    id: String,
    event: EventName,
    /// JSON text: a `Prompt` (event `prompt`), a `PromptCancelled` (`prompt_cancelled`) or a `Session` (`session`).
    data: String,
}

/// The three event names.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case", example = "session")]
pub enum EventName {
    Prompt,
    PromptCancelled,
    Session,
}

/// Proxies close idle connections; a comment line every so often keeps the
/// stream open, and its failed write is how a vanished client is noticed (so
/// the socket is freed within this time).
const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// However short `SESSION_IDLE_SECS`, a stream notes life at most this often.
const MIN_LIFE_TICK: Duration = Duration::from_millis(250);
/// The `retry:` advice at the start of every stream: how soon a client
/// reconnects (with `Last-Event-ID`) after the stream ends, at its token's
/// expiry, a replica's shutdown or a cut for lagging.
const RETRY_ADVICE: Duration = Duration::from_secs(1);

/// The player's event stream (`text/event-stream`).
///
/// Each event has an `id` (`<millis>-<seq>`, increasing), an `event` name
/// (`prompt`, `prompt_cancelled` or `session`) and JSON `data` (a `Prompt`, a
/// `PromptCancelled` or a `Session`). Reconnect with the `Last-Event-ID` header
/// to receive every event after that id first (events are kept for an hour,
/// the newest 256 per player). Lines starting with `:` are keep-alives. The
/// stream starts with `retry: 1000` and ends when the bearer token that
/// opened it expires; reconnect with a fresh token and `Last-Event-ID`.
/// Browsers, whose `EventSource` cannot send `Authorization`, open it with
/// `?ticket=` from `POST /v1/events/tickets` instead, and resume with
/// `last_event_id` in the query (the header's twin; the header wins). A
/// replica shutting down ends its streams with a last `retry:` of its own
/// (1 s plus a random share of `SHUTDOWN_RECONNECT_JITTER_MS`), so that its
/// clients reconnect to other replicas spread over time.
#[utoipa::path(
    tag = "events",
    security(("bearer" = []), ()),
    params(
        ("Last-Event-ID" = Option<String>, Header, nullable = false, example = "1795410951397-0", description = "Replay the events after this id (`<millis>-<seq>`; a bare `<millis>` means `<millis>-0`)", pattern = r"^\d+(-\d+)?$"),
        ("ticket" = Option<String>, Query, nullable = false, example = "q3Vb0m8yXc1Zp9RkT4sLwE7uHn2JfA6dGiK5oYtBvQe", description = "Instead of `Authorization`: a ticket from `POST /v1/events/tickets` (browsers)"),
        ("last_event_id" = Option<String>, Query, nullable = false, example = "1795410951397-0", description = "The `Last-Event-ID` header's twin, for clients that cannot send headers", pattern = r"^\d+(-\d+)?$"),
    ),
    responses(
        (status = 200, description = "An endless `text/event-stream` of the player's events, one `EventFrame` each", content_type = "text/event-stream", body = EventFrame),
        (status = 400, description = "Malformed `Last-Event-ID` or `last_event_id`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token; unknown, expired or another player's ticket", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A `service` token: these endpoints are for players", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this caller; retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable; retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/events")]
pub async fn stream(
    caller: StreamPlayer,
    game: web::Data<Game>,
    hub: web::Data<EventHub>,
    shutdown: web::Data<Shutdown>,
    req: HttpRequest,
) -> Result<impl Responder, ApiError> {
    let StreamPlayer {
        player,
        expires_at,
        last_event_id,
    } = caller;
    // The stream ends when the token that opened it (or that the ticket was
    // issued for) expires: it must not outlive the credential (session
    // events carry join tokens).
    let token_expires =
        tokio::time::Instant::now() + Duration::from_secs(expires_at.saturating_sub(unix_now()));
    // The header wins over its query twin (a browser's EventSource sends the
    // header itself when it reconnects).
    let header_id = req
        .headers()
        .get("Last-Event-ID")
        .map(|value| value.to_str().unwrap_or_default().trim().to_owned());
    let query_id = last_event_id.map(|id| id.trim().to_owned());
    // Both are checked, whichever is used: a malformed id is a 400 either way.
    for raw in header_id.iter().chain(query_id.iter()) {
        // The largest id has no successor to replay from (Redis refuses it).
        if parse_event_id(raw).is_none_or(|id| id == (u64::MAX, u64::MAX)) {
            return Err(ApiError::invalid(
                "Last-Event-ID (or last_event_id) must look like <millis>-<seq>, each a number below 2^64",
            ));
        }
    }
    let last_id = header_id.or(query_id);
    // Subscribe before reading the store, so no event falls between the two.
    let mut live = hub.subscribe(&player);
    let store = game.store().clone();
    let replay = match &last_id {
        Some(id) => store.events_after(&player, Some(id), EVENTS_KEPT).await,
        // Without Last-Event-ID the stream starts now: remember where "now" is,
        // so that a resync knows what counts as missed.
        None => store.events_after(&player, None, 1).await,
    }
    .map_err(crate::game::GameError::from)?;
    let (out, rx) = mpsc::channel::<sse::Event>(16);
    let (retry_tail, response) = ending_with_retry(
        Sse::from_infallible_receiver(rx)
            .with_keep_alive(KEEP_ALIVE)
            .with_retry_duration(RETRY_ADVICE),
        &req,
    );
    let mut shutdown = shutdown.get_ref().clone();
    // An open stream is a sign of life of the player's session, noted as
    // often as the game records life, from one period after it opened (the
    // idle deadline allows for that, so opening a stream reads nothing more).
    let game = game.into_inner();
    let every = game
        .engine()
        .life_resolution()
        .to_std()
        .unwrap_or(Duration::from_secs(60))
        .max(MIN_LIFE_TICK);
    let mut alive = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    alive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
                _ = alive.tick() => {
                    if let Err(err) = game.note_life_of(&player).await {
                        tracing::debug!(%err, "noting an open stream's life");
                    }
                    continue;
                }
            };
            let sent = match next {
                None => return, // cut by the hub: the client reconnects and replays
                Some(Relayed::Event(event)) => stream.send_all(vec![event]).await,
                Some(Relayed::Resync) => {
                    let after = stream.last_sent.map(|(ms, seq)| format!("{ms}-{seq}"));
                    match store
                        .events_after(&player, after.as_deref(), EVENTS_KEPT)
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
    async fn send_all(&mut self, events: Vec<StoredEvent>) -> Result<(), ()> {
        for event in events {
            let id = parse_event_id(&event.id);
            if id <= self.last_sent {
                continue;
            }
            self.last_sent = id;
            self.out.send(frame(&event)).await.map_err(|_| ())?;
        }
        Ok(())
    }
}

fn frame(event: &StoredEvent) -> sse::Event {
    let data = match &event.event {
        shared_types::game::GameEvent::Prompt(prompt) => serde_json::to_string(prompt),
        shared_types::game::GameEvent::PromptCancelled(c) => serde_json::to_string(c),
        shared_types::game::GameEvent::Session(session) => serde_json::to_string(session),
    }
    .unwrap_or_default();
    sse::Data::new(data)
        .event(event.event.name())
        .id(event.id.clone())
        .into()
}
