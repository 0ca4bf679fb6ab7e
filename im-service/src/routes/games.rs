//! `POST /v1/conversations/{id}/games`: launch a multiplayer game from a conversation, inviting those in it the caller is talking to.

use actix_web::{HttpRequest, HttpResponse, post, web};
use service_kit::{ApiError, auth::Player};
use shared_types::{
    UserId,
    game::{NewLobby, PlayerState},
    im::{LaunchGame, MAX_MODE_CHARS},
    problem::{Problem, ProblemCode},
};
use uuid::Uuid;

use super::{
    AppState,
    conversations::{ConversationError, participating},
};
use crate::{
    domain::{ConversationRecord, PartnersRequest, StatusFilter},
    metrics::{self, LaunchOutcome},
    store::StoreError,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(launch_game);
}

/// Launch a game from a conversation.
///
/// Opens a waiting multiplayer lobby in the game service, hosted by the
/// caller, with invitations for the conversation's other participants the
/// caller is talking to right now, by the partners rule with its defaults:
/// they talk in an open conversation (this one or another) in which both
/// have posted and whose newest message is within `IM_ACTIVE_WINDOW_SECS`,
/// the participant's presence is `available`, no block stands either way,
/// and the caller is not offline. Participants who
/// never posted (one-sided), who block the caller or whom the caller blocks,
/// who are offline, busy or away, or from whom the conversation is hidden
/// are skipped; the others are invited in the conversation's order. The game
/// service announces the lobby in the conversation (a `kind: game` message).
///
/// Player tokens only. The caller must take part in the conversation (404
/// otherwise, as for an unknown id) and it must be open (409
/// `conversation_closed`). With nobody to invite, a 409 `nobody_to_invite`
/// and the game service is not called. The body is optional: no body, or
/// `{}`, asks for the game service's default mode.
///
/// Not idempotent: a second launch while the first lobby waits is the game
/// service's 409 `already_playing`. After a 503 `game_unavailable` from a
/// timeout the lobby may have been opened all the same: the caller's game
/// state (`GET /v1/me` on the game service) tells.
#[utoipa::path(
    tag = "games",
    params(("id" = Uuid, Path, description = "Conversation id", example = "c7d2a1e4-3f5b-4a6c-8d9e-0f1a2b3c4d5e")),
    // Optional body (read with `service_kit::extract::optional_json`): `super::OptionalBodies`
    // marks it `required: false`.
    request_body(content = LaunchGame, content_type = "application/json",
        description = "Optional. `{\"mode\": \"…\"}` picks one of the game service's modes; no body (or `{}`) its default mode."),
    responses(
        (status = 201, description = "The lobby is open: the host's game state (the game service's `PlayerState`, passed on)", body = PlayerState),
        (status = 400, description = "Malformed body, unknown field, `null` or a non-object body, or `mode` not 1-32 characters \
(`invalid_request`); a mode the game service does not have (`unknown_mode`); or the game service refused the launch otherwise \
(`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, expired or invalid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A `service` token: launching is for players", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such conversation, or the caller does not take part", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The conversation is closed (`conversation_closed`); nobody in it can be invited (`nobody_to_invite`; \
the game service was not called); or the caller already has an open prompt or a live session in the game (`already_playing`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "A body that is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this caller; retry after `Retry-After`", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
        (status = 503, description = "The game service is down, slower than `GAME_TIMEOUT_MS` or misconfigured (`game_unavailable`), \
or the store is unreachable (`store_unavailable`); retry after `Retry-After`", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
#[post("/v1/conversations/{id}/games")]
pub async fn launch_game(
    Player(caller): Player,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let LaunchGame { mode } = service_kit::extract::optional_json(&req, &body)?;
    if let Some(mode) = &mode
        && !(1..=MAX_MODE_CHARS).contains(&mode.chars().count())
    {
        return Err(ApiError::invalid(format!(
            "`mode` is 1-{MAX_MODE_CHARS} characters"
        )));
    }
    let conversation = participating(&state, &caller, path.into_inner()).await?;
    if conversation.conversation.closed {
        return Err(ConversationError::Closed.into());
    }
    let invitees = eligible_invitees(&state, &conversation, &caller)
        .await
        .map_err(ConversationError::from)?;
    if invitees.is_empty() {
        metrics::game_launch(LaunchOutcome::NobodyToInvite);
        return Err(ApiError::new(
            ProblemCode::NobodyToInvite,
            "nobody else in this conversation can be invited: an invitee is available, has \
             talked with you (both posted) recently, and no block stands between you; you are \
             not offline",
        ));
    }
    let lobby = NewLobby {
        host: caller,
        invitees,
        mode,
        conversation_id: conversation.conversation.id,
    };
    match state.lobbies.open_lobby(&lobby).await {
        Ok(host) => {
            metrics::game_launch(LaunchOutcome::Created);
            Ok(HttpResponse::Created().json(host))
        }
        Err(err) => {
            metrics::game_launch(err.outcome());
            Err(err.into())
        }
    }
}

/// The conversation's other participants who see it and are the caller's partners (the
/// default partners rule: `available`, within the default window, no block either way), in
/// the conversation's order.
async fn eligible_invitees(
    state: &AppState,
    conversation: &ConversationRecord,
    caller: &UserId,
) -> Result<Vec<UserId>, StoreError> {
    let others: Vec<UserId> = conversation
        .conversation
        .participants
        .iter()
        .filter(|p| *p != caller && conversation.visible_to(p))
        .cloned()
        .collect();
    if others.is_empty() {
        return Ok(Vec::new());
    }
    let request = PartnersRequest {
        user: caller.clone(),
        since: state.default_window.since(state.clock.now()),
        filter: StatusFilter::default(),
        limit: others.len(),
    };
    let found = state.store.partners_among(&request, Some(&others)).await?;
    Ok(others
        .into_iter()
        .filter(|p| found.partners.iter().any(|partner| partner.user_id == *p))
        .collect())
}
