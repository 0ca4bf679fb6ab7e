//! Health, readiness, metrics, the OpenAPI document and the docs page, on both services.

use reqwest::Method;

use crate::helpers::{Service, spawn_world};

#[tokio::test]
async fn health_readiness_metrics_openapi_and_docs_answer_on_both_services() -> anyhow::Result<()> {
    let world = spawn_world().await?;
    for (service, must_document) in [
        (Service::Im, "/v1/users/{user_id}/partners"),
        (Service::Game, "/v1/connect"),
    ] {
        for path in ["/healthz", "/readyz"] {
            world
                .raw(service, Method::GET, path, None, None)
                .await?
                .ok()?;
        }

        let metrics = world
            .raw(service, Method::GET, "/metrics", None, None)
            .await?
            .ok()?;
        assert!(
            metrics.content_type().starts_with("text/plain"),
            "{service:?} /metrics content-type {:?}",
            metrics.content_type()
        );
        assert!(
            metrics.body.contains("# TYPE"),
            "{service:?} /metrics is not Prometheus text: {}",
            metrics.body
        );

        let openapi: serde_json::Value = world
            .raw(service, Method::GET, "/openapi.json", None, None)
            .await?
            .ok()?
            .json()?;
        assert!(
            openapi["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.")),
            "{service:?} /openapi.json: {openapi}"
        );
        assert!(
            openapi["paths"].get(must_document).is_some(),
            "{service:?} /openapi.json does not document {must_document}"
        );

        let docs = world
            .raw(service, Method::GET, "/docs/", None, None)
            .await?
            .ok()?;
        assert!(
            docs.content_type().starts_with("text/html"),
            "{service:?} /docs/ content-type {:?}",
            docs.content_type()
        );
    }
    Ok(())
}

/// `redis_round_trips_by_route_total` says which route's requests sent a service's Redis
/// round trips: a connect counts on the game's connect route and, through its partners
/// call, on the IM service's partners route.
#[tokio::test]
async fn redis_round_trips_are_counted_by_the_route_that_sent_them() -> anyhow::Result<()> {
    let world = spawn_world().await?;
    let connect = r#"redis_round_trips_by_route_total{route="POST /v1/connect"}"#;
    let partners = r#"redis_round_trips_by_route_total{route="GET /v1/users/{user_id}/partners"}"#;
    let before = (
        world.metric_of(Service::Game, connect).await?,
        world.metric_of(Service::Im, partners).await?,
    );
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    world.chatting(&[&alice, &bob]).await?;
    alice.connect().await?;
    let after = (
        world.metric_of(Service::Game, connect).await?,
        world.metric_of(Service::Im, partners).await?,
    );
    assert!(
        after.0 >= before.0 + 2.0,
        "game connect: {before:?} → {after:?}"
    );
    assert!(
        after.1 >= before.1 + 1.0,
        "IM partners: {before:?} → {after:?}"
    );
    Ok(())
}
