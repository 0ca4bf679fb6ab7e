//! `POST /v1/prompts/{id}/accept|reject`: the player's answer to a prompt.

use actix_web::{post, web};
use service_kit::{ApiError, auth::Authenticated};
use shared_types::{
    game::{AcceptBody, PlayerState},
    problem::Problem,
};
use uuid::Uuid;

use crate::game::Game;

/// Accept a prompt.
///
/// Invite prompt: creates a multiplayer lobby (`waiting`) for the candidates in
/// `with` (default: all) and invites them. Join prompt: joins the host's
/// session, which becomes `active`; send no body. An answer to an invite prompt
/// that was replaced by a join prompt (`superseded`) is applied to that join
/// prompt. Answering the same way twice is harmless; the contrary answer is a
/// 409 `already_answered`.
#[utoipa::path(
    tag = "prompts",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The prompt's id")),
    request_body(content = Option<AcceptBody>, content_type = "application/json", description = "Optional; invite prompts only"),
    responses(
        (status = 200, description = "The player's state after accepting", body = PlayerState),
        (status = 400, description = "Malformed body, or `with` names a non-candidate", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The player has no such prompt", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already rejected (`already_answered`) or no longer open (`prompt_closed`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable or players busy; retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/prompts/{id}/accept")]
pub async fn accept(
    caller: Authenticated,
    game: web::Data<Game>,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<web::Json<PlayerState>, ApiError> {
    let body = parse_optional_body(&body)?;
    let state = game
        .accept(&caller.0.user_id, id.into_inner(), body.with)
        .await?;
    Ok(web::Json(state))
}

/// Reject a prompt: the player gets a solo session (`rejected`).
///
/// A rejected join prompt removes the player from the lobby; a lobby left with
/// nobody pending turns into the host's solo session (`declined`).
#[utoipa::path(
    tag = "prompts",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The prompt's id")),
    responses(
        (status = 200, description = "The player's state after rejecting", body = PlayerState),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The player has no such prompt", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already accepted (`already_answered`) or no longer open (`prompt_closed`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable or players busy; retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/prompts/{id}/reject")]
pub async fn reject(
    caller: Authenticated,
    game: web::Data<Game>,
    id: web::Path<Uuid>,
) -> Result<web::Json<PlayerState>, ApiError> {
    Ok(web::Json(
        game.reject(&caller.0.user_id, id.into_inner()).await?,
    ))
}

/// The accept body is optional: an empty body means "all candidates".
fn parse_optional_body(raw: &[u8]) -> Result<AcceptBody, ApiError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(AcceptBody::default());
    }
    serde_json::from_slice(raw)
        .map_err(|err| ApiError::invalid(format!("invalid JSON body: {err}")))
}
