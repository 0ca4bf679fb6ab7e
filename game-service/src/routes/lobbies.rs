//! `POST /v1/lobbies`: a lobby launched from a chat (the IM service, `service` scope).

use actix_web::{HttpResponse, post, web};
use service_kit::{ApiError, auth::Service};
use shared_types::{
    game::{NewLobby, PlayerState},
    problem::Problem,
};

use crate::game::Game;

/// Open a lobby for a chat (the IM service).
///
/// The IM service calls this when a participant launches a game from a conversation
/// (`POST /v1/conversations/{id}/games` there), naming the host (that participant), the
/// participants it found eligible (the host's partners) and the conversation. The game
/// service opens a `waiting` multiplayer lobby of `mode` hosted by `host`, invites
/// `invitees` exactly as an accepted invite prompt does (an invitee whose invite prompt
/// names the host has it replaced by a join prompt; an invitee with nothing open gets a
/// join prompt at once; one busy with another prompt or session keeps the invitation until
/// it connects or the invitation expires) and announces the lobby in the conversation.
/// The answer is the host's state. A host who already has an open prompt or a live
/// session gets a 409 `already_playing` and nothing changes.
#[utoipa::path(
    tag = "chat",
    security(("bearer" = [])),
    request_body(content = NewLobby, content_type = "application/json"),
    responses(
        (status = 201, description = "The host's state: `session` is the waiting lobby", body = PlayerState),
        (status = 400, description = "Malformed body, no invitee other than the host (`invalid_request`), or a mode `GAME_MODES` does not list (`unknown_mode`)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "A body that is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A `player` token: this endpoint is for the IM service", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The host already has an open prompt or a live session (`already_playing`); nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable (`store_unavailable`) or players busy (`lock_contention`); retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/lobbies")]
pub async fn open_lobby(
    _im: Service,
    game: web::Data<Game>,
    body: web::Json<NewLobby>,
) -> Result<HttpResponse, ApiError> {
    let NewLobby {
        host,
        invitees,
        mode,
        conversation_id,
    } = body.into_inner();
    if invitees.len() > crate::domain::engine::MAX_CANDIDATES {
        return Err(ApiError::invalid(format!(
            "at most {} invitees",
            crate::domain::engine::MAX_CANDIDATES
        )));
    }
    let state: PlayerState = game
        .launch(&host, &invitees, mode.as_deref(), conversation_id)
        .await?;
    Ok(HttpResponse::Created().json(state))
}
