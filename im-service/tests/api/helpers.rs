//! `spawn_app()` and a `TestApp` whose helpers read like the scenarios they drive.

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, ensure};
use im_service::{
    configuration::Settings,
    domain::{Clock, ManualClock},
    startup::Application,
};
use reqwest::{Response, StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use service_kit::config::JwtSettings;
use shared_types::{
    UserId,
    auth::{Claims, DEFAULT_AUDIENCE, DEFAULT_ISSUER, Minter, Scope},
    im::{Conversation, ConversationList, Message, MessagePage, PartnersResponse},
    presence::Presence,
    problem::{Problem, ProblemCode},
};
use uuid::Uuid;

pub const SECRET: &str = "test-secret-for-the-im-service-api-suite";
/// The default `IM_ACTIVE_WINDOW_SECS` the tests run with.
pub const WINDOW: Duration = Duration::from_secs(1800);

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// The app's clock: tests move it instead of sleeping.
    pub clock: ManualClock,
    minter: Minter,
}

fn settings(redis_url: Option<String>) -> Settings {
    Settings {
        bind_addr: "127.0.0.1:0".into(),
        redis_url,
        redis_cluster: false,
        redis_key_prefix: e2e::unique_prefix("api"),
        jwt: JwtSettings::with_secret(SECRET),
        active_window: WINDOW,
        retention: Duration::from_secs(3600),
    }
}

/// The service on a free port with the in-memory store.
pub async fn spawn_app() -> anyhow::Result<TestApp> {
    spawn(settings(None)).await
}

/// The service on a free port with a Redis store.
pub async fn spawn_app_with_redis(url: String) -> anyhow::Result<TestApp> {
    spawn(settings(Some(url))).await
}

async fn spawn(settings: Settings) -> anyhow::Result<TestApp> {
    if std::env::var_os("TEST_LOG").is_some() {
        service_kit::telemetry::init();
    }
    let clock = ManualClock::starting_now();
    let app = Application::build_with_clock(settings, Arc::new(clock.clone())).await?;
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    Ok(TestApp {
        address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?,
        clock,
        minter: Minter::hs256(SECRET.as_bytes(), DEFAULT_ISSUER, DEFAULT_AUDIENCE),
    })
}

pub fn user(raw: &str) -> anyhow::Result<UserId> {
    Ok(UserId::parse(raw)?)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn base64url(bytes: &[u8]) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
}

/// Tokens the service must refuse.
pub mod bad_tokens {
    use super::*;

    pub fn forged(sub: &str) -> anyhow::Result<String> {
        let minter = Minter::hs256(b"someone-elses-secret", DEFAULT_ISSUER, DEFAULT_AUDIENCE);
        Ok(minter.mint(&user(sub)?, Scope::Player, 300)?)
    }

    pub fn wrong_audience(sub: &str) -> anyhow::Result<String> {
        let minter = Minter::hs256(SECRET.as_bytes(), DEFAULT_ISSUER, "another-platform");
        Ok(minter.mint(&user(sub)?, Scope::Player, 300)?)
    }

    pub fn expired(sub: &str) -> anyhow::Result<String> {
        let claims = Claims {
            sub: user(sub)?,
            exp: now_secs() - 600,
            iat: Some(now_secs() - 1200),
            nbf: None,
            iss: DEFAULT_ISSUER.into(),
            aud: DEFAULT_AUDIENCE.into(),
            scope: Scope::Player,
        };
        Ok(jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        )?)
    }

    /// Valid claims, `alg: none`, no signature.
    pub fn alg_none(sub: &str) -> String {
        let claims = json!({"sub": sub, "exp": now_secs() + 300, "iss": DEFAULT_ISSUER,
            "aud": DEFAULT_AUDIENCE, "scope": "service"});
        format!(
            "{}.{}.",
            base64url(br#"{"alg":"none","typ":"JWT"}"#),
            base64url(claims.to_string().as_bytes())
        )
    }
}

