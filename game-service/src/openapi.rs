//! The OpenAPI document, generated from the route annotations.

use service_kit::ops::{BearerSecurity, HealthReport, StandardResponses};
use shared_types::{
    game::{
        AcceptBody, EndBody, EndedReason, GameEvent, JoinTokenError, Outcome, PlayerState, Prompt,
        PromptCancelled, PromptKind, Reason, Session, SessionKind, SessionState, Verification,
        VerifyBody,
    },
    problem::{Problem, ProblemCode},
};
use utoipa::OpenApi;

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "game-service",
        description = "Launch a game session straight from a chat: connect, answer invite and join prompts, follow the session, stream events (browsers open the stream with a ticket from `POST /v1/events/tickets`). Browsers: with `CORS_ALLOWED_ORIGINS` set, the listed origins (exact, never a wildcard) may call every path; preflights are answered for every path; a page may send `authorization`, `content-type`, `last-event-id` and `x-request-id` and read `x-request-id` and `retry-after`; no credentials (bearer tokens, not cookies). Another origin gets no CORS headers.",
        version = "1.0.0"
    ),
    paths(
        routes::players::connect,
        routes::players::me,
        routes::prompts::accept,
        routes::prompts::reject,
        routes::sessions::get_session,
        routes::sessions::leave,
        routes::sessions::end,
        routes::sessions::heartbeat,
        routes::join_tokens::jwks,
        routes::join_tokens::verify,
        routes::events::stream,
        service_kit::tickets::issue_ticket,
        service_kit::ops::healthz,
        service_kit::ops::readyz,
    ),
    components(schemas(
        PlayerState, Prompt, PromptKind, Session, SessionKind, SessionState, Reason,
        EndedReason, Outcome, EndBody, VerifyBody, Verification, JoinTokenError,
        AcceptBody, PromptCancelled, GameEvent, Problem, ProblemCode, HealthReport,
        routes::events::EventFrame, routes::events::EventName,
        shared_types::tickets::EventTicket
    )),
    modifiers(&BearerSecurity, &StandardResponses),
    tags(
        (name = "players", description = "Arriving and the player's state"),
        (name = "prompts", description = "Answering invite and join prompts"),
        (name = "sessions", description = "Game sessions"),
        (name = "events", description = "Server-sent events"),
        (name = "game servers", description = "For the game server hosting a session (scope `service`): join tokens, ending and heartbeats"),
        (name = "operations", description = "Health and readiness"),
    )
)]
struct ApiDoc;

/// The document served at `/openapi.json` and checked in as `openapi/game-service.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
