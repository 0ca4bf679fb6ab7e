//! `Idempotency-Key` on `POST /v1/conversations` and `POST /v1/conversations/{id}/messages`: checked (400), a repeat answered 201 with the first body, another body under the key a 422, and both documented.

use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use shared_types::problem::ProblemCode;
use uuid::Uuid;

use crate::helpers::{TestApp, assert_problem, expect_json, spawn_app, spawn_app_with_redis};

const HEADER: &str = "Idempotency-Key";

impl TestApp {
    /// `POST path` as `who` with `body` and these `Idempotency-Key` values (none, one, several).
    async fn post_keyed(
        &self,
        path: &str,
        who: &str,
        body: &Value,
        keys: &[&[u8]],
    ) -> anyhow::Result<Response> {
        let mut request = self
            .client
            .post(self.url(path))
            .bearer_auth(self.token(who)?)
            .json(body);
        for key in keys {
            request = request.header(HEADER, reqwest::header::HeaderValue::from_bytes(key)?);
        }
        Ok(request.send().await?)
    }
}

/// `who` opens a conversation with `body` and `key`.
async fn open_with(app: &TestApp, who: &str, body: &Value, key: &str) -> anyhow::Result<Response> {
    app.post_keyed("/v1/conversations", who, body, &[key.as_bytes()])
        .await
}

/// bob says `text` in conversation `id`, with `key`.
async fn say_with(app: &TestApp, id: Uuid, text: &str, key: &str) -> anyhow::Result<Response> {
    let body = json!({ "text": text });
    app.post_keyed(&messages_path(id), "bob", &body, &[key.as_bytes()])
        .await
}

fn messages_path(id: Uuid) -> String {
    format!("/v1/conversations/{id}/messages")
}

#[tokio::test]
async fn a_key_that_is_not_1_to_255_visible_ascii_characters_is_a_400_that_changes_nothing()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    let id = app.open_conversation("alice", &["bob"]).await?.id;
    let too_long = "k".repeat(256);
    let bad: [&[&[u8]]; 6] = [
        &[b""],
        &[too_long.as_bytes()],
        &[b"two words"],
        &["clé".as_bytes()],
        &[b"tab\there"],
        &[b"one", b"two"],
    ];
    for keys in bad {
        for (path, body) in [
            (
                "/v1/conversations".to_owned(),
                json!({"participants": ["carol"]}),
            ),
            (messages_path(id), json!({"text": "hi"})),
        ] {
            let response = app.post_keyed(&path, "alice", &body, keys).await?;
            let problem = assert_problem(
                response,
                StatusCode::BAD_REQUEST,
                ProblemCode::InvalidIdempotencyKey,
            )
            .await?;
            assert_eq!(problem.type_, "/problems/invalid-idempotency-key");
            assert!(
                problem
                    .detail
                    .unwrap_or_default()
                    .contains("Idempotency-Key"),
                "{path} {keys:?}"
            );
        }
    }
    assert!(
        app.conversations("carol").await?.is_empty(),
        "nothing opened"
    );
    assert!(
        app.messages("alice", id, "").await?.is_empty(),
        "nothing posted"
    );
    // 255 visible characters, quotes and all, are a key.
    let longest = "~".repeat(255);
    for key in [longest.as_bytes(), b"\"8e03978e\""] {
        let response = app
            .post_keyed(&messages_path(id), "alice", &json!({"text": "hi"}), &[key])
            .await?;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    Ok(())
}

/// The repeats of both POSTs on `app`: the same 201 body, one resource, another body a 422.
async fn repeats_answer_the_first_body(app: &TestApp) -> anyhow::Result<()> {
    let key = Uuid::new_v4().to_string();
    let body = json!({"participants": ["bob", "carol"]});
    let open = || open_with(app, "alice", &body, &key);
    let first: Value = expect_json(open().await?, StatusCode::CREATED).await?;
    app.advance(Duration::from_secs(5));
    let again: Value = expect_json(open().await?, StatusCode::CREATED).await?;
    assert_eq!(again, first, "the same body");
    let listed = app.conversations("alice").await?;
    assert_eq!(listed.len(), 1, "one conversation: {listed:?}");
    let id: Uuid = serde_json::from_value(first["id"].clone())?;
    assert_eq!(listed[0].id, id);
    // Other participants under the same key: refused, nothing opened.
    let other = json!({"participants": ["dave"]});
    let response = app
        .post_keyed("/v1/conversations", "alice", &other, &[key.as_bytes()])
        .await?;
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        ProblemCode::IdempotencyKeyReused,
    )
    .await?;
    assert!(app.conversations("dave").await?.is_empty());
    // bob's identical key is bob's own.
    let bobs = app
        .post_keyed("/v1/conversations", "bob", &body, &[key.as_bytes()])
        .await?;
    let bobs: Value = expect_json(bobs, StatusCode::CREATED).await?;
    assert_ne!(bobs["id"], first["id"]);

    let post = |text: &'static str| say_with(app, id, text, &key);
    let message: Value = expect_json(post("hi").await?, StatusCode::CREATED).await?;
    assert_eq!(message["seq"], 1);
    app.advance(Duration::from_secs(5));
    let repeated: Value = expect_json(post("hi").await?, StatusCode::CREATED).await?;
    assert_eq!(repeated, message, "the same message, same seq");
    assert_problem(
        post("bye").await?,
        StatusCode::UNPROCESSABLE_ENTITY,
        ProblemCode::IdempotencyKeyReused,
    )
    .await?;
    let kept = app.messages("alice", id, "").await?;
    assert_eq!(kept.len(), 1, "one message: {kept:?}");
    // Closed since: the repeat still answers the message.
    app.close("alice", id).await?;
    let after_close: Value = expect_json(post("hi").await?, StatusCode::CREATED).await?;
    assert_eq!(after_close, message);
    // Without the key, as ever: a closed conversation takes nothing.
    assert_problem(
        app.post_message("bob", id, "hi").await?,
        StatusCode::CONFLICT,
        ProblemCode::ConversationClosed,
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_repeat_answers_201_with_the_first_body_in_memory() -> anyhow::Result<()> {
    repeats_answer_the_first_body(&spawn_app().await?).await
}

#[tokio::test]
async fn a_repeat_answers_201_with_the_first_body_on_redis() -> anyhow::Result<()> {
    let redis = e2e::RedisServer::start()?;
    repeats_answer_the_first_body(&spawn_app_with_redis(redis.url()).await?).await
}

#[tokio::test]
async fn both_posts_document_the_header_and_the_422() -> anyhow::Result<()> {
    let doc = serde_json::to_value(im_service::openapi())?;
    for path in ["/v1/conversations", "/v1/conversations/{id}/messages"] {
        let operation = &doc["paths"][path]["post"];
        let parameters = operation["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let header = parameters
            .iter()
            .find(|p| p["name"] == HEADER)
            .unwrap_or(&Value::Null);
        assert_eq!(header["in"], "header", "{path}: {operation}");
        assert_eq!(header["required"], false, "{path}");
        assert_eq!(header["schema"]["maxLength"], 255, "{path}");
        assert_eq!(header["schema"]["pattern"], "^[!-~]{1,255}$", "{path}");
        assert!(
            header["description"]
                .as_str()
                .is_some_and(|d| d.contains("422")),
            "{path}"
        );
        assert!(operation["responses"]["422"].is_object(), "{path}");
    }
    Ok(())
}