/// Checks a problem+json answer and returns its body.
pub async fn assert_problem(
    response: Response,
    status: StatusCode,
    code: ProblemCode,
) -> anyhow::Result<Problem> {
    let url = response.url().clone();
    assert_eq!(response.status(), status, "status of {url}");
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        content_type, "application/problem+json",
        "content type of {url}"
    );
    let problem: Problem = response.json().await.context("a problem+json body")?;
    assert_eq!(problem.code, code, "code of {url}: {problem:?}");
    assert_eq!(problem.status, status.as_u16());
    assert_eq!(problem.type_, code.type_uri());
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

    /// A service token (what the game service sends).
    pub fn service_token(&self) -> anyhow::Result<String> {
        Ok(self
            .minter
            .mint(&user("game-service")?, Scope::Service, 300)?)
    }

    pub async fn get(&self, path: &str, token: &str) -> anyhow::Result<Response> {
        Ok(self
            .client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await?)
    }

    pub async fn post_json(
        &self,
        path: &str,
        token: &str,
        body: &Value,
    ) -> anyhow::Result<Response> {
        Ok(self
            .client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await?)
    }

    pub async fn put_json(
        &self,
        path: &str,
        token: &str,
        body: &Value,
    ) -> anyhow::Result<Response> {
        Ok(self
            .client
            .put(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await?)
    }

    /// A request with a body sent verbatim, for malformed input.
    pub async fn send_raw(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        content_type: &str,
        body: &str,
    ) -> anyhow::Result<Response> {
        Ok(self
            .client
            .request(method, self.url(path))
            .bearer_auth(token)
            .header(header::CONTENT_TYPE, content_type)
            .body(body.to_owned())
            .send()
            .await?)
    }

    pub async fn set_presence(&self, who: &str, status: &str) -> anyhow::Result<Presence> {
        let response = self
            .put_json(
                "/v1/presence",
                &self.token(who)?,
                &json!({ "status": status }),
            )
            .await?;
        expect_json(response, StatusCode::OK).await
    }

    pub async fn presence_of(&self, asker_token: &str, whom: &str) -> anyhow::Result<Response> {
        self.get(&format!("/v1/users/{whom}/presence"), asker_token)
            .await
    }

    pub async fn open_conversation(
        &self,
        who: &str,
        with: &[&str],
    ) -> anyhow::Result<Conversation> {
        let response = self
            .post_json(
                "/v1/conversations",
                &self.token(who)?,
                &json!({ "participants": with }),
            )
            .await?;
        expect_json(response, StatusCode::CREATED).await
    }

    pub async fn conversations(&self, who: &str) -> anyhow::Result<Vec<Conversation>> {
        let response = self.get("/v1/conversations", &self.token(who)?).await?;
        Ok(expect_json::<ConversationList>(response, StatusCode::OK)
            .await?
            .conversations)
    }

    pub async fn post_message(
        &self,
        who: &str,
        conversation: Uuid,
        text: &str,
    ) -> anyhow::Result<Response> {
        self.post_json(
            &format!("/v1/conversations/{conversation}/messages"),
            &self.token(who)?,
            &json!({ "text": text }),
        )
        .await
    }

    pub async fn say(&self, who: &str, conversation: Uuid, text: &str) -> anyhow::Result<Message> {
        expect_json(
            self.post_message(who, conversation, text).await?,
            StatusCode::CREATED,
        )
        .await
    }

    pub async fn messages(
        &self,
        who: &str,
        conversation: Uuid,
        query: &str,
    ) -> anyhow::Result<Vec<Message>> {
        let response = self
            .get(
                &format!("/v1/conversations/{conversation}/messages{query}"),
                &self.token(who)?,
            )
            .await?;
        Ok(expect_json::<MessagePage>(response, StatusCode::OK)
            .await?
            .messages)
    }

    pub async fn close(&self, who: &str, conversation: Uuid) -> anyhow::Result<Conversation> {
        expect_json(self.close_request(who, conversation).await?, StatusCode::OK).await
    }

    pub async fn close_request(&self, who: &str, conversation: Uuid) -> anyhow::Result<Response> {
        Ok(self
            .client
            .post(self.url(&format!("/v1/conversations/{conversation}/close")))
            .bearer_auth(self.token(who)?)
            .send()
            .await?)
    }

    /// `GET /v1/users/{whom}/partners{query}` with `token`.
    pub async fn partners_request(
        &self,
        token: &str,
        whom: &str,
        query: &str,
    ) -> anyhow::Result<Response> {
        self.get(&format!("/v1/users/{whom}/partners{query}"), token)
            .await
    }

    /// The user's own partners answer.
    pub async fn partners(&self, who: &str, query: &str) -> anyhow::Result<PartnersResponse> {
        let response = self.partners_request(&self.token(who)?, who, query).await?;
        expect_json(response, StatusCode::OK).await
    }

    /// Just the partner names, in order.
    pub async fn partner_names(&self, who: &str, query: &str) -> anyhow::Result<Vec<String>> {
        Ok(self
            .partners(who, query)
            .await?
            .partners
            .into_iter()
            .map(|p| p.user_id.to_string())
            .collect())
    }

    /// Every user `available`.
    pub async fn all_available(&self, users: &[&str]) -> anyhow::Result<()> {
        for who in users {
            let presence = self.set_presence(who, "available").await?;
            ensure!(presence.status.as_str() == "available");
        }
        Ok(())
    }

    /// What the app's clock says now.
    pub fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}
