//! HTTP routes, one module per resource, and the mapping of game errors to problems.

pub mod events;
pub mod join_tokens;
pub mod lobbies;
pub mod players;
pub mod prompts;
pub mod sessions;

use actix_web::web;
use service_kit::ApiError;
use shared_types::problem::ProblemCode;

use crate::{domain::engine::Refusal, game::GameError, store::StoreError};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(players::connect)
        .service(players::me)
        .service(prompts::accept)
        .service(prompts::reject)
        .service(sessions::get_session)
        .service(sessions::leave)
        .service(sessions::end)
        .service(sessions::heartbeat)
        .service(join_tokens::jwks)
        .service(join_tokens::verify)
        .service(events::stream)
        .service(lobbies::open_lobby)
        .service(service_kit::tickets::issue_ticket);
}

/// A store failure outside a transition (reading an event stream back).
impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        GameError::Store(err).into()
    }
}

impl From<GameError> for ApiError {
    /// Also counts the failure: every request that fails on the store or on
    /// lock contention passes here exactly once, on its way to its problem.
    fn from(err: GameError) -> Self {
        crate::metrics::count_failure(&err);
        match err {
            GameError::Store(StoreError::Corrupt(err)) => ApiError::unexpected(&err),
            GameError::Store(StoreError::Unavailable(err)) => ApiError::store_unavailable(&err),
            GameError::Store(StoreError::LeaseLost | StoreError::Contended) | GameError::Busy => {
                ApiError {
                    retry_after: Some(1),
                    ..ApiError::new(
                        ProblemCode::LockContention,
                        "the players involved are busy with concurrent requests; nothing was changed; retry",
                    )
                }
            }
            GameError::Refused(Refusal::NotFound(what)) => ApiError::not_found(what),
            GameError::Refused(Refusal::Invalid(detail)) => ApiError::invalid(detail),
            GameError::Refused(Refusal::UnknownMode(detail)) => {
                ApiError::new(ProblemCode::UnknownMode, detail)
            }
            GameError::Refused(Refusal::AlreadyPlaying) => ApiError::new(
                ProblemCode::AlreadyPlaying,
                "the host already has an open prompt or a live session; nothing was changed",
            ),
            GameError::Refused(Refusal::AlreadyAnswered) => ApiError::new(
                ProblemCode::AlreadyAnswered,
                "this prompt was already answered the other way; decisions are final",
            ),
            GameError::Refused(Refusal::PromptClosed(reason)) => {
                let reason = serde_json::to_value(reason)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                ApiError::new(
                    ProblemCode::PromptClosed,
                    format!("this prompt is no longer open ({reason})"),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_contention_is_a_503_of_its_own_with_retry_after_and_the_store_another() {
        for busy in [
            GameError::Busy,
            GameError::Store(StoreError::LeaseLost),
            GameError::Store(StoreError::Contended),
        ] {
            let error = ApiError::from(busy);
            assert_eq!(error.code, ProblemCode::LockContention);
            assert_eq!(error.code.status(), 503);
            assert_eq!(error.retry_after, Some(1));
        }
        let down = ApiError::from(GameError::Store(StoreError::Unavailable(anyhow::anyhow!(
            "connection refused"
        ))));
        assert_eq!(down.code, ProblemCode::StoreUnavailable);
        assert!(down.retry_after.is_some());
        assert!(!down.detail.contains("refused"), "no internal error text");
    }

    #[test]
    fn a_request_failing_on_locks_or_the_store_is_counted_under_its_series() {
        use crate::metrics::{LOCK_CONTENTION, STORE_ERRORS};
        // The counters are process-wide and other tests fail requests too: at least ours.
        let (busy, store) = (LOCK_CONTENTION.get(), STORE_ERRORS.get());
        let _ = ApiError::from(GameError::Busy);
        let _ = ApiError::from(GameError::Store(StoreError::Contended));
        assert!(LOCK_CONTENTION.get() >= busy + 2);
        let _ = ApiError::from(GameError::Store(StoreError::Unavailable(anyhow::anyhow!(
            "down"
        ))));
        let _ = ApiError::from(GameError::Store(StoreError::Corrupt(anyhow::anyhow!(
            "bad json"
        ))));
        assert!(STORE_ERRORS.get() >= store + 2);
    }
}
