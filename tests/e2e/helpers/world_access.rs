//! What a running world hands a test: players and game servers with their tokens, raw requests, metrics, and the keys its services stored.

use std::collections::HashMap;

use anyhow::{Context, anyhow, bail};
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

    /// Every key the world's services wrote, with its type, TTL and (for strings) value, read
    /// from the nodes that hold them now: each master of a cluster, or the primary (after a
    /// failover, the ones promoted; never a replica). Each key once.
    pub async fn stored_keys(&self) -> anyhow::Result<Vec<StoredKey>> {
        let nodes = self.key_nodes()?;
        let keys = snapshot(&nodes, &format!("{}-*", self.prefix)).await?;
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for key in &keys {
            if let Some(other) = seen.insert(&key.name, &key.node) {
                bail!(
                    "{} was read from {other} and from {}: one of {nodes:?} is a replica or a \
                     stale master",
                    key.name,
                    key.node
                );
            }
        }
        Ok(keys)
    }

    /// Standalone URLs of the nodes holding the world's keys now. A replicated store's masters
    /// change in a failover; the others' are those it started with.
    fn key_nodes(&self) -> anyhow::Result<Vec<String>> {
        if let Some(cluster) = &self.replicated {
            return cluster.master_urls();
        }
        if let Some(group) = &self.sentinel {
            let primary = group.port(group.primary()?)?;
            return Ok(vec![format!("redis://127.0.0.1:{primary}")]);
        }
        Ok(self.redis_nodes.clone())
    }

    /// The last lines of every IM-service process's output, for failure messages.
    pub fn im_log_tails(&self) -> String {
        self.log_tails_of(Service::Im)
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
