//! `GET /v1/events`: the user's IM events (messages, conversations, partners' presence) as
//! server-sent events, replayable with `Last-Event-ID`, through the same machinery as the
//! game service's stream.

use actix_web::{HttpRequest, Responder, get, web};
use service_kit::{
    ApiError,
    events::{EventHub, sse::Stream},
    shutdown::Shutdown,
    tickets::StreamPlayer,
};
use shared_types::{im::ImEvent, problem::Problem};

use super::AppState;

/// One server-sent event as it appears on the stream (documentation of the wire format).
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "describes the text/event-stream frames in the OpenAPI document"
)]
#[schema(example = json!({"id": "1795410951397-0", "event": "message", "data": "{\"seq\":3,\"conversation_id\":\"c7d2a1e4-3f5b-4a6c-8d9e-0f1a2b3c4d5e\",\"sender\":\"bob\",\"text\":\"sure\",\"sent_at\":\"2026-11-23T09:59:30Z\"}"}))]
pub struct ImEventFrame {
    /// `<millis>-<seq>`, increasing per user: send it back as `Last-Event-ID` to resume after it.
    #[schema(pattern = r"^\d+-\d+$", example = "1795410951397-0")]
    id: String,
    event: ImEventName,
    /// JSON text: a `Message` (event `message`), a `Conversation` (`conversation`) or a
    /// `Presence` (`presence`).
    data: String,
}

/// The three event names.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case", example = "message")]
pub enum ImEventName {
    Message,
    Conversation,
    Presence,
}

/// The caller's IM events (`text/event-stream`).
///
/// Each event has an `id` (`<millis>-<seq>`, increasing), an `event` name and JSON `data`:
/// `message` (a `Message` posted in one of the caller's conversations, the caller's own
/// included), `conversation` (a `Conversation` the caller sees was opened or closed; its
/// `closed` says which) or `presence` (a `Presence`: someone the caller talks with, both
/// having posted in a conversation and no block either way, changed status or began or
/// stopped playing a game, `activity`). Reconnect with
/// the `Last-Event-ID` header to receive every event after that id first (events are kept for
/// an hour, the newest 256 per user); read the conversation again after a long gap. Lines
/// starting with `:` are keep-alives. The stream starts with `retry: 1000` and ends when the
/// bearer token that opened it expires; reconnect with a fresh token and `Last-Event-ID`.
/// Browsers, whose `EventSource` cannot send `Authorization`, open it with `?ticket=` from
/// `POST /v1/events/tickets` of this service, and resume with `last_event_id` in the query
/// (the header's twin; the header wins). A replica shutting down ends its streams with a last
/// `retry:` of its own, so that clients reconnect to other replicas spread over time.
#[utoipa::path(
    tag = "events",
    security(("bearer" = []), ()),
    params(
        ("Last-Event-ID" = Option<String>, Header, nullable = false, example = "1795410951397-0", description = "Replay the events after this id (`<millis>-<seq>`, each at most 19 digits; a bare `<millis>` means `<millis>-0`)", pattern = r"^\d{1,19}(-\d{1,19})?$"),
        ("ticket" = Option<String>, Query, nullable = false, example = "q3Vb0m8yXc1Zp9RkT4sLwE7uHn2JfA6dGiK5oYtBvQe", description = "Instead of `Authorization`: a ticket from `POST /v1/events/tickets` (browsers)"),
        ("last_event_id" = Option<String>, Query, nullable = false, example = "1795410951397-0", description = "The `Last-Event-ID` header's twin, for clients that cannot send headers", pattern = r"^\d{1,19}(-\d{1,19})?$"),
    ),
    responses(
        (status = 200, description = "An endless `text/event-stream` of the caller's IM events, one `ImEventFrame` each", content_type = "text/event-stream", body = ImEventFrame),
        (status = 400, description = "Malformed `Last-Event-ID` or `last_event_id`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token; unknown, expired or another user's ticket", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A `service` token: streams are for users", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this caller; retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable; retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/events")]
pub async fn stream(
    caller: StreamPlayer,
    state: web::Data<AppState>,
    hub: web::Data<EventHub<ImEvent>>,
    shutdown: web::Data<Shutdown>,
    req: HttpRequest,
) -> Result<impl Responder, ApiError> {
    Stream {
        caller,
        log: state.store.clone(),
        hub: &hub,
        shutdown: &shutdown,
        while_open: None,
    }
    .respond(&req)
    .await
}
