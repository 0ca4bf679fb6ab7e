//! `GET /v1/events`: the player's events as server-sent events, replayable with `Last-Event-ID`.

use std::time::Duration;

use actix_web::{HttpRequest, Responder, get, web};
use actix_web_lab::sse::{self, Sse};
use service_kit::{ApiError, auth::Authenticated};
use shared_types::problem::Problem;
use tokio::sync::mpsc;

use crate::{
    game::Game,
    hub::EventHub,
    store::{EVENTS_KEPT, StoredEvent, parse_event_id},
};

/// Proxies close idle connections; a comment line every so often keeps the stream open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The player's event stream (`text/event-stream`).
///
/// Each event has an `id` (`<millis>-<seq>`, increasing), an `event` name
/// (`prompt`, `prompt_cancelled` or `session`) and JSON `data` (a `Prompt`, a
/// `PromptCancelled` or a `Session`). Reconnect with the `Last-Event-ID` header
/// to receive every event after that id first (events are kept for an hour,
/// the newest 256 per player). Lines starting with `:` are keep-alives.
#[utoipa::path(
    tag = "events",
    security(("bearer" = [])),
    params(("Last-Event-ID" = Option<String>, Header, description = "Replay the events after this id", pattern = r"^\d+-\d+$")),
    responses(
        (status = 200, description = "An endless `text/event-stream` of the player's events", content_type = "text/event-stream", body = String),
        (status = 400, description = "Malformed `Last-Event-ID`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable; retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/events")]
pub async fn stream(
    caller: Authenticated,
    game: web::Data<Game>,
    hub: web::Data<EventHub>,
    req: HttpRequest,
) -> Result<impl Responder, ApiError> {
    let player = caller.0.user_id;
    let last_id = match req.headers().get("Last-Event-ID") {
        None => None,
        Some(value) => {
            let raw = value.to_str().unwrap_or_default().trim().to_owned();
            if parse_event_id(&raw).is_none() {
                return Err(ApiError::invalid(
                    "Last-Event-ID must look like <millis>-<seq>",
                ));
            }
            Some(raw)
        }
    };
    // Subscribe before reading the replay, so no event falls between the two.
    let mut live = hub.subscribe(&player);
    let replay = match &last_id {
        Some(id) => game
            .store()
            .events_after(&player, Some(id), EVENTS_KEPT)
            .await
            .map_err(crate::game::GameError::from)?,
        None => Vec::new(),
    };
    let (out, rx) = mpsc::channel::<sse::Event>(16);
    actix_web::rt::spawn(async move {
        let mut last_sent = last_id.as_deref().and_then(parse_event_id);
        for event in replay {
            last_sent = parse_event_id(&event.id);
            if out.send(frame(&event)).await.is_err() {
                return;
            }
        }
        loop {
            tokio::select! {
                () = out.closed() => return,
                next = live.recv() => {
                    let Some(event) = next else { return };
                    let id = parse_event_id(&event.id);
                    if id <= last_sent {
                        continue; // already replayed
                    }
                    last_sent = id;
                    if out.send(frame(&event)).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    Ok(Sse::from_infallible_receiver(rx).with_keep_alive(KEEP_ALIVE))
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
