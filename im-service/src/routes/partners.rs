//! `GET /v1/users/{user_id}/partners`: who is this user talking to right now?

use actix_web::{HttpRequest, get, web};
use serde::Deserialize;
use service_kit::{ApiError, auth::Authenticated};
use shared_types::{UserId, im::PartnersResponse, problem::Problem};
use utoipa::IntoParams;

use super::AppState;
use crate::{
    domain::{ActiveWindow, PartnersRequest, StatusFilter, partners::InvalidPartnersQuery},
    store::StoreError,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get_partners);
}

#[derive(Debug, thiserror::Error)]
pub enum PartnersError {
    #[error("only the user themselves or a service may ask who a user is talking to")]
    Forbidden,
    #[error("invalid query string: {0}")]
    InvalidQuery(String),
    #[error(transparent)]
    Invalid(#[from] InvalidPartnersQuery),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<PartnersError> for ApiError {
    fn from(err: PartnersError) -> Self {
        match err {
            PartnersError::Forbidden => ApiError::forbidden(err.to_string()),
            PartnersError::InvalidQuery(_) | PartnersError::Invalid(_) => {
                ApiError::invalid(err.to_string())
            }
            PartnersError::Store(err) => err.into(),
        }
    }
}

/// Which partners count, and how many.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PartnersQuery {
    /// Comma-separated presence statuses a partner may have (`available`, `busy`, `away`,
    /// `offline`); default `available`. An unknown status is a 400.
    #[param(
        example = "available,busy",
        pattern = "^(available|busy|away|offline)(,(available|busy|away|offline))*$"
    )]
    pub status: Option<String>,
    /// Only conversations whose newest message is at most this many seconds old count (opening
    /// a conversation is not activity); default `IM_ACTIVE_WINDOW_SECS` (1800), at most 31536000.
    #[param(minimum = 0, maximum = 31_536_000, example = 1800)]
    pub active_within_secs: Option<u64>,
    /// At most this many partners, the newest first: default `IM_PARTNERS_DEFAULT_LIMIT` (16),
    /// at most `IM_PARTNERS_MAX_LIMIT` (100); more is a 400.
    #[param(minimum = 1, maximum = 100, example = 16)]
    pub limit: Option<usize>,
}

/// Who this user is talking to right now.
///
/// The people the user talks with in their open conversations (talking takes
/// two: both have posted in it) whose newest message is within the window,
/// whose presence passes the `status` filter and with whom no block stands
/// either way, each once with their most recent such conversation, newest
/// activity first, at most `limit` of them. A user who is offline (or never
/// set a presence) talks to nobody: the list is empty. For the user
/// themselves or a `service` token; 403 otherwise.
#[utoipa::path(
    tag = "partners",
    params(("user_id" = UserId, Path, description = "Whose partners", example = "alice"), PartnersQuery),
    responses(
        (status = 200, description = "The user's presence and partners", body = PartnersResponse),
        (status = 400, description = "Unknown status, bad number, `limit` out of range or unknown query parameter",
            body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A player token asking about someone else",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Invalid user id",
            body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/users/{user_id}/partners")]
pub async fn get_partners(
    Authenticated(caller): Authenticated,
    state: web::Data<AppState>,
    path: web::Path<UserId>,
    req: HttpRequest,
) -> Result<web::Json<PartnersResponse>, ApiError> {
    let user = path.into_inner();
    if caller.user_id != user && !caller.is_service() {
        return Err(PartnersError::Forbidden.into());
    }
    // Parsed after the access check, so a stranger learns nothing from query errors.
    let query = web::Query::<PartnersQuery>::from_query(req.query_string())
        .map_err(|err| PartnersError::InvalidQuery(err.to_string()))?
        .into_inner();
    Ok(web::Json(partners_of(&state, user, query).await?))
}

async fn partners_of(
    state: &AppState,
    user: UserId,
    query: PartnersQuery,
) -> Result<PartnersResponse, PartnersError> {
    let filter = match query.status.as_deref() {
        Some(raw) => StatusFilter::parse(raw)?,
        None => StatusFilter::default(),
    };
    let window = match query.active_within_secs {
        Some(secs) => ActiveWindow::from_secs(secs)?,
        None => state.default_window,
    };
    let max = state.limits.partners_max_limit;
    let limit = query.limit.unwrap_or(state.limits.partners_default_limit);
    if !(1..=max).contains(&limit) {
        return Err(InvalidPartnersQuery::LimitOutOfRange { got: limit, max }.into());
    }
    let request = PartnersRequest {
        user,
        since: window.since(state.clock.now()),
        filter,
        limit,
    };
    Ok(state.store.partners(&request).await?)
}
