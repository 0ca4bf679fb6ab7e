//! Opens a lobby on the game service for a game launched from a conversation: `POST /v1/lobbies` with a `service` token and a hard timeout.

use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use service_kit::{ApiError, service_token::ServiceToken};
use shared_types::{
    auth::Minter,
    game::{NewLobby, PlayerState},
    problem::ProblemCode,
};

use self::answer::{read_answer, transport_error};
use crate::{configuration::GameSettings, metrics::LaunchOutcome};

mod answer;

/// The IM service's own identity towards the game service.
pub const SERVICE_SUBJECT: &str = "im-service";
/// `Retry-After` of a 503 `game_unavailable` when the game service gave none.
pub const DEFAULT_RETRY_AFTER_SECS: u64 = 1;
/// The longest `Retry-After` passed on from the game service.
pub const MAX_RETRY_AFTER_SECS: u64 = 60;

/// Opens lobbies: the game service in production; tests may put anything behind it.
#[async_trait]
pub trait LobbyOpener: Send + Sync + 'static {
    /// The host's state once the lobby is open, or why not.
    async fn open_lobby(&self, lobby: &NewLobby) -> Result<PlayerState, LaunchError>;
}

/// Why no lobby was opened (or, for `Unavailable`, why the IM service cannot tell).
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The game service's 409: the host already has an open prompt or a live session.
    #[error("{0}")]
    AlreadyPlaying(String),
    /// The game service's 400 `unknown_mode`.
    #[error("{0}")]
    UnknownMode(String),
    /// Another 400 from the game service.
    #[error("{0}")]
    Refused(String),
    /// Down, too slow, misconfigured or answering outside the contract: worth a retry later.
    #[error("the game service is unavailable or too slow; retry later")]
    Unavailable {
        outcome: LaunchOutcome,
        retry_after: u64,
    },
}

impl LaunchError {
    /// The `im_game_launches_total` outcome.
    pub fn outcome(&self) -> LaunchOutcome {
        match self {
            Self::AlreadyPlaying(_) => LaunchOutcome::AlreadyPlaying,
            Self::UnknownMode(_) => LaunchOutcome::UnknownMode,
            Self::Refused(_) => LaunchOutcome::Refused,
            Self::Unavailable { outcome, .. } => *outcome,
        }
    }

    fn unavailable(outcome: LaunchOutcome, retry_after: Option<u64>) -> Self {
        Self::Unavailable {
            outcome,
            retry_after: retry_after.unwrap_or(DEFAULT_RETRY_AFTER_SECS),
        }
    }
}

impl From<LaunchError> for ApiError {
    fn from(err: LaunchError) -> Self {
        match err {
            LaunchError::AlreadyPlaying(detail) => {
                ApiError::new(ProblemCode::AlreadyPlaying, detail)
            }
            LaunchError::UnknownMode(detail) => ApiError::new(ProblemCode::UnknownMode, detail),
            LaunchError::Refused(detail) => ApiError::invalid(detail),
            LaunchError::Unavailable { retry_after, .. } => ApiError {
                code: ProblemCode::GameUnavailable,
                detail: err.to_string(),
                retry_after: Some(retry_after),
            },
        }
    }
}

/// The game service over HTTP.
pub struct GameClient {
    http: reqwest::Client,
    lobbies_url: String,
    timeout: Duration,
    token: ServiceToken,
}

impl GameClient {
    pub fn new(settings: &GameSettings, minter: Minter) -> anyhow::Result<Self> {
        settings.validate()?;
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            // Below the game service's keep-alive (actix-web's 5 s): an idle connection is
            // dropped here before the server closes it, which narrows the keep-alive race.
            .pool_idle_timeout(Duration::from_secs(4))
            // A service call is answered, never redirected: the token goes nowhere else.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the game HTTP client")?;
        Ok(Self {
            http,
            lobbies_url: format!("{}/v1/lobbies", settings.url.trim_end_matches('/')),
            timeout: settings.timeout,
            token: ServiceToken::new(minter, SERVICE_SUBJECT)?,
        })
    }

