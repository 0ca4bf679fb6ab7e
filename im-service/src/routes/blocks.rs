//! `PUT`/`DELETE /v1/blocks/{user_id}` and `GET /v1/blocks`: a player's blocks. Player tokens
//! only (a `service` token is a 403, like the game's player endpoints).
//!
//! A block is never revealed to the blocked user: nothing they can call answers differently
//! from the way it would for a stranger who never answers them.

use actix_web::{HttpResponse, delete, get, put, web};
use service_kit::{ApiError, auth::Player};
use shared_types::{UserId, im::BlockList, problem::Problem, problem::ProblemCode};
use utoipa::IntoResponses;

use super::AppState;
use crate::store::{BlockOutcome, StoreError};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(put_block)
        .service(delete_block)
        .service(list_blocks);
}

#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("you cannot block yourself")]
    Yourself,
    #[error("you already block as many users as you may: unblock one first")]
    Limit,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<BlockError> for ApiError {
    fn from(err: BlockError) -> Self {
        match err {
            BlockError::Yourself => ApiError::invalid(err.to_string()),
            BlockError::Limit => ApiError::new(ProblemCode::BlockLimit, err.to_string()),
            BlockError::Store(err) => err.into(),
        }
    }
}

/// The 403 every block endpoint gives a `service` token (documentation only).
#[derive(IntoResponses)]
#[response(
    status = 403,
    description = "A `service` token: blocks are for players",
    content_type = "application/problem+json"
)]
pub struct ServiceToken(pub Problem);

/// The 404 of the endpoints that name a user, for an invalid id (documentation only).
#[derive(IntoResponses)]
#[response(
    status = 404,
    description = "Invalid user id",
    content_type = "application/problem+json"
)]
pub struct InvalidUserId(pub Problem);

/// Block a user.
///
/// From now on the blocked user is never the caller's partner nor the caller
/// theirs, and neither sees the other's presence (404, as for a stranger).
/// A conversation the blocked user opens with the caller is created as usual
/// for them, but the caller never sees it (not listed, its messages and
/// itself a 404 to the caller, even after unblocking) and it never counts for
/// either side. Conversations that already existed stay as they were, but no
/// longer make the two talk. Idempotent: blocking again changes nothing (the
/// block keeps its first time). Past `IM_MAX_BLOCKS` (default 1000) blocked
/// users, a 409 `block_limit`. The block is never revealed to the blocked
/// user.
#[utoipa::path(
    tag = "blocks",
    params(("user_id" = UserId, Path, description = "Whom to block", example = "mallory")),
    responses(
        (status = 204, description = "The user is blocked (now, or already was)"),
        (status = 400, description = "The caller's own id: nobody can block themselves",
            body = Problem, content_type = "application/problem+json"),
        ServiceToken,
        InvalidUserId,
        (status = 409, description = "The caller already blocks as many users as allowed \
(`block_limit`); nothing changed", body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/v1/blocks/{user_id}")]
pub async fn put_block(
    Player(caller): Player,
    state: web::Data<AppState>,
    path: web::Path<UserId>,
) -> Result<HttpResponse, ApiError> {
    let blocked = path.into_inner();
    if blocked == caller {
        return Err(BlockError::Yourself.into());
    }
    match state
        .store
        .block(&caller, &blocked, state.clock.now())
        .await
        .map_err(BlockError::from)?
    {
        BlockOutcome::Blocked | BlockOutcome::AlreadyBlocked => {
            Ok(HttpResponse::NoContent().finish())
        }
        BlockOutcome::Limit => Err(BlockError::Limit.into()),
    }
}

/// Unblock a user.
///
/// Idempotent: unblocking someone who is not blocked (the caller included)
/// changes nothing. Conversations hidden from the caller by the block stay
/// hidden.
#[utoipa::path(
    tag = "blocks",
    params(("user_id" = UserId, Path, description = "Whom to unblock", example = "mallory")),
    responses(
        (status = 204, description = "The user is not blocked (any more, or never was)"),
        ServiceToken,
        InvalidUserId,
    )
)]
#[delete("/v1/blocks/{user_id}")]
pub async fn delete_block(
    Player(caller): Player,
    state: web::Data<AppState>,
    path: web::Path<UserId>,
) -> Result<HttpResponse, ApiError> {
    let blocked = path.into_inner();
    if blocked != caller {
        state
            .store
            .unblock(&caller, &blocked)
            .await
            .map_err(BlockError::from)?;
    }
    Ok(HttpResponse::NoContent().finish())
}

/// The users the caller blocks.
///
/// Newest block first (ties by user id); at most `IM_MAX_BLOCKS` entries.
#[utoipa::path(
    tag = "blocks",
    responses(
        (status = 200, description = "The caller's blocks", body = BlockList),
        ServiceToken,
    )
)]
#[get("/v1/blocks")]
pub async fn list_blocks(
    Player(caller): Player,
    state: web::Data<AppState>,
) -> Result<web::Json<BlockList>, ApiError> {
    let blocks = state
        .store
        .blocks(&caller)
        .await
        .map_err(BlockError::from)?;
    Ok(web::Json(BlockList { blocks }))
}
