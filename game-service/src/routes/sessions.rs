//! Sessions: players read and leave them (`GET /v1/sessions/{id}`, `POST
//! …/leave`); game servers end them and say they are alive (`…/end`, `…/heartbeat`).

use actix_web::{get, post, web};
use service_kit::{
    ApiError,
    auth::{Player, Service},
};
use shared_types::{
    game::{EndBody, PlayerState, Session},
    problem::Problem,
};
use uuid::Uuid;

use crate::game::Game;

/// A session, for its host, players and invitees; 404 for anyone else.
///
/// Each caller sees their own `join_token` (empty for invitees who have not
/// joined). Ended sessions stay readable for an hour. Ids of sessions the
/// caller has nothing to do with answer 404, exactly like unknown ids.
#[utoipa::path(
    tag = "sessions",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session's id", example = "0b9b5ce1-55a3-4b8c-a1f5-6d1c3b2a9e10")),
    responses(
        (status = 200, description = "The session, with the caller's own join token", body = Session),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A `service` token: these endpoints are for players", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this caller; retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such session visible to the caller", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable; retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/sessions/{id}")]
pub async fn get_session(
    player: Player,
    game: web::Data<Game>,
    id: web::Path<Uuid>,
) -> Result<web::Json<Session>, ApiError> {
    game.visible_session(&player.0, id.into_inner())
        .await?
        .map(web::Json)
        .ok_or_else(|| ApiError::not_found("no such session"))
}

/// Leave a session. A session nobody is in ends, and its pending invitations are withdrawn.
///
/// The other players stay (the session stays `active` while anyone is in
/// it). Leaving a session one already left is harmless: it returns the
/// current state. Invitees whose join prompt is withdrawn get a
/// `prompt_cancelled` event with reason `withdrawn` and may connect again.
#[utoipa::path(
    tag = "sessions",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session's id", example = "0b9b5ce1-55a3-4b8c-a1f5-6d1c3b2a9e10")),
    responses(
        (status = 200, description = "The player's state after leaving", body = PlayerState,
            links(("connect_again" = (operation_id = "connect", description = "Arrive again: a new prompt or session")))
        ),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A `service` token: these endpoints are for players", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this caller; retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such session visible to the caller", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable (`store_unavailable`) or players busy (`lock_contention`); retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/sessions/{id}/leave")]
pub async fn leave(
    player: Player,
    game: web::Data<Game>,
    id: web::Path<Uuid>,
) -> Result<web::Json<PlayerState>, ApiError> {
    Ok(web::Json(game.leave(&player.0, id.into_inner()).await?))
}

/// End a session (game servers).
///
/// The session becomes `ended` with `ended_reason` set to the outcome; every
/// player is free again (they may connect for a new session) and gets a
/// `session` event; pending invitations are withdrawn (`withdrawn`). Ending
/// an ended session is harmless and changes nothing: the answer is the
/// session as it ended the first time. The answer carries no join token.
#[utoipa::path(
    tag = "game servers",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session's id", example = "0b9b5ce1-55a3-4b8c-a1f5-6d1c3b2a9e10")),
    request_body(content = EndBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The ended session", body = Session),
        (status = 400, description = "Malformed body or unknown `outcome`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "A body that is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A `player` token: this endpoint is for game servers", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such session", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable (`store_unavailable`) or players busy (`lock_contention`); retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/sessions/{id}/end")]
pub async fn end(
    _server: Service,
    game: web::Data<Game>,
    id: web::Path<Uuid>,
    body: web::Json<EndBody>,
) -> Result<web::Json<Session>, ApiError> {
    game.end(id.into_inner(), body.outcome.into())
        .await?
        .map(web::Json)
        .ok_or_else(|| ApiError::not_found("no such session"))
}

/// Say the match is alive (game servers).
///
/// A session that shows no life for `SESSION_IDLE_SECS` ends by itself as
/// `abandoned`; a heartbeat is life, as is any request or open event stream
/// of one of its players. The answer is the session as it stands (an ended
/// one stays ended), without a join token.
#[utoipa::path(
    tag = "game servers",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session's id", example = "0b9b5ce1-55a3-4b8c-a1f5-6d1c3b2a9e10")),
    responses(
        (status = 200, description = "The session as it stands", body = Session),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A `player` token: this endpoint is for game servers", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such session", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable (`store_unavailable`) or players busy (`lock_contention`); retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/sessions/{id}/heartbeat")]
pub async fn heartbeat(
    _server: Service,
    game: web::Data<Game>,
    id: web::Path<Uuid>,
) -> Result<web::Json<Session>, ApiError> {
    game.heartbeat(id.into_inner())
        .await?
        .map(web::Json)
        .ok_or_else(|| ApiError::not_found("no such session"))
}