    /// The request and its answer, read whole.
    async fn exchange(&self, lobby: &NewLobby) -> Result<PlayerState, LaunchError> {
        let token = self.token.bearer().map_err(|err| {
            tracing::error!(
                error = format!("{err:#}"),
                "cannot mint the service token for the game service"
            );
            LaunchError::unavailable(LaunchOutcome::Misconfigured, None)
        })?;
        let response = match self.send(&token, lobby).await {
            Err(err) if service_kit::http_client::unanswered(&err) => {
                // The one repeat of a POST that is safe: the request went out on a pooled
                // connection that closed with no answer at all, which is what a server does
                // when it drops an idle keep-alive connection (or a draining replica its idle
                // ones) as the request arrives: it was never read, nothing was done. Had the
                // game service read it and died before answering, the repeat could still not
                // open a second lobby: the host would have one, and the answer be a 409
                // `already_playing`. Only once, within the same GAME_TIMEOUT_MS.
                tracing::debug!(error = %err, "lobby request unanswered; sending it once more");
                self.send(&token, lobby).await
            }
            sent => sent,
        }
        .map_err(|err| transport_error(&err))?;
        read_answer(response).await
    }

    async fn send(
        &self,
        token: &str,
        lobby: &NewLobby,
    ) -> Result<reqwest::Response, reqwest::Error> {
        self.http
            .post(&self.lobbies_url)
            .bearer_auth(token)
            .json(lobby)
            .send()
            .await
    }
}

#[async_trait]
impl LobbyOpener for GameClient {
    async fn open_lobby(&self, lobby: &NewLobby) -> Result<PlayerState, LaunchError> {
        let started = Instant::now();
        let outcome = tokio::time::timeout(self.timeout, self.exchange(lobby))
            .await
            .unwrap_or_else(|_| Err(LaunchError::unavailable(LaunchOutcome::Timeout, None)));
        if let Err(LaunchError::Unavailable { outcome, .. }) = &outcome {
            tracing::warn!(
                outcome = outcome.label(),
                elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                host = %lobby.host,
                conversation_id = %lobby.conversation_id,
                "the game service did not open the lobby"
            );
        }
        outcome
    }
}

#[cfg(test)]
#[expect(clippy::expect_used, reason = "tests")]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use shared_types::UserId;
    use uuid::Uuid;

    use super::*;

    /// A game service that drops the first `closing` requests unanswered, then opens lobbies.
    async fn flaky_game(closing: usize) -> (String, Arc<AtomicUsize>) {
        let state = r#"{"player_id":"alice","prompt":null,"session":null,"degraded":false}"#;
        e2e::flaky::dropping_first_requests(closing, "201 Created", state)
            .await
            .expect("a fake game service")
    }

    fn client(address: &str) -> GameClient {
        GameClient::new(
            &GameSettings {
                url: address.to_owned(),
                timeout: Duration::from_secs(2),
            },
            Minter::hs256(
                b"a-secret-of-at-least-thirty-two-bytes!",
                "game-platform",
                "game-platform",
            ),
        )
        .expect("a client")
    }

    fn lobby() -> NewLobby {
        NewLobby {
            host: UserId::parse("alice").expect("valid id"),
            invitees: vec![UserId::parse("bob").expect("valid id")],
            mode: None,
            conversation_id: Uuid::new_v4(),
        }
    }

    #[tokio::test]
    async fn a_lobby_request_left_unanswered_is_sent_once_more() {
        let (address, requests) = flaky_game(1).await;
        let state = client(&address).open_lobby(&lobby()).await.expect("opened");
        assert_eq!(state.player_id.as_str(), "alice");
        assert_eq!(requests.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn only_once_more_then_the_game_is_unavailable() {
        let (address, requests) = flaky_game(usize::MAX).await;
        let outcome = client(&address).open_lobby(&lobby()).await;
        assert!(
            matches!(
                outcome,
                Err(LaunchError::Unavailable {
                    outcome: LaunchOutcome::Unreachable,
                    retry_after: DEFAULT_RETRY_AFTER_SECS
                })
            ),
            "{outcome:?}"
        );
        assert_eq!(requests.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn every_failure_maps_to_its_problem() {
        let api = |err: LaunchError| ApiError::from(err);
        assert_eq!(
            api(LaunchError::AlreadyPlaying("x".into())).code,
            ProblemCode::AlreadyPlaying
        );
        assert_eq!(
            api(LaunchError::UnknownMode("x".into())).code,
            ProblemCode::UnknownMode
        );
        assert_eq!(
            api(LaunchError::Refused("x".into())).code,
            ProblemCode::InvalidRequest
        );
        let unavailable = api(LaunchError::unavailable(LaunchOutcome::Timeout, None));
        assert_eq!(unavailable.code, ProblemCode::GameUnavailable);
        assert_eq!(unavailable.retry_after, Some(DEFAULT_RETRY_AFTER_SECS));
        let told = api(LaunchError::unavailable(LaunchOutcome::GameError, Some(5)));
        assert_eq!(told.retry_after, Some(5));
    }
}
