//! `PUT /v1/presence` and `GET /v1/users/{user_id}/presence`.

use actix_web::{get, put, web};
use service_kit::{ApiError, auth::Authenticated};
use shared_types::{
    UserId,
    auth::Caller,
    presence::{Presence, PresenceUpdate},
    problem::Problem,
};

use super::AppState;
use crate::store::StoreError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(set_presence).service(get_presence);
}

#[derive(Debug, thiserror::Error)]
pub enum PresenceError {
    /// Deliberately the same answer for "no such user" and "not yours to see".
    #[error("no visible presence for this user")]
    NotVisible,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<PresenceError> for ApiError {
    fn from(err: PresenceError) -> Self {
        match err {
            PresenceError::NotVisible => ApiError::not_found(err.to_string()),
            PresenceError::Store(err) => err.into(),
        }
    }
}

/// Set the caller's own presence.
///
/// `available`, `busy`, `away` or `offline`; only `available` partners count
/// for the game by default. No record reads as `offline`. A change reaches
/// the caller's contacts (a `presence` event) and the presence feed the game
/// service reads (`GET /v1/presence/changes`); should a request fail or go
/// unanswered after the change was recorded, sending it again completes the
/// feed's part (the change is appended once). The answer carries the
/// caller's game `activity` too.
#[utoipa::path(
    tag = "presence",
    request_body = PresenceUpdate,
    responses(
        (status = 200, description = "The caller's presence as now recorded, their game activity included", body = Presence),
        (status = 400, description = "Malformed JSON, unknown field or unknown status",
            body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/v1/presence")]
pub async fn set_presence(
    Authenticated(caller): Authenticated,
    state: web::Data<AppState>,
    body: web::Json<PresenceUpdate>,
) -> Result<web::Json<Presence>, ApiError> {
    let status = body.into_inner().status;
    let presence = state
        .store
        .set_presence(&caller.user_id, status)
        .await
        .map_err(PresenceError::from)?;
    Ok(web::Json(presence))
}

/// A user's presence.
///
/// Visible to the user, to `service` tokens, and to anyone they have talked
/// with: both posted in a conversation (open or closed), and no block stands
/// between them either way. 404 for anyone else, as for unknown users: opening
/// a conversation with someone reveals nothing until they answer. No record
/// means `offline`. `activity` is `in_game` while the user plays in an
/// `active` game session (as the game service reports it), `null` otherwise.
#[utoipa::path(
    tag = "presence",
    params(("user_id" = UserId, Path, description = "Whose presence", example = "bob")),
    responses(
        (status = 200, description = "The user's presence (`offline` when never set) and game activity", body = Presence),
        (status = 404, description = "Invalid user id, or a user the caller has not talked with, or a \
block between them (the answer never reveals whether the user exists, nor a block)",
            body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/users/{user_id}/presence")]
pub async fn get_presence(
    Authenticated(caller): Authenticated,
    state: web::Data<AppState>,
    path: web::Path<UserId>,
) -> Result<web::Json<Presence>, ApiError> {
    let user = path.into_inner();
    Ok(web::Json(visible_presence(&state, &caller, user).await?))
}

async fn visible_presence(
    state: &AppState,
    caller: &Caller,
    user: UserId,
) -> Result<Presence, PresenceError> {
    if caller.user_id == user || caller.is_service() {
        return Ok(state.store.presence(&user).await?);
    }
    state
        .store
        .presence_seen_by(&caller.user_id, &user)
        .await?
        .ok_or(PresenceError::NotVisible)
}
