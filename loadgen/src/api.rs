//! The services' endpoints the flow calls, typed, each bounded by the timeout.

use std::{net::IpAddr, sync::Arc, time::Duration};

use reqwest::{Client, RequestBuilder, StatusCode, header};
use serde::de::{DeserializeOwned, IgnoredAny};
use shared_types::{
    UserId,
    auth::{Minter, Scope},
    game::PlayerState,
};
use uuid::Uuid;

use crate::{failure::Failure, options::Options, sse::EventStream};

/// Tokens outlive any run by far.
const TOKEN_TTL_SECS: u64 = 3600;
/// Enough of an error body to tell what went wrong.
const BODY_EXCERPT: usize = 200;

/// A user the load generator plays, with their token.
#[derive(Debug, Clone)]
pub struct Player {
    pub id: String,
    token: String,
}

/// The two services, one HTTP client (one connection pool) and the token minter.
#[derive(Clone)]
pub struct Api {
    client: Client,
    game: Arc<str>,
    im: Arc<str>,
    timeout: Duration,
    minter: Minter,
}

/// A client with a pool per host and Nagle off; `local` pins the source address.
/// `http2`: HTTP/2 cleartext with prior knowledge, so every request and event
/// stream to a service shares one connection.
pub fn client(local: Option<IpAddr>, http2: bool) -> anyhow::Result<Client> {
    let builder = Client::builder()
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .local_address(local);
    let builder = if http2 {
        builder.http2_prior_knowledge()
    } else {
        builder.http1_only()
    };
    Ok(builder.build()?)
}

impl Api {
    pub fn new(options: &Options, client: Client) -> Self {
        Self {
            client,
            game: options.game_url.as_str().into(),
            im: options.im_url.as_str().into(),
            timeout: options.timeout,
            minter: Minter::hs256(
                options.jwt_secret.as_bytes(),
                &options.jwt_issuer,
                &options.jwt_audience,
            ),
        }
    }

