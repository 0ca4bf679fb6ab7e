//! `PUT /v1/activity`: the game service reports who began or stopped playing (`service` scope only).

use actix_web::{HttpResponse, web};
use service_kit::{ApiError, auth::Service};
use shared_types::{activity::ActivityReports, problem::Problem};
use utoipa::IntoResponses;

use super::AppState;
use crate::{
    domain::activity::{InvalidReports, validate},
    store::StoreError,
};

/// Largest accepted body: 256 reports of the longest ids and modes, with room to spare
/// (the service-wide limit, 16 KiB, holds about 80).
pub const MAX_ACTIVITY_BODY_BYTES: usize = 128 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/activity")
            .app_data(service_kit::extract::json_config().limit(MAX_ACTIVITY_BODY_BYTES))
            .route(web::put().to(put_activity)),
    );
}

#[derive(Debug, thiserror::Error)]
pub enum ActivityError {
    #[error(transparent)]
    Invalid(#[from] InvalidReports),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ActivityError> for ApiError {
    fn from(err: ActivityError) -> Self {
        match err {
            ActivityError::Invalid(_) => ApiError::invalid(err.to_string()),
            ActivityError::Store(err) => err.into(),
        }
    }
}

/// The 403 of the service-only endpoints for a player token (documentation only).
#[derive(IntoResponses)]
#[response(
    status = 403,
    description = "A player token: this endpoint is for the platform's services",
    content_type = "application/problem+json"
)]
pub struct PlayerToken(pub Problem);

/// Report players' game activity (the game service).
///
/// Each report says a player began (`playing: true`) or stopped playing in a
/// game session. Per player, the report with the highest `seq` wins: a report
/// is applied only if its `seq` is above the newest applied to that player,
/// so reports may arrive late, twice or out of order. Applied, `playing: true`
/// makes the player's `activity` `in_game` in that session (`since` = the
/// report's `at`); `playing: false` clears it if it is that session's, and
/// leaves another session's standing. Every change of a player's activity
/// reaches their contacts as a `presence` event, and shows in presence
/// answers and partner entries. Activity lives as long as presence
/// (`IM_RETENTION_SECS` after the last report applied). 1-256 reports, each
/// player's applied atomically; the batch is checked whole first (a 400
/// applies nothing). `service` tokens only.
#[utoipa::path(
    put,
    path = "/v1/activity",
    tag = "presence",
    request_body = ActivityReports,
    responses(
        (status = 204, description = "Every report applied, or ignored as no newer than what was applied"),
        (status = 400, description = "Malformed JSON, an unknown field, no report or more than 256, a `mode` \
that is not 1-32 characters, a `seq` of 0",
            body = Problem, content_type = "application/problem+json"),
        PlayerToken,
        (status = 413, description = "A body over 128 KiB",
            body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn put_activity(
    _service: Service,
    state: web::Data<AppState>,
    body: web::Json<ActivityReports>,
) -> Result<HttpResponse, ApiError> {
    let reports = body.into_inner().reports;
    validate(&reports).map_err(ActivityError::from)?;
    state
        .store
        .apply_activity(&reports)
        .await
        .map_err(ActivityError::from)?;
    Ok(HttpResponse::NoContent().finish())
}
