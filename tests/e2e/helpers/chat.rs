//! A player's calls that join the chat and the game: reading a conversation's messages,
//! launching a game from it, connecting for a mode.

use anyhow::Context;
use reqwest::Method;
use shared_types::{
    game::PlayerState,
    im::{Message, MessageKind, MessagePage},
};
use uuid::Uuid;

use super::{Player, Reply, Service};

impl Player {
    /// Every message of `conversation` the IM service keeps, oldest first (up to 200).
    pub async fn messages(&self, conversation: Uuid) -> anyhow::Result<Vec<Message>> {
        let path = format!("/v1/conversations/{conversation}/messages?limit=200");
        let page: MessagePage = self
            .raw(Service::Im, Method::GET, &path, None)
            .await?
            .ok()
            .with_context(|| format!("{} reading messages", self.id))?
            .json()?;
        Ok(page.messages)
    }

    /// The `game` messages of `conversation`, oldest first.
    pub async fn game_messages(&self, conversation: Uuid) -> anyhow::Result<Vec<Message>> {
        Ok(self
            .messages(conversation)
            .await?
            .into_iter()
            .filter(|m| m.kind == MessageKind::Game)
            .collect())
    }

    /// `POST /v1/conversations/{id}/games` of the IM service, answered as it is.
    pub async fn launch_game(
        &self,
        conversation: Uuid,
        mode: Option<&str>,
    ) -> anyhow::Result<Reply> {
        let body = mode.map(|m| serde_json::json!({ "mode": m }).to_string());
        let path = format!("/v1/conversations/{conversation}/games");
        self.raw(Service::Im, Method::POST, &path, body.as_deref())
            .await
    }

    /// `POST /v1/connect {"mode": mode}`.
    pub async fn connect_mode(&self, mode: &str) -> anyhow::Result<PlayerState> {
        let body = serde_json::json!({ "mode": mode }).to_string();
        self.raw(Service::Game, Method::POST, "/v1/connect", Some(&body))
            .await?
            .ok()
            .with_context(|| format!("{} connecting for mode {mode}", self.id))?
            .json()
    }
}
