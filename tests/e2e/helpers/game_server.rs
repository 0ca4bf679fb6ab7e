//! A game server, as the platform sees one: a `service` token that ends sessions, sends
//! heartbeats and checks the join tokens players present.

use anyhow::Context;
use reqwest::Method;
use shared_types::game::{Session, Verification};
use uuid::Uuid;

use super::{Api, Replica, Reply, Service};

#[derive(Clone)]
pub struct GameServer {
    pub(super) api: Api,
    pub(super) token: String,
}

impl GameServer {
    /// The same game server, talking to `replica`.
    pub fn via(&self, replica: &Replica) -> Self {
        let mut server = self.clone();
        server.api.game = replica.base_url.clone();
        server
    }

    /// `POST /v1/sessions/{id}/end` with any body, for status checks.
    pub async fn end_raw(&self, id: Uuid, body: &str) -> anyhow::Result<Reply> {
        self.post(&format!("/v1/sessions/{id}/end"), Some(body))
            .await
    }

    /// Ends a session with `outcome` (`finished` or `aborted`).
    pub async fn end(&self, id: Uuid, outcome: &str) -> anyhow::Result<Session> {
        let body = serde_json::json!({ "outcome": outcome }).to_string();
        self.end_raw(id, &body)
            .await?
            .ok()
            .with_context(|| format!("ending session {id}"))?
            .json()
    }

    pub async fn heartbeat_raw(&self, id: Uuid) -> anyhow::Result<Reply> {
        self.post(&format!("/v1/sessions/{id}/heartbeat"), None)
            .await
    }

    pub async fn heartbeat(&self, id: Uuid) -> anyhow::Result<Session> {
        self.heartbeat_raw(id)
            .await?
            .ok()
            .with_context(|| format!("heartbeat for session {id}"))?
            .json()
    }

    /// `POST /v1/join-tokens/verify`: what the token proves, as the service says.
    pub async fn verify(&self, join_token: &str) -> anyhow::Result<Verification> {
        let body = serde_json::json!({ "token": join_token }).to_string();
        self.post("/v1/join-tokens/verify", Some(&body))
            .await?
            .ok()
            .context("verifying a join token")?
            .json()
    }

    /// `GET /v1/join-tokens/jwks.json`, without any token.
    pub async fn jwks(&self) -> anyhow::Result<Reply> {
        self.api
            .send(
                Service::Game,
                Method::GET,
                "/v1/join-tokens/jwks.json",
                None,
                None,
            )
            .await
    }

    async fn post(&self, path: &str, body: Option<&str>) -> anyhow::Result<Reply> {
        let auth = format!("Bearer {}", self.token);
        self.api
            .send(Service::Game, Method::POST, path, Some(&auth), body)
            .await
    }
}
