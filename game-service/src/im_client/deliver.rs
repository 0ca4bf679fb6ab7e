//! What the game service delivers to the IM service off every player's path: lobby
//! announcements (`kind: game` messages) and players' game activity (`PUT /v1/activity`).

use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use shared_types::{
    activity::{ActivityReport, ActivityReports},
    im::{GameAnnouncement, MessageKind, NewMessage},
};
use uuid::Uuid;

use super::ImClient;

/// Deliveries are off every player's critical path: they may take longer than a partners call.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a delivery did not go through.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The IM service is down, slow or overloaded: try again later.
    #[error("IM service unavailable: {0}")]
    Unavailable(String),
    /// The IM service refused it (the conversation is gone or closed, the host left it, a
    /// malformed report): trying again would be refused again.
    #[error("IM service refused it: {0}")]
    Refused(String),
}

/// The message text beside the structured `game`: what a chat client without game support shows.
pub fn announcement_text(game: &GameAnnouncement) -> String {
    format!(
        "{} started a game ({}). Open the game to join.",
        game.host, game.mode
    )
}

impl ImClient {
    pub(super) async fn post_announcement(
        &self,
        conversation: Uuid,
        text: &str,
        game: &GameAnnouncement,
    ) -> Result<(), DeliveryError> {
        let body = NewMessage {
            text: text.to_owned(),
            kind: MessageKind::Game,
            game: Some(game.clone()),
        };
        let path = format!("/v1/conversations/{conversation}/messages");
        self.deliver(reqwest::Method::POST, &path, &body).await
    }

    pub(super) async fn put_activity(
        &self,
        reports: &[ActivityReport],
    ) -> Result<(), DeliveryError> {
        let body = ActivityReports {
            reports: reports.to_vec(),
        };
        self.deliver(reqwest::Method::PUT, "/v1/activity", &body)
            .await
    }

    /// Sends `body` with the service token; 2xx is delivered, no answer, 408, 429 and 5xx
    /// are worth another try, any other answer is final.
    async fn deliver(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &impl Serialize,
    ) -> Result<(), DeliveryError> {
        let url = format!("{}{path}", self.base_url);
        let token = self
            .service_token()
            .map_err(|err| DeliveryError::Unavailable(format!("{err:#}")))?;
        let answer = self
            .http
            .request(method, &url)
            .bearer_auth(token)
            .timeout(DELIVERY_TIMEOUT)
            .json(body)
            .send()
            .await
            .with_context(|| format!("calling {url}"))
            .map_err(|err| DeliveryError::Unavailable(format!("{err:#}")))?;
        let status = answer.status();
        if status.is_success() {
            return Ok(());
        }
        let detail = answer.text().await.unwrap_or_default();
        let detail = format!(
            "{status} from {url}: {}",
            detail.chars().take(300).collect::<String>()
        );
        if status.is_server_error() || matches!(status.as_u16(), 408 | 429) {
            Err(DeliveryError::Unavailable(detail))
        } else {
            Err(DeliveryError::Refused(detail))
        }
    }
}
