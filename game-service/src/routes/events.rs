//! `GET /v1/events`: the player's events as server-sent events, replayable with `Last-Event-ID`.

use std::{sync::Arc, time::Duration};

use actix_web::{HttpRequest, Responder, get, web};
use service_kit::{
    ApiError,
    events::{
        EventHub,
        sse::{Stream, WhileOpen},
    },
    shutdown::Shutdown,
    tickets::StreamPlayer,
};
use shared_types::{game::GameEvent, problem::Problem};

use crate::game::Game;

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

/// However short `SESSION_IDLE_SECS`, a stream notes life at most this often.
const MIN_LIFE_TICK: Duration = Duration::from_millis(250);

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
        ("Last-Event-ID" = Option<String>, Header, nullable = false, example = "1795410951397-0", description = "Replay the events after this id (`<millis>-<seq>`, each at most 19 digits; a bare `<millis>` means `<millis>-0`)", pattern = r"^\d{1,19}(-\d{1,19})?$"),
        ("ticket" = Option<String>, Query, nullable = false, example = "q3Vb0m8yXc1Zp9RkT4sLwE7uHn2JfA6dGiK5oYtBvQe", description = "Instead of `Authorization`: a ticket from `POST /v1/events/tickets` (browsers)"),
        ("last_event_id" = Option<String>, Query, nullable = false, example = "1795410951397-0", description = "The `Last-Event-ID` header's twin, for clients that cannot send headers", pattern = r"^\d{1,19}(-\d{1,19})?$"),
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
    hub: web::Data<EventHub<GameEvent>>,
    shutdown: web::Data<Shutdown>,
    req: HttpRequest,
) -> Result<impl Responder, ApiError> {
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
    let noting = game.clone();
    let while_open = WhileOpen {
        every,
        tick: Arc::new(move |player| {
            let game = noting.clone();
            Box::pin(async move {
                if let Err(err) = game.note_life_of(&player).await {
                    tracing::debug!(%err, "noting an open stream's life");
                }
            })
        }),
    };
    Stream {
        caller,
        log: game.store().clone(),
        hub: &hub,
        shutdown: &shutdown,
        while_open: Some(while_open),
    }
    .respond(&req)
    .await
}
