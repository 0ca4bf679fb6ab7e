//! Posting a lobby's `game` message into a conversation of the IM service.

use std::time::Duration;

use anyhow::Context;
use shared_types::im::{GameAnnouncement, MessageKind, NewMessage};
use uuid::Uuid;

use super::ImClient;

/// An announcement is off every player's critical path: it may take longer than a partners call.
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why an announcement was not posted.
#[derive(Debug, thiserror::Error)]
pub enum AnnounceError {
    /// The IM service is down, slow or overloaded: try again later.
    #[error("IM service unavailable: {0}")]
    Unavailable(String),
    /// The IM service refused it (the conversation is gone or closed, the host left it):
    /// trying again would be refused again.
    #[error("IM service refused the announcement: {0}")]
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
    ) -> Result<(), AnnounceError> {
        let url = format!("{}/v1/conversations/{conversation}/messages", self.base_url);
        let token = self
            .service_token()
            .map_err(|err| AnnounceError::Unavailable(format!("{err:#}")))?;
        let body = NewMessage {
            text: text.to_owned(),
            kind: MessageKind::Game,
            game: Some(game.clone()),
        };
        let answer = self
            .http
            .post(&url)
            .bearer_auth(token)
            .timeout(ANNOUNCE_TIMEOUT)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("calling {url}"))
            .map_err(|err| AnnounceError::Unavailable(format!("{err:#}")))?;
        let status = answer.status();
        if status.is_success() {
            return Ok(());
        }
        let detail = answer.text().await.unwrap_or_default();
        let detail = format!(
            "{status} from {url}: {}",
            detail.chars().take(300).collect::<String>()
        );
        // 408, 429 and 5xx pass; any other refusal is final.
        if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
            Err(AnnounceError::Unavailable(detail))
        } else {
            Err(AnnounceError::Refused(detail))
        }
    }
}
