//! A fake game service for the launch tests: answers `POST /v1/lobbies` as the test says, and records every request it got.

use std::{
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use actix_web::{
    App, HttpRequest, HttpResponse, HttpServer, dev::ServerHandle, http::StatusCode, web,
};
use anyhow::Context;
use im_service::configuration::{GameSettings, Limits};
use serde_json::{Value, json};
use shared_types::auth::{Caller, DEFAULT_AUDIENCE, DEFAULT_ISSUER, Verifier};

use super::{SECRET, TestApp, settings, spawn_with_game};

/// The IM service on a free port (in-memory store, default limits) calling the game service
/// where `game` says.
pub async fn spawn_app_with_game(game: GameSettings) -> anyhow::Result<TestApp> {
    spawn_with_game(settings(None), Limits::default(), game).await
}

/// What the fake answers every request with.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// Sent verbatim.
    pub body: String,
    pub retry_after: Option<String>,
    /// How long it waits before answering.
    pub delay: Duration,
}

impl Answer {
    /// 201 with this JSON body.
    pub fn created(body: &Value) -> Self {
        Self {
            status: 201,
            body: body.to_string(),
            retry_after: None,
            delay: Duration::ZERO,
        }
    }

    /// A problem+json answer with this code and detail.
    pub fn problem(status: u16, code: &str, detail: &str) -> Self {
        Self {
            status,
            body: json!({"type": format!("/problems/{code}"), "title": code, "status": status,
                "detail": detail, "code": code})
            .to_string(),
            retry_after: None,
            delay: Duration::ZERO,
        }
    }

    /// This status with this body, sent verbatim.
    pub fn raw(status: u16, body: &str) -> Self {
        Self {
            status,
            body: body.to_owned(),
            retry_after: None,
            delay: Duration::ZERO,
        }
    }

    pub fn with_retry_after(mut self, value: &str) -> Self {
        self.retry_after = Some(value.to_owned());
        self
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// One request the fake got.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    /// The body as JSON (`null` when it is none).
    pub body: Value,
}

impl SeenRequest {
    /// The bearer token's caller, verified as the game service verifies it (the shared secret).
    pub fn caller(&self) -> anyhow::Result<Caller> {
        let token = self
            .authorization
            .as_deref()
            .and_then(|value| value.strip_prefix("Bearer "))
            .context("a bearer token")?;
        Ok(Verifier::hs256(SECRET.as_bytes(), DEFAULT_ISSUER, DEFAULT_AUDIENCE).verify(token)?)
    }
}

struct Shared {
    answer: Mutex<Answer>,
    seen: Mutex<Vec<SeenRequest>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The fake on a free port; stopped when dropped.
pub struct FakeGame {
    pub url: String,
    shared: Arc<Shared>,
    handle: ServerHandle,
}

impl FakeGame {
    pub async fn start(answer: Answer) -> anyhow::Result<Self> {
        let shared = Arc::new(Shared {
            answer: Mutex::new(answer),
            seen: Mutex::new(Vec::new()),
        });
        let data = web::Data::from(shared.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(answer_one))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))?;
        let port = server.addrs().first().context("a bound address")?.port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(Self {
            url: format!("http://127.0.0.1:{port}"),
            shared,
            handle,
        })
    }

    /// Answers every later request with `answer`.
    pub fn answer_with(&self, answer: Answer) {
        *lock(&self.shared.answer) = answer;
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<SeenRequest> {
        lock(&self.shared.seen).clone()
    }

    /// Settings that point the IM service here.
    pub fn settings(&self, timeout: Duration) -> GameSettings {
        GameSettings {
            url: self.url.clone(),
            timeout,
        }
    }
}

impl Drop for FakeGame {
    fn drop(&mut self) {
        // The stop command is sent at once; nothing waits for the workers to finish.
        std::mem::drop(self.handle.stop(false));
    }
}

async fn answer_one(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    lock(&shared.seen).push(SeenRequest {
        method: req.method().to_string(),
        path: req.path().to_owned(),
        authorization: header("authorization"),
        content_type: header("content-type"),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let answer = lock(&shared.answer).clone();
    tokio::time::sleep(answer.delay).await;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    response.content_type(if status.is_success() {
        "application/json"
    } else {
        "application/problem+json"
    });
    if let Some(retry_after) = &answer.retry_after {
        response.insert_header(("retry-after", retry_after.as_str()));
    }
    response.body(answer.body)
}

/// A URL where nothing listens (a port bound, then let go): connections are refused.
pub fn closed_port_url() -> anyhow::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    drop(listener);
    Ok(format!("http://127.0.0.1:{port}"))
}