    /// The same services through another client (another source address).
    pub fn with_client(&self, client: Client) -> Self {
        Self {
            client,
            ..self.clone()
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A player token for `id`.
    pub fn player(&self, id: String) -> Result<Player, Failure> {
        let user = UserId::parse(&id)
            .map_err(|err| Failure::protocol("token", format!("user id {id:?}: {err}")))?;
        let token = self
            .minter
            .mint(&user, Scope::Player, TOKEN_TTL_SECS)
            .map_err(|err| Failure::protocol("token", err.to_string()))?;
        Ok(Player { id, token })
    }

    /// A `service` token for `id` (the game service asks the IM service with one).
    pub fn service(&self, id: &str) -> Result<Player, Failure> {
        let user = UserId::parse(id)
            .map_err(|err| Failure::protocol("token", format!("user id {id:?}: {err}")))?;
        let token = self
            .minter
            .mint(&user, Scope::Service, TOKEN_TTL_SECS)
            .map_err(|err| Failure::protocol("token", err.to_string()))?;
        Ok(Player {
            id: id.to_owned(),
            token,
        })
    }

    /// `GET /v1/users/{user}/partners?status=available` as the game service asks it;
    /// returns how many partners came back.
    pub async fn partners(&self, caller: &Player, user: &str) -> Result<usize, Failure> {
        #[derive(serde::Deserialize)]
        struct Answer {
            partners: Vec<IgnoredAny>,
        }
        let request = self
            .client
            .get(format!("{}/v1/users/{user}/partners", self.im))
            .query(&[("status", "available")]);
        self.call::<Answer>("partners", caller, request, StatusCode::OK)
            .await
            .map(|answer| answer.partners.len())
    }

    pub async fn set_available(&self, player: &Player) -> Result<(), Failure> {
        let request = self
            .client
            .put(format!("{}/v1/presence", self.im))
            .json(&serde_json::json!({"status": "available"}));
        self.call::<IgnoredAny>("presence", player, request, StatusCode::OK)
            .await
            .map(drop)
    }

    /// Opens a conversation of `host` with `guest`; returns its id.
    pub async fn open_conversation(&self, host: &Player, guest: &Player) -> Result<Uuid, Failure> {
        #[derive(serde::Deserialize)]
        struct Created {
            id: Uuid,
        }
        let request = self
            .client
            .post(format!("{}/v1/conversations", self.im))
            .json(&serde_json::json!({"participants": [guest.id]}));
        self.call::<Created>("conversation", host, request, StatusCode::CREATED)
            .await
            .map(|created| created.id)
    }

    /// `player` posts a message in `conversation` (talking takes two: both sides do).
    pub async fn post_message(&self, player: &Player, conversation: Uuid) -> Result<(), Failure> {
        let request = self
            .client
            .post(format!(
                "{}/v1/conversations/{conversation}/messages",
                self.im
            ))
            .json(&serde_json::json!({"text": "let's play"}));
        self.call::<IgnoredAny>("message", player, request, StatusCode::CREATED)
            .await
            .map(drop)
    }

    /// Opens the player's event stream; returns once the headers are in (it is subscribed).
    pub async fn events(&self, player: &Player) -> Result<EventStream, Failure> {
        const STEP: &str = "events";
        // No request timeout here: it would cut the endless body.
        let request = self
            .client
            .get(format!("{}/v1/events", self.game))
            .header(header::ACCEPT, "text/event-stream")
            .bearer_auth(&player.token)
            .send();
        let response = tokio::time::timeout(self.timeout, request)
            .await
            .map_err(|_elapsed| Failure::Timeout { step: STEP })?
            .map_err(|err| Failure::from_reqwest(STEP, &err))?;
        if response.status() != StatusCode::OK {
            return Err(status_failure(STEP, response).await);
        }
        Ok(EventStream::new(response))
    }

    pub async fn connect(&self, player: &Player) -> Result<PlayerState, Failure> {
        let request = self.client.post(format!("{}/v1/connect", self.game));
        self.call("connect", player, request, StatusCode::OK).await
    }

    pub async fn accept(&self, player: &Player, prompt: Uuid) -> Result<PlayerState, Failure> {
        let request = self
            .client
            .post(format!("{}/v1/prompts/{prompt}/accept", self.game));
        self.call("accept", player, request, StatusCode::OK).await
    }

    pub async fn leave(&self, player: &Player, session: Uuid) -> Result<(), Failure> {
        let request = self
            .client
            .post(format!("{}/v1/sessions/{session}/leave", self.game));
        self.call::<IgnoredAny>("leave", player, request, StatusCode::OK)
            .await
            .map(drop)
    }

    /// `GET /healthz` of the game service: the cheapest round trip it serves.
    pub async fn healthz(&self) -> Result<(), Failure> {
        const STEP: &str = "healthz";
        let response = self
            .client
            .get(format!("{}/healthz", self.game))
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|err| Failure::from_reqwest(STEP, &err))?;
        if !response.status().is_success() {
            return Err(status_failure(STEP, response).await);
        }
        response
            .bytes()
            .await
            .map_err(|err| Failure::from_reqwest(STEP, &err))?;
        Ok(())
    }

    /// `/metrics` of `service` (`"game"` or `"im"`); `None` when it cannot be read.
    pub async fn metrics_text(&self, service: &str) -> Option<String> {
        let base = if service == "im" {
            &self.im
        } else {
            &self.game
        };
        let response = self
            .client
            .get(format!("{base}/metrics"))
            .timeout(self.timeout)
            .send()
            .await
            .ok()?;
        response.error_for_status().ok()?.text().await.ok()
    }

    async fn call<T: DeserializeOwned>(
        &self,
        step: &'static str,
        player: &Player,
        request: RequestBuilder,
        expected: StatusCode,
    ) -> Result<T, Failure> {
        let response = request
            .bearer_auth(&player.token)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|err| Failure::from_reqwest(step, &err))?;
        if response.status() != expected {
            return Err(status_failure(step, response).await);
        }
        let body = response
            .bytes()
            .await
            .map_err(|err| Failure::from_reqwest(step, &err))?;
        serde_json::from_slice(&body)
            .map_err(|err| Failure::protocol(step, format!("unexpected body: {err}")))
    }
}

async fn status_failure(step: &'static str, response: reqwest::Response) -> Failure {
    let status = response.status().as_u16();
    let mut body = response.text().await.unwrap_or_default();
    if let Some((cut, _)) = body.char_indices().nth(BODY_EXCERPT) {
        body.truncate(cut);
    }
    Failure::Status { step, status, body }
}
