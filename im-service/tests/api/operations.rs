//! Health, readiness, metrics, the OpenAPI document, the docs page, unknown routes, and
//! what the API answers while Redis is down.

use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use shared_types::problem::ProblemCode;

use im_service::configuration::Limits;

use crate::helpers::{
    assert_problem, expect_json, spawn_app, spawn_app_with_redis, spawn_app_with_redis_and_limits,
};

#[tokio::test]
async fn health_readiness_metrics_openapi_and_docs_answer() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let health: Value = expect_json(
        app.client.get(app.url("/healthz")).send().await?,
        StatusCode::OK,
    )
    .await?;
    assert_eq!(health["status"], "ok");
    let ready: Value = expect_json(
        app.client.get(app.url("/readyz")).send().await?,
        StatusCode::OK,
    )
    .await?;
    assert_eq!(ready["checks"]["store"], "ok");

    app.conversations("alice").await?;
    let metrics = app.client.get(app.url("/metrics")).send().await?;
    assert_eq!(metrics.status(), StatusCode::OK);
    let metrics = metrics.text().await?;
    assert!(metrics.contains("im_http_requests_total"), "{metrics}");

    let doc: Value = expect_json(
        app.client.get(app.url("/openapi.json")).send().await?,
        StatusCode::OK,
    )
    .await?;
    assert_eq!(doc, serde_json::to_value(im_service::openapi())?);
    assert!(doc["paths"]["/v1/users/{user_id}/partners"]["get"].is_object());

    let docs = app.client.get(app.url("/docs/")).send().await?;
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await?.to_lowercase().contains("swagger"));
    let redirect = app.client.get(app.url("/docs")).send().await?;
    assert!(redirect.status().is_redirection());
    Ok(())
}

#[tokio::test]
async fn unknown_routes_are_404_problems() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    assert_problem(
        app.get("/v1/nothing-here", &app.token("alice")?).await?,
        StatusCode::NOT_FOUND,
        ProblemCode::NotFound,
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn while_redis_is_down_the_api_answers_503_with_retry_after_and_recovers_by_itself()
-> anyhow::Result<()> {
    let mut redis = e2e::RedisServer::start()?;
    let app = spawn_app_with_redis(redis.url()).await?;
    app.all_available(&["alice", "bob"]).await?;
    app.chat("alice", &["bob"]).await?;
    assert_eq!(app.partner_names("alice", "").await?, ["bob"]);

    redis.kill();
    let response = app
        .post_json(
            "/v1/conversations",
            &app.token("alice")?,
            &json!({"participants": ["carol"]}),
        )
        .await?;
    let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
    assert_problem(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        ProblemCode::StoreUnavailable,
    )
    .await?;
    assert!(retry_after.is_some(), "503 carries Retry-After");
    assert_problem(
        app.partners_request(&app.service_token()?, "alice", "")
            .await?,
        StatusCode::SERVICE_UNAVAILABLE,
        ProblemCode::StoreUnavailable,
    )
    .await?;
    assert_problem(
        app.block_request("alice", "bob").await?,
        StatusCode::SERVICE_UNAVAILABLE,
        ProblemCode::StoreUnavailable,
    )
    .await?;
    let ready = app.client.get(app.url("/readyz")).send().await?;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let health = app.client.get(app.url("/healthz")).send().await?;
    assert_eq!(
        health.status(),
        StatusCode::OK,
        "alive even when Redis is not"
    );

    redis.restart()?;
    let ready = app.client.get(app.url("/readyz")).send().await?;
    assert_eq!(ready.status(), StatusCode::OK);
    // The restarted Redis is empty; the same running app serves again.
    app.all_available(&["alice", "bob"]).await?;
    app.chat("alice", &["bob"]).await?;
    assert_eq!(app.partner_names("alice", "").await?, ["bob"]);
    Ok(())
}

#[tokio::test]
async fn a_request_failing_on_an_unreachable_store_is_counted_in_im_store_errors_total()
-> anyhow::Result<()> {
    // A port nobody listens on: every store call fails as unavailable.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let app = spawn_app_with_redis(format!("redis://127.0.0.1:{closed}")).await?;
    let before = im_service::metrics::STORE_ERRORS.get();
    assert_problem(
        app.put_json(
            "/v1/presence",
            &app.token("alice")?,
            &json!({"status": "available"}),
        )
        .await?,
        StatusCode::SERVICE_UNAVAILABLE,
        ProblemCode::StoreUnavailable,
    )
    .await?;
    // Process-wide: other tests of this binary may count too, never less than ours.
    assert!(im_service::metrics::STORE_ERRORS.get() > before);
    let registry = prometheus::Registry::new();
    for collector in im_service::metrics::collectors() {
        registry.register(collector)?;
    }
    let served = registry.gather();
    assert!(
        served
            .iter()
            .any(|family| family.name() == "im_store_errors_total"),
        "the collectors carry it under its contract name"
    );
    Ok(())
}

#[tokio::test]
async fn on_redis_talking_takes_two_blocks_hide_and_limits_refuse_as_in_memory()
-> anyhow::Result<()> {
    let redis = e2e::RedisServer::start()?;
    let app = spawn_app_with_redis_and_limits(
        redis.url(),
        Limits {
            max_open_conversations: 2,
            max_blocks: 1,
            messages_kept: 3,
            ..Limits::default()
        },
    )
    .await?;
    app.all_available(&["alice", "bob", "mallory"]).await?;
    let conversation = app.open_conversation("alice", &["bob"]).await?;
    app.say("alice", conversation.id, "hi").await?;
    assert!(app.partner_names("alice", "").await?.is_empty());
    assert_problem(
        app.presence_of(&app.token("bob")?, "alice").await?,
        StatusCode::NOT_FOUND,
        ProblemCode::NotFound,
    )
    .await?;
    app.say("bob", conversation.id, "hello").await?;
    assert_eq!(app.partner_names("alice", "").await?, ["bob"]);
    expect_json::<Value>(
        app.presence_of(&app.token("bob")?, "alice").await?,
        StatusCode::OK,
    )
    .await?;
    app.talk(conversation.id, &["alice", "bob"]).await?;
    let seqs: Vec<u64> = app
        .messages("bob", conversation.id, "")
        .await?
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(seqs, [2, 3, 4]);

    app.block("alice", "mallory").await?;
    assert_problem(
        app.block_request("alice", "bob").await?,
        StatusCode::CONFLICT,
        ProblemCode::BlockLimit,
    )
    .await?;
    let hidden = app.open_conversation("mallory", &["alice"]).await?;
    assert!(!app.conversations("alice").await?.contains(&hidden));
    assert_problem(
        app.post_message("alice", hidden.id, "who?").await?,
        StatusCode::NOT_FOUND,
        ProblemCode::NotFound,
    )
    .await?;

    app.open_conversation("alice", &["carol"]).await?;
    assert_problem(
        app.post_json(
            "/v1/conversations",
            &app.token("alice")?,
            &json!({"participants": ["dave"]}),
        )
        .await?,
        StatusCode::CONFLICT,
        ProblemCode::ConversationLimit,
    )
    .await?;
    assert_eq!(app.conversations("alice").await?.len(), 2);
    Ok(())
}
