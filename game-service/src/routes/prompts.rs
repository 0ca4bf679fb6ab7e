//! `POST /v1/prompts/{id}/accept|reject`: the player's answer to a prompt.

use actix_web::{post, web};
use service_kit::{ApiError, auth::Player};
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
    params(("id" = Uuid, Path, description = "The prompt's id", example = "5e1f4c3a-7b2d-4e8f-9a6b-1c2d3e4f5a6b")),
    // Optional body: `crate::openapi` marks it `required: false` (utoipa renders
    // `Option<AcceptBody>` as `oneOf [AcceptBody, null]`, which generated
    // clients send as a value the caller must pass).
    request_body(content = AcceptBody, content_type = "application/json", description = "Optional. Invite prompt: `{\"with\": [ids]}` invites that subset of the candidates; no body (or `{}`) invites all of them. Join prompt: send no body."),
    responses(
        (status = 200, description = "The player's state after accepting", body = PlayerState,
            links(
                ("get_session" = (operation_id = "get_session", parameters(("id" = "$response.body#/session/id")), description = "Read the session the answer led to")),
                ("leave_session" = (operation_id = "leave", parameters(("id" = "$response.body#/session/id")), description = "Leave the session the answer led to")),
            )
        ),
        (status = 400, description = "Malformed body, or `with` names a non-candidate", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "A body that is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A `service` token: these endpoints are for players", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this caller; retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The player has no such prompt", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already rejected (`already_answered`) or no longer open (`prompt_closed`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable (`store_unavailable`) or players busy (`lock_contention`); retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/prompts/{id}/accept")]
pub async fn accept(
    player: Player,
    game: web::Data<Game>,
    id: web::Path<Uuid>,
    req: actix_web::HttpRequest,
    body: web::Bytes,
) -> Result<web::Json<PlayerState>, ApiError> {
    let body: AcceptBody = service_kit::extract::optional_json(&req, &body)?;
    let state = game.accept(&player.0, id.into_inner(), body.with).await?;
    Ok(web::Json(state))
}

/// Reject a prompt: the player gets a solo session (`rejected`).
///
/// A rejected join prompt removes the player from the lobby; a lobby left with
/// nobody pending turns into the host's solo session (`declined`).
#[utoipa::path(
    tag = "prompts",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The prompt's id", example = "5e1f4c3a-7b2d-4e8f-9a6b-1c2d3e4f5a6b")),
    responses(
        (status = 200, description = "The player's state after rejecting", body = PlayerState,
            links(
                ("get_session" = (operation_id = "get_session", parameters(("id" = "$response.body#/session/id")), description = "Read the session the answer led to")),
                ("leave_session" = (operation_id = "leave", parameters(("id" = "$response.body#/session/id")), description = "Leave the session the answer led to")),
            )
        ),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A `service` token: these endpoints are for players", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this caller; retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The player has no such prompt", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already accepted (`already_answered`) or no longer open (`prompt_closed`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable (`store_unavailable`) or players busy (`lock_contention`); retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/prompts/{id}/reject")]
pub async fn reject(
    player: Player,
    game: web::Data<Game>,
    id: web::Path<Uuid>,
) -> Result<web::Json<PlayerState>, ApiError> {
    Ok(web::Json(game.reject(&player.0, id.into_inner()).await?))
}
