//! Health, readiness, metrics, the OpenAPI document, the docs page, unknown routes, and
//! what the API answers while Redis is down.

use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use shared_types::problem::ProblemCode;

use crate::helpers::{assert_problem, expect_json, spawn_app, spawn_app_with_redis};

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
    app.open_conversation("alice", &["bob"]).await?;
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
    app.open_conversation("alice", &["bob"]).await?;
    assert_eq!(app.partner_names("alice", "").await?, ["bob"]);
    Ok(())
}
