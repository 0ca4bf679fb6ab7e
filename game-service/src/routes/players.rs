//! `POST /v1/connect` and `GET /v1/me`: the player's arrival and current state.

use actix_web::{get, post, web};
use service_kit::{ApiError, auth::Player};
use shared_types::{
    game::{ConnectBody, PlayerState},
    problem::Problem,
};

use crate::game::Game;

/// Arrive in the game.
///
/// Returns what is open for the player (a prompt or a live session) when there
/// is one, never a second one. Otherwise: a join prompt when a lobby invited the
/// player; else the IM service is asked for available partners, giving an invite
/// prompt, or a solo session (`no_partner`, or `im_unavailable` with
/// `degraded: true` when the IM service is down or slower than `IM_TIMEOUT_MS`).
///
/// The optional body picks the session's mode (`{"mode": "duel"}`, one of `GAME_MODES`;
/// default: the first listed). It applies to what this call creates: connecting while a
/// prompt or session is open returns that one, whatever its mode. An unknown mode is a 400
/// `unknown_mode` that changes nothing.
#[utoipa::path(
    tag = "players",
    security(("bearer" = [])),
    request_body(content = ConnectBody, content_type = "application/json", description = "Optional: `{\"mode\": M}`; no body (or `{}`) is the default mode."),
    responses(
        (status = 200, description = "The player's state after arriving", body = PlayerState,
            links(
                ("accept_prompt" = (operation_id = "accept", parameters(("id" = "$response.body#/prompt/id")), description = "Accept the open prompt (when `prompt` is set)")),
                ("reject_prompt" = (operation_id = "reject", parameters(("id" = "$response.body#/prompt/id")), description = "Reject the open prompt (when `prompt` is set)")),
                ("get_session" = (operation_id = "get_session", parameters(("id" = "$response.body#/session/id")), description = "Read the live session (when `session` is set)")),
                ("leave_session" = (operation_id = "leave", parameters(("id" = "$response.body#/session/id")), description = "Leave the live session (when `session` is set)")),
            )
        ),
        (status = 400, description = "Malformed body, or a mode `GAME_MODES` does not list (`unknown_mode`)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "A body that is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A `service` token: these endpoints are for players", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this caller; retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable (`store_unavailable`) or players busy (`lock_contention`); retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/connect")]
pub async fn connect(
    player: Player,
    game: web::Data<Game>,
    req: actix_web::HttpRequest,
    body: web::Bytes,
) -> Result<web::Json<PlayerState>, ApiError> {
    let body: ConnectBody = service_kit::extract::optional_json(&req, &body)?;
    Ok(web::Json(
        game.connect(&player.0, body.mode.as_deref()).await?,
    ))
}

/// The player's current state: open prompt and live session.
///
/// Reading never creates anything (unlike `POST /v1/connect`); a prompt
/// whose `expires_at` has passed is expired first, so the answer is never
/// stale. `degraded` is true while the session is the solo fallback made
/// because the IM service was unavailable.
#[utoipa::path(
    tag = "players",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The player's state", body = PlayerState,
            links(
                ("accept_prompt" = (operation_id = "accept", parameters(("id" = "$response.body#/prompt/id")), description = "Accept the open prompt (when `prompt` is set)")),
                ("reject_prompt" = (operation_id = "reject", parameters(("id" = "$response.body#/prompt/id")), description = "Reject the open prompt (when `prompt` is set)")),
                ("get_session" = (operation_id = "get_session", parameters(("id" = "$response.body#/session/id")), description = "Read the live session (when `session` is set)")),
                ("leave_session" = (operation_id = "leave", parameters(("id" = "$response.body#/session/id")), description = "Leave the live session (when `session` is set)")),
            )
        ),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A `service` token: these endpoints are for players", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this caller; retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable; retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/me")]
pub async fn me(player: Player, game: web::Data<Game>) -> Result<web::Json<PlayerState>, ApiError> {
    Ok(web::Json(game.me(&player.0).await?))
}
