//! Asks the IM service who a player is talking to, with a `service` token and a hard timeout.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context;
use async_trait::async_trait;
use shared_types::{
    UserId,
    auth::{Minter, Scope},
    im::PartnersResponse,
};

use crate::{
    breaker::Breaker,
    domain::engine::Partners,
    metrics::{self, ImOutcome},
};

/// The game service's own identity towards the IM service.
const SERVICE_SUBJECT: &str = "game-service";
/// Service tokens live this long and are re-minted a minute before they expire.
const TOKEN_TTL: Duration = Duration::from_secs(600);

/// Who a player is talking to right now. The IM service in production; a fixed map in tests.
#[async_trait]
pub trait PartnerSource: Send + Sync + 'static {
    /// Available partners, or `Unavailable` when the answer cannot be had in time.
    async fn partners(&self, player: &UserId) -> Partners;
}

pub struct ImClient {
    http: reqwest::Client,
    base_url: String,
    minter: Minter,
    timeout: Duration,
    token: Mutex<Option<(String, Instant)>>,
    breaker: Breaker,
    /// One partners call per player at a time: a player hammering connect
    /// waits for their own previous call instead of piling calls up.
    in_flight: Mutex<HashMap<UserId, Arc<tokio::sync::Mutex<()>>>>,
}

impl ImClient {
    pub fn new(
        base_url: &str,
        minter: Minter,
        timeout: Duration,
        breaker: Breaker,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .context("building the IM HTTP client")?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            minter,
            timeout,
            token: Mutex::new(None),
            breaker,
            in_flight: Mutex::new(HashMap::new()),
        })
    }

    /// The player's turn to call: held while their call is out.
    fn turn(&self, player: &UserId) -> Arc<tokio::sync::Mutex<()>> {
        let Ok(mut in_flight) = self.in_flight.lock() else {
            return Arc::new(tokio::sync::Mutex::new(()));
        };
        // Forget players nobody waits for any more (only the map holds them).
        if in_flight.len() > 1024 {
            in_flight.retain(|_, turn| Arc::strong_count(turn) > 1);
        }
        in_flight.entry(player.clone()).or_default().clone()
    }

    async fn fetch_partners(&self, player: &UserId) -> Partners {
        let turn = self.turn(player);
        // Waiting for one's own previous call counts against the same timeout.
        let Ok(_mine) = tokio::time::timeout(self.timeout, turn.lock()).await else {
            tracing::debug!(%player, "their previous partners call is still out; going solo");
            return Partners::Unavailable;
        };
        let started = Instant::now();
        if !self.breaker.allow(started) {
            tracing::debug!(%player, "IM circuit open; going solo without calling");
            metrics::im_request(ImOutcome::BreakerOpen, None);
            return Partners::Unavailable;
        }
        let outcome = tokio::time::timeout(self.timeout, self.fetch(player)).await;
        match &outcome {
            Ok(Ok(_)) => self.breaker.success(),
            _ => self.breaker.failure(Instant::now(), player),
        }
        let counted = match &outcome {
            Ok(Ok(_)) => ImOutcome::Ok,
            Ok(Err(err)) if timed_out(err) => ImOutcome::Timeout,
            Ok(Err(_)) => ImOutcome::Error,
            Err(_) => ImOutcome::Timeout,
        };
        metrics::im_request(counted, Some(started.elapsed()));
        match outcome {
            Ok(Ok(found)) => Partners::Found(found),
            Ok(Err(err)) => {
                tracing::warn!(error = format!("{err:#}"), %player, "IM service failed; going solo");
                Partners::Unavailable
            }
            Err(_) => {
                tracing::warn!(elapsed_ms = started.elapsed().as_millis() as u64, %player, "IM service too slow; going solo");
                Partners::Unavailable
            }
        }
    }

    async fn fetch(&self, player: &UserId) -> anyhow::Result<Vec<UserId>> {
        let url = format!("{}/v1/users/{player}/partners", self.base_url);
        let response = self
            .http
            .get(&url)
            .bearer_auth(self.service_token()?)
            .query(&[("status", "available")])
            .send()
            .await
            .with_context(|| format!("calling {url}"))?
            .error_for_status()
            .with_context(|| format!("IM answered an error for {url}"))?;
        let body: PartnersResponse = response.json().await.context("decoding partners")?;
        Ok(body.partners.into_iter().map(|p| p.user_id).collect())
    }

    fn service_token(&self) -> anyhow::Result<String> {
        let mut cached = self
            .token
            .lock()
            .map_err(|_| anyhow::anyhow!("token cache poisoned"))?;
        if let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let subject = UserId::parse(SERVICE_SUBJECT).context("service subject")?;
        let token = self
            .minter
            .mint(&subject, Scope::Service, TOKEN_TTL.as_secs())
            .context("minting the service token")?;
        *cached = Some((
            token.clone(),
            Instant::now() + TOKEN_TTL - Duration::from_secs(60),
        ));
        Ok(token)
    }
}

/// The HTTP client's own timeout (the same `IM_TIMEOUT_MS`) may fire just
/// before ours: that is a timeout too, not an error answer.
fn timed_out(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|cause| cause.downcast_ref::<reqwest::Error>())
        .any(reqwest::Error::is_timeout)
}

#[async_trait]
impl PartnerSource for ImClient {
    async fn partners(&self, player: &UserId) -> Partners {
        self.fetch_partners(player).await
    }
}
