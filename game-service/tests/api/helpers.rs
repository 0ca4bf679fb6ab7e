//! `spawn_app()`: the game service and a real IM service in-process on free ports, plus tokens and problem checks.

pub mod docs;
pub mod process;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use game_service::configuration::Settings;
use reqwest::{Method, RequestBuilder, Response, StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use service_kit::config::JwtSettings;
use shared_types::{
    UserId,
    auth::{DEFAULT_AUDIENCE, DEFAULT_ISSUER, Minter, Scope},
    game::PlayerState,
    problem::{Problem, ProblemCode},
};

/// The secret both in-process services share.
pub const SECRET: &str = "api-test-secret-shared-by-game-and-im";

/// The game service and the IM service it asks, both in this process.
pub struct TestApp {
    /// `http://127.0.0.1:<port>` of the game service.
    pub address: String,
    /// `http://127.0.0.1:<port>` of the IM service.
    pub im_address: String,
    pub client: reqwest::Client,
    minter: Minter,
}

pub fn jwt_settings(secret: &str) -> JwtSettings {
    JwtSettings::with_secret(secret)
}

/// IM settings for an in-process IM service on a free port with the in-memory store.
pub fn im_settings(jwt: JwtSettings) -> im_service::configuration::Settings {
    im_service::configuration::Settings {
        bind_addr: "127.0.0.1:0".into(),
        redis_url: None,
        redis_cluster: false,
        redis_key_prefix: "im".into(),
        redis_replication: Default::default(),
        jwt,
        active_window: Duration::from_secs(1800),
        retention: Duration::from_secs(3600),
    }
}

/// Starts an IM service in this process; returns its base URL.
pub async fn spawn_im(settings: im_service::configuration::Settings) -> anyhow::Result<String> {
    let im = im_service::startup::Application::build(settings).await?;
    let address = format!("http://127.0.0.1:{}", im.port());
    tokio::spawn(im.run_until_stopped());
    Ok(address)
}

/// Both services on free ports, the in-memory stores, one `JWT_SECRET`.
pub async fn spawn_app() -> anyhow::Result<TestApp> {
    if std::env::var_os("TEST_LOG").is_some() {
        service_kit::telemetry::init();
    }
    let im_address = spawn_im(im_settings(jwt_settings(SECRET))).await?;
    let game = game_service::startup::Application::build(game_settings(&im_address)).await?;
    let address = format!("http://127.0.0.1:{}", game.port());
    tokio::spawn(game.run_until_stopped());
    Ok(TestApp {
        address,
        im_address,
        client: client()?,
        minter: Minter::hs256(SECRET.as_bytes(), DEFAULT_ISSUER, DEFAULT_AUDIENCE),
    })
}

/// Game settings for an in-process game service on a free port with the in-memory store.
pub fn game_settings(im_address: &str) -> Settings {
    Settings {
        bind_addr: "127.0.0.1:0".into(),
        redis_url: None,
        redis_cluster: false,
        redis_key_prefix: "game".into(),
        redis_replication: Default::default(),
        jwt: jwt_settings(SECRET),
        im_url: im_address.to_owned(),
        im_timeout: Duration::from_secs(2),
        invite_ttl: Duration::from_secs(60),
        expiry_poll: Duration::from_millis(200),
        presence_poll: Duration::from_millis(500),
        im_breaker_threshold: 5,
        im_breaker_cooldown: Duration::from_secs(2),
        join_token_keys: game_service::join_tokens::KeySource::default(),
        join_token_ttl: Duration::from_secs(900),
        session_idle: Duration::from_secs(1800),
        record_ttl: Duration::from_secs(86_400),
        max_streams_per_player: service_kit::events::DEFAULT_MAX_STREAMS_PER_PLAYER,
        modes: game_service::domain::modes::Modes::default(),
        play: None,
    }
}

/// An HTTP client that does not follow redirects.
pub fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

pub fn user(raw: &str) -> anyhow::Result<UserId> {
    Ok(UserId::parse(raw)?)
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Unpadded base64url, for hand-made tokens.
pub fn base64url(bytes: &[u8]) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
}

/// Valid claims for a player `sub`, valid for five minutes.
pub fn player_claims(sub: &str) -> Value {
    let now = now_secs();
    json!({"sub": sub, "exp": now + 300, "iat": now, "iss": DEFAULT_ISSUER,
        "aud": DEFAULT_AUDIENCE, "scope": "player"})
}

/// `claims` signed HS256 with `secret`.
pub fn hs256(claims: &Value, secret: &str) -> anyhow::Result<String> {
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

/// `claims` with header `alg: none` and no signature.
pub fn alg_none(claims: &Value) -> String {
    format!(
        "{}.{}.",
        base64url(br#"{"alg":"none","typ":"JWT"}"#),
        base64url(claims.to_string().as_bytes())
    )
}

/// Checks a problem+json answer (status, content type, `type`, `code`, `status`) and returns its body.
pub async fn assert_problem(
    response: Response,
    status: StatusCode,
    code: ProblemCode,
) -> anyhow::Result<Problem> {
    let what = format!("{} {}", response.url().path(), response.status());
    assert_eq!(response.status(), status, "status of {what}");
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        content_type, "application/problem+json",
        "content type of {what}"
    );
    let body = response.text().await?;
    let problem: Problem =
        serde_json::from_str(&body).with_context(|| format!("a problem+json body: {body}"))?;
    assert_eq!(problem.code, code, "code of {what}: {body}");
    assert_eq!(problem.status, status.as_u16(), "status field of {what}");
    assert_eq!(problem.type_, code.type_uri(), "type of {what}");
    Ok(problem)
}

/// Reads a JSON body after checking the status.
pub async fn expect_json<T: DeserializeOwned>(
    response: Response,
    status: StatusCode,
) -> anyhow::Result<T> {
    let url = response.url().clone();
    let actual = response.status();
    if actual != status {
        let body = response.text().await.unwrap_or_default();
        anyhow::bail!("{url}: expected {status}, got {actual}: {body}");
    }
    response
        .json()
        .await
        .with_context(|| format!("decoding {url}"))
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A player token for `sub`.
    pub fn token(&self, sub: &str) -> anyhow::Result<String> {
        Ok(self.minter.mint(&user(sub)?, Scope::Player, 300)?)
    }

    /// A `service` token with subject `sub`.
    pub fn service_token(&self, sub: &str) -> anyhow::Result<String> {
        Ok(self.minter.mint(&user(sub)?, Scope::Service, 300)?)
    }

    /// A request to the game service, with a bearer token when given.
    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let request = self.client.request(method, self.url(path));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// `POST /v1/connect` as `who`.
    pub async fn connect(&self, who: &str) -> anyhow::Result<PlayerState> {
        let response = self
            .request(Method::POST, "/v1/connect", Some(&self.token(who)?))
            .send()
            .await?;
        expect_json(response, StatusCode::OK).await
    }

    /// `GET /v1/me` as `who`.
    pub async fn me(&self, who: &str) -> anyhow::Result<PlayerState> {
        let response = self
            .request(Method::GET, "/v1/me", Some(&self.token(who)?))
            .send()
            .await?;
        expect_json(response, StatusCode::OK).await
    }

    /// In the IM service: every user `available`, and one open conversation between them in
    /// which each of them posted (talking takes two).
    pub async fn chatting(&self, users: &[&str]) -> anyhow::Result<()> {
        for who in users {
            let response = self
                .client
                .put(format!("{}/v1/presence", self.im_address))
                .bearer_auth(self.token(who)?)
                .json(&json!({"status": "available"}))
                .send()
                .await?;
            anyhow::ensure!(response.status() == StatusCode::OK, "presence of {who}");
        }
        if let Some((first, rest)) = users.split_first() {
            let response = self
                .client
                .post(format!("{}/v1/conversations", self.im_address))
                .bearer_auth(self.token(first)?)
                .json(&json!({ "participants": rest }))
                .send()
                .await?;
            anyhow::ensure!(
                response.status() == StatusCode::CREATED,
                "conversation of {users:?}: {}",
                response.status()
            );
            let conversation: Value = response.json().await?;
            let id = conversation["id"].as_str().unwrap_or_default().to_owned();
            for who in users {
                let posted = self
                    .client
                    .post(format!(
                        "{}/v1/conversations/{id}/messages",
                        self.im_address
                    ))
                    .bearer_auth(self.token(who)?)
                    .json(&json!({"text": format!("hi, {who} here")}))
                    .send()
                    .await?;
                anyhow::ensure!(posted.status() == StatusCode::CREATED, "{who} posting");
            }
        }
        Ok(())
    }
}
