//! The game service's calls to the IM service, with a `service` token: who a player is
//! talking to (with a hard timeout, [`ImService::partners`]) and lobby announcements
//! deliveries off the players' path ([`deliver`]: announcements, game activity), and the
//! IM service's presence feed ([`feed`]).

mod deliver;
mod feed;

pub use deliver::{DeliveryError, announcement_text};

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context;
use async_trait::async_trait;
use service_kit::service_token::ServiceToken;
use shared_types::{
    UserId,
    activity::{ActivityReport, PresenceChanges},
    auth::Minter,
    im::{GameAnnouncement, PartnersResponse},
};
use uuid::Uuid;

use crate::{
    breaker::Breaker,
    domain::engine::{Partner, Partners},
    metrics::{self, ImOutcome},
};

/// The game service's own identity towards the IM service.
const SERVICE_SUBJECT: &str = "game-service";

/// What the game asks of the IM service. The IM service in production; fixed answers in tests.
#[async_trait]
pub trait ImService: Send + Sync + 'static {
    /// Who a player is talking to right now: available partners, or `Unavailable` when the
    /// answer cannot be had in time.
    async fn partners(&self, player: &UserId) -> Partners;

    /// Posts a lobby's `game` message into a conversation.
    async fn announce(
        &self,
        conversation: Uuid,
        text: &str,
        game: &GameAnnouncement,
    ) -> Result<(), DeliveryError>;

    /// Reports players' game activity (`in_game` begun or ended), at most 256 reports.
    async fn report_activity(&self, reports: &[ActivityReport]) -> Result<(), DeliveryError>;

    /// Presence changes after the feed cursor `after` (from the oldest kept when `None`).
    async fn presence_changes(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<PresenceChanges, DeliveryError>;
}

pub struct ImClient {
    http: reqwest::Client,
    base_url: String,
    timeout: Duration,
    token: ServiceToken,
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
            // Below the IM service's keep-alive (actix-web's 5 s): an idle connection is dropped
            // here before the server closes it, which narrows the keep-alive race.
            .pool_idle_timeout(Duration::from_secs(4))
            .build()
            .context("building the IM HTTP client")?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            timeout,
            token: ServiceToken::new(minter, SERVICE_SUBJECT)?,
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

    /// The partners call; sent once more when the first went out on a pooled connection that
    /// the IM service closed as it was taken (the keep-alive race: nothing was answered, and
    /// the GET changes nothing, so repeating it is safe).
    async fn fetch(&self, player: &UserId) -> anyhow::Result<Vec<Partner>> {
        match self.fetch_once(player).await {
            Err(err) if service_kit::http_client::unanswered_in(&err) => {
                tracing::debug!(error = format!("{err:#}"), %player, "partners call unanswered; sending it again");
                self.fetch_once(player).await
            }
            outcome => outcome,
        }
    }

    async fn fetch_once(&self, player: &UserId) -> anyhow::Result<Vec<Partner>> {
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
        Ok(body
            .partners
            .into_iter()
            .map(|p| Partner::new(p.user_id, Some(p.conversation_id)))
            .collect())
    }

    fn service_token(&self) -> anyhow::Result<String> {
        self.token.bearer()
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
impl ImService for ImClient {
    async fn partners(&self, player: &UserId) -> Partners {
        self.fetch_partners(player).await
    }

    async fn announce(
        &self,
        conversation: Uuid,
        text: &str,
        game: &GameAnnouncement,
    ) -> Result<(), DeliveryError> {
        self.post_announcement(conversation, text, game).await
    }

    async fn report_activity(&self, reports: &[ActivityReport]) -> Result<(), DeliveryError> {
        self.put_activity(reports).await
    }

    async fn presence_changes(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<PresenceChanges, DeliveryError> {
        self.read_feed(after, limit).await
    }
}

#[cfg(test)]
#[expect(clippy::expect_used, reason = "tests")]
mod tests {

    use super::*;

    const PARTNERS: &str = r#"{"user_id":"alice","status":"available","partners":[{"user_id":"bob","status":"available","conversation_id":"c7d2a1e4-3f5b-4a6c-8d9e-0f1a2b3c4d5e","last_activity_at":"2026-11-23T09:59:30Z"}]}"#;

    /// An IM service that drops the first `closing` requests unanswered, then answers.
    async fn flaky_im(closing: usize) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        e2e::flaky::dropping_first_requests(closing, "200 OK", PARTNERS)
            .await
            .expect("a fake IM service")
    }

    fn client(address: &str) -> ImClient {
        ImClient::new(
            address,
            Minter::hs256(
                b"a-secret-of-at-least-thirty-two-bytes!",
                "game-platform",
                "game-platform",
            ),
            Duration::from_secs(2),
            Breaker::new(5, Duration::from_secs(2)),
        )
        .expect("a client")
    }

    #[tokio::test]
    async fn a_partners_call_left_unanswered_is_sent_once_more() {
        let (address, requests) = flaky_im(1).await;
        let alice = UserId::parse("alice").expect("valid id");
        let found = client(&address).partners(&alice).await;
        let bob = UserId::parse("bob").expect("valid id");
        let conversation = Uuid::parse_str("c7d2a1e4-3f5b-4a6c-8d9e-0f1a2b3c4d5e").expect("uuid");
        assert_eq!(
            found,
            Partners::Found(vec![Partner::new(bob, Some(conversation))])
        );
        assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn only_once_more_then_the_player_goes_solo() {
        let (address, requests) = flaky_im(usize::MAX).await;
        let alice = UserId::parse("alice").expect("valid id");
        assert_eq!(
            client(&address).partners(&alice).await,
            Partners::Unavailable
        );
        assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
