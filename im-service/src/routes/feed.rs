//! `GET /v1/presence/changes`: the presence feed the game service follows (`service` scope only).

use actix_web::{HttpRequest, get, web};
use serde::Deserialize;
use service_kit::{ApiError, auth::Service};
use shared_types::{activity::PresenceChanges, problem::Problem};
use utoipa::IntoParams;

use super::{AppState, activity::PlayerToken};
use crate::{
    domain::feed::{Cursor, DEFAULT_LIMIT, InvalidCursor, MAX_LIMIT},
    store::StoreError,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(presence_changes);
}

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("invalid query string: {0}")]
    InvalidQuery(String),
    #[error(transparent)]
    Cursor(#[from] InvalidCursor),
    #[error("`limit` is 1-{MAX_LIMIT}, got {0}")]
    Limit(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<FeedError> for ApiError {
    fn from(err: FeedError) -> Self {
        match err {
            FeedError::Store(err) => err.into(),
            other => ApiError::invalid(other.to_string()),
        }
    }
}

/// Where to read from, and how much.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// The `next` of the previous answer (opaque); absent: from the oldest change kept. A
    /// cursor this service did not return (or returned before `IM_FEED_SHARDS` changed) is a
    /// 400.
    #[param(
        example = "1795424400000-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0",
        pattern = r"^[0-9]{1,20}-[0-9]{1,20}(,[0-9]{1,20}-[0-9]{1,20}){0,63}$"
    )]
    pub after: Option<String>,
    /// At most this many changes (1-1000, default 256).
    #[param(minimum = 1, maximum = 1000, example = 256)]
    pub limit: Option<usize>,
}

/// Presence changes, for the game service.
///
/// Every change of a user's presence status, in a durable feed: each with the
/// user's `seq` (increasing with each change of that user, also after their
/// presence record expired) and when it happened. Read on with `after` = the
/// `next` of the previous answer; `next` equals `after` when nothing is new.
/// Each user's changes come in their order, once each; a reader that may
/// read a page again (it crashed before saving `next`) applies a change only
/// if its `seq` is above the last it applied for that user. The feed keeps
/// about `IM_FEED_KEPT` changes per shard (`IM_FEED_SHARDS`), for at least a
/// day after the newest: a reader away longer, or past that many changes,
/// misses the oldest. `service` tokens only.
#[utoipa::path(
    tag = "presence",
    params(ChangesQuery),
    responses(
        (status = 200, description = "The changes after `after` (at most `limit`) and the cursor to read on from", body = PresenceChanges),
        (status = 400, description = "A malformed cursor, one of another shard count, a `limit` out of 1-1000 or an unknown query parameter",
            body = Problem, content_type = "application/problem+json"),
        PlayerToken,
    )
)]
#[get("/v1/presence/changes")]
pub async fn presence_changes(
    _service: Service,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<web::Json<PresenceChanges>, ApiError> {
    let query = web::Query::<ChangesQuery>::from_query(req.query_string())
        .map_err(|err| FeedError::InvalidQuery(err.to_string()))?
        .into_inner();
    Ok(web::Json(read(&state, query).await?))
}

async fn read(state: &AppState, query: ChangesQuery) -> Result<PresenceChanges, FeedError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(FeedError::Limit(limit));
    }
    let shards = state.store.feed_shards();
    let after = match query.after.as_deref() {
        Some(raw) => Cursor::parse(raw, shards)?,
        None => Cursor::start(shards),
    };
    let (changes, next) = state.store.presence_changes(&after, limit).await?;
    Ok(PresenceChanges {
        changes,
        next: next.to_string(),
    })
}
