//! What a running world hands a test: players and game servers with their tokens, raw requests, metrics, and the keys its services stored.

use anyhow::{Context, anyhow};
use reqwest::Method;
use shared_types::{UserId, auth::Scope};
use uuid::Uuid;

use super::{
    GameServer, Player, REQUEST_TIMEOUT, Replica, Reply, Service, StoredKey, TestWorld, snapshot,
};

impl TestWorld {
    /// A player with a valid one-hour token.
    pub fn player(&self, id: &str) -> anyhow::Result<Player> {
        let user_id = UserId::parse(id).map_err(|e| anyhow!("{id:?}: {e}"))?;
        let token = self
            .minter
            .mint(&user_id, Scope::Player, 3600)
            .context("minting a player token")?;
        Ok(Player {
            id: id.to_owned(),
            token,
            api: self.api.clone(),
        })
    }

    /// A token of scope `service`, as the game service uses against the IM service.
    /// `host:port` of the first game replica, for raw TCP.
    pub fn game_address(&self) -> String {
        self.api.game.trim_start_matches("http://").to_owned()
    }

    pub fn service_token(&self) -> anyhow::Result<String> {
        let user_id = UserId::parse("e2e-service").map_err(|e| anyhow!("{e}"))?;
        self.minter
            .mint(&user_id, Scope::Service, 3600)
            .context("minting a service token")
    }

    /// A game server with a `service` token, talking to the first replica.
    pub fn game_server(&self) -> anyhow::Result<GameServer> {
        Ok(GameServer {
            api: self.api.clone(),
            token: self.service_token()?,
        })
    }

    /// `GET /metrics` of the first replica (or `replica`): the value of every series whose
    /// line starts with `series` (name and labels), summed.
    pub async fn metric(&self, replica: Option<&Replica>, series: &str) -> anyhow::Result<f64> {
        let base = replica.map_or(self.api.game.as_str(), |r| r.base_url.as_str());
        self.metric_at(base, series).await
    }

    /// [`Self::metric`] of the first replica of `service`.
    pub async fn metric_of(&self, service: Service, series: &str) -> anyhow::Result<f64> {
        self.metric_at(self.api.base(service), series).await
    }

    async fn metric_at(&self, base: &str, series: &str) -> anyhow::Result<f64> {
        let text = self
            .api
            .client
            .get(format!("{base}/metrics"))
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .context("GET /metrics")?
            .text()
            .await?;
        Ok(text
            .lines()
            .filter(|line| line.starts_with(series))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }

    /// Everyone `available`, the first opens one conversation with all the others, and each
    /// of them posts in it (talking takes two: only then are they each other's partners).
    pub async fn chatting(&self, people: &[&Player]) -> anyhow::Result<Uuid> {
        let (first, others) = people
            .split_first()
            .context("chatting needs at least two people")?;
        for person in people {
            person.set_presence("available").await?;
        }
        let conversation = first.open_conversation(others).await?;
        for person in people {
            person
                .post_message(conversation, &format!("hi, {} here", person.id))
                .await?;
        }
        Ok(conversation)
    }

    /// A request with any `Authorization` header value (or none): for auth checks.
    pub async fn raw(
        &self,
        service: Service,
        method: Method,
        path: &str,
        authorization: Option<&str>,
        body: Option<&str>,
    ) -> anyhow::Result<Reply> {
        self.api
            .send(service, method, path, authorization, body)
            .await
    }

    /// [`Self::raw`] without a body and with more request headers (`Origin`,
    /// `Access-Control-Request-Method`, …): for CORS checks.
    pub async fn raw_with_headers(
        &self,
        service: Service,
        method: Method,
        path: &str,
        authorization: Option<&str>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Reply> {
        self.api
            .send_with(service, method, path, authorization, None, headers)
            .await
    }

    /// Every key the world's services wrote, with its type, TTL and (for strings) value.
    pub async fn stored_keys(&self) -> anyhow::Result<Vec<StoredKey>> {
        snapshot(&self.redis_nodes, &format!("{}-*", self.prefix)).await
    }

    /// The prefix of the game service's Redis keys.
    pub fn game_key_prefix(&self) -> String {
        format!("{}-game", self.prefix)
    }

    /// The prefix of the IM service's Redis keys.
    pub fn im_key_prefix(&self) -> String {
        format!("{}-im", self.prefix)
    }
}
