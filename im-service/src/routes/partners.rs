//! `GET /v1/users/{user_id}/partners`: who is this user talking to right now?

use actix_web::{HttpRequest, get, web};
use serde::Deserialize;
use service_kit::{ApiError, auth::Authenticated};
use shared_types::{
    UserId,
    im::{Partner, PartnersResponse},
    presence::PresenceStatus,
    problem::Problem,
};
use utoipa::IntoParams;

use super::AppState;
use crate::{
    domain::{ActiveWindow, StatusFilter, latest_per_partner, partners::InvalidPartnersQuery},
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

/// Which partners count.
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
    /// Only conversations whose last activity (creation or message) is at most this many seconds
    /// old count; default `IM_ACTIVE_WINDOW_SECS` (1800), at most 31536000.
    #[param(minimum = 0, maximum = 31_536_000, example = 1800)]
    pub active_within_secs: Option<u64>,
}

/// Who this user is talking to right now.
///
/// The other participants of the user's open conversations active within the
/// window, whose presence passes the `status` filter, each once with their
/// most recent conversation, newest activity first. A user who is offline (or
/// never set a presence) talks to nobody: the list is empty. For the user
/// themselves or a `service` token; 403 otherwise.
#[utoipa::path(
    tag = "partners",
    params(("user_id" = UserId, Path, description = "Whose partners", example = "alice"), PartnersQuery),
    responses(
        (status = 200, description = "The user's presence and partners", body = PartnersResponse),
        (status = 400, description = "Unknown status, bad number or unknown query parameter",
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
    let since = window.since(state.clock.now());
    // Both reads at once (one round trip of latency, not two); the list is
    // dropped when the user is offline.
    let (status, conversations) = tokio::join!(
        state.store.presence(&user),
        state.store.open_conversations_since(&user, since),
    );
    let status = status?;
    if status == PresenceStatus::Offline {
        return Ok(PartnersResponse {
            user_id: user,
            status,
            partners: Vec::new(),
        });
    }
    let conversations = conversations?;
    let candidates = latest_per_partner(&user, &conversations, since);
    let ids: Vec<UserId> = candidates.iter().map(|c| c.user_id.clone()).collect();
    let presences = state.store.presences(&ids).await?;
    let partners = candidates
        .into_iter()
        .filter_map(|candidate| {
            let status = presences
                .get(&candidate.user_id)
                .copied()
                .unwrap_or_default();
            filter.admits(status).then_some(Partner {
                user_id: candidate.user_id,
                status,
                conversation_id: candidate.conversation_id,
                last_activity_at: candidate.last_activity_at,
            })
        })
        .collect();
    Ok(PartnersResponse {
        user_id: user,
        status,
        partners,
    })
}
