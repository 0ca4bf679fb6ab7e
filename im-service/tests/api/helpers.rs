//! `spawn_app()` and a `TestApp` whose helpers read like the scenarios they drive.

pub mod fake_game;

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, ensure};
use im_service::{
    configuration::{GameSettings, Limits, Settings},
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
    im::{BlockList, Conversation, ConversationList, Message, MessagePage, PartnersResponse},
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
        redis_replication: Default::default(),
        jwt: JwtSettings::with_secret(SECRET),
        active_window: WINDOW,
        retention: Duration::from_secs(3600),
    }
}

/// The service on a free port with the in-memory store and the default limits.
pub async fn spawn_app() -> anyhow::Result<TestApp> {
    spawn(settings(None), Limits::default()).await
}

/// The service on a free port with the in-memory store and these limits.
pub async fn spawn_app_with_limits(limits: Limits) -> anyhow::Result<TestApp> {
    spawn(settings(None), limits).await
}

/// The service on a free port with a Redis store.
pub async fn spawn_app_with_redis(url: String) -> anyhow::Result<TestApp> {
    spawn(settings(Some(url)), Limits::default()).await
}

/// The service on a free port with a Redis store and these limits.
pub async fn spawn_app_with_redis_and_limits(
    url: String,
    limits: Limits,
) -> anyhow::Result<TestApp> {
    spawn(settings(Some(url)), limits).await
}

async fn spawn(settings: Settings, limits: Limits) -> anyhow::Result<TestApp> {
    spawn_with_game(settings, limits, GameSettings::default()).await
}

/// As `spawn`, with the game service where `game` says.
async fn spawn_with_game(
    settings: Settings,
    limits: Limits,
    game: GameSettings,
) -> anyhow::Result<TestApp> {
    if std::env::var_os("TEST_LOG").is_some() {
        service_kit::telemetry::init();
    }
    let clock = ManualClock::starting_now();
    let app = Application::build_with_game(settings, limits, game, Arc::new(clock.clone())).await?;
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

    /// Each of `people` posts once in `conversation`, in order; returns the last message.
    pub async fn talk(&self, conversation: Uuid, people: &[&str]) -> anyhow::Result<Message> {
        let mut last = None;
        for who in people {
            last = Some(
                self.say(who, conversation, &format!("hi, {who} here"))
                    .await?,
            );
        }
        last.context("talking takes someone")
    }

    /// `who` opens a conversation with `with`, then everyone in it posts (the opener first):
    /// they are talking.
    pub async fn chat(&self, who: &str, with: &[&str]) -> anyhow::Result<Conversation> {
        let conversation = self.open_conversation(who, with).await?;
        let mut everyone = vec![who];
        everyone.extend_from_slice(with);
        self.talk(conversation.id, &everyone).await?;
        Ok(conversation)
    }

    /// `PUT /v1/blocks/{whom}` as `who`.
    pub async fn block_request(&self, who: &str, whom: &str) -> anyhow::Result<Response> {
        Ok(self
            .client
            .put(self.url(&format!("/v1/blocks/{whom}")))
            .bearer_auth(self.token(who)?)
            .send()
            .await?)
    }

    /// `DELETE /v1/blocks/{whom}` as `who`.
    pub async fn unblock_request(&self, who: &str, whom: &str) -> anyhow::Result<Response> {
        Ok(self
            .client
            .delete(self.url(&format!("/v1/blocks/{whom}")))
            .bearer_auth(self.token(who)?)
            .send()
            .await?)
    }

    /// `who` blocks `whom` (204).
    pub async fn block(&self, who: &str, whom: &str) -> anyhow::Result<()> {
        let response = self.block_request(who, whom).await?;
        ensure!(
            response.status() == StatusCode::NO_CONTENT,
            "{who} blocking {whom}: {}",
            response.status()
        );
        Ok(())
    }

    /// `who` unblocks `whom` (204).
    pub async fn unblock(&self, who: &str, whom: &str) -> anyhow::Result<()> {
        let response = self.unblock_request(who, whom).await?;
        ensure!(
            response.status() == StatusCode::NO_CONTENT,
            "{who} unblocking {whom}: {}",
            response.status()
        );
        Ok(())
    }

    /// The names `who` blocks, in the listed order.
    pub async fn blocked_by(&self, who: &str) -> anyhow::Result<Vec<String>> {
        let response = self.get("/v1/blocks", &self.token(who)?).await?;
        Ok(expect_json::<BlockList>(response, StatusCode::OK)
            .await?
            .blocks
            .into_iter()
            .map(|b| b.user_id.to_string())
            .collect())
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
