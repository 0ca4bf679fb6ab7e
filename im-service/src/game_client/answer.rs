//! What the game service's answer to `POST /v1/lobbies` means for the chat user: a lobby, a refusal to pass on, or "unavailable".

use reqwest::{StatusCode, header};
use shared_types::game::PlayerState;

use super::{LaunchError, MAX_RETRY_AFTER_SECS};
use crate::metrics::LaunchOutcome;

/// No answer to read: too slow, or nobody there (refused, reset).
pub(super) fn transport_error(err: &reqwest::Error) -> LaunchError {
    let outcome = if err.is_timeout() {
        LaunchOutcome::Timeout
    } else {
        LaunchOutcome::Unreachable
    };
    tracing::debug!(error = %err, outcome = outcome.label(), "calling the game service failed");
    LaunchError::unavailable(outcome, None)
}

/// What the game service's answer means for the chat user.
pub(super) async fn read_answer(response: reqwest::Response) -> Result<PlayerState, LaunchError> {
    let status = response.status();
    let retry_after = retry_after(response.headers());
    let body = response
        .bytes()
        .await
        .map_err(|err| transport_error(&err))?;
    if status.is_success() {
        return serde_json::from_slice::<PlayerState>(&body).map_err(|err| {
            // The lobby may well be open: a retry then finds the host already playing.
            tracing::error!(%status, error = %err, "the game service's answer is not a PlayerState");
            LaunchError::unavailable(LaunchOutcome::BadAnswer, retry_after)
        });
    }
    let (code, detail) = problem_of(&body);
    match status {
        StatusCode::CONFLICT => Err(LaunchError::AlreadyPlaying(detail.unwrap_or_else(|| {
            "you already have an open prompt or a live session in the game".to_owned()
        }))),
        StatusCode::BAD_REQUEST if code.as_deref() == Some("unknown_mode") => Err(
            LaunchError::UnknownMode(detail.unwrap_or_else(|| "no such game mode".to_owned())),
        ),
        StatusCode::BAD_REQUEST => {
            Err(LaunchError::Refused(detail.unwrap_or_else(|| {
                "the game service refused this launch".to_owned()
            })))
        }
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            tracing::error!(
                %status,
                code = code.as_deref().unwrap_or_default(),
                detail = detail.as_deref().unwrap_or_default(),
                "the game service refused the IM service's token: check that both services share \
                 JWT_SECRET, JWT_ISSUER and JWT_AUDIENCE"
            );
            Err(LaunchError::unavailable(
                LaunchOutcome::Misconfigured,
                retry_after,
            ))
        }
        status if status.is_server_error() => Err(LaunchError::unavailable(
            LaunchOutcome::GameError,
            retry_after,
        )),
        status => {
            tracing::error!(
                %status,
                code = code.as_deref().unwrap_or_default(),
                "the game service answered POST /v1/lobbies outside its contract (is GAME_URL the \
                 game service, and is it recent enough?)"
            );
            Err(LaunchError::unavailable(
                LaunchOutcome::BadAnswer,
                retry_after,
            ))
        }
    }
}

/// `Retry-After` in seconds (1-60), when given as a number.
fn retry_after(headers: &header::HeaderMap) -> Option<u64> {
    headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|secs| secs.clamp(1, MAX_RETRY_AFTER_SECS))
}

/// The `code` and `detail` of a problem+json body, whatever else it holds (a code this
/// build does not know is still a string).
fn problem_of(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (None, None);
    };
    let text = |field: &str| {
        value
            .get(field)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    (text("code"), text("detail"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_after_is_a_number_of_seconds_kept_within_bounds() {
        let with = |value: &str| {
            let mut headers = header::HeaderMap::new();
            if let Ok(value) = header::HeaderValue::from_str(value) {
                headers.insert(header::RETRY_AFTER, value);
            }
            retry_after(&headers)
        };
        assert_eq!(with("3"), Some(3));
        assert_eq!(with(" 7 "), Some(7));
        assert_eq!(with("0"), Some(1));
        assert_eq!(with("86400"), Some(MAX_RETRY_AFTER_SECS));
        assert_eq!(with("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(retry_after(&header::HeaderMap::new()), None);
    }

    #[test]
    fn a_problem_body_gives_its_code_and_detail_even_with_a_code_unknown_here() {
        assert_eq!(
            problem_of(br#"{"code":"unknown_mode","detail":"modes: default","status":400}"#),
            (Some("unknown_mode".into()), Some("modes: default".into()))
        );
        assert_eq!(
            problem_of(br#"{"code":"brand_new_code"}"#),
            (Some("brand_new_code".into()), None)
        );
        assert_eq!(problem_of(b"<html>"), (None, None));
    }
}
