//! `/docs/`: a browsable API page that works with no internet access.

use reqwest::StatusCode;

use crate::helpers::{docs::assert_docs_work_offline, spawn_app};

#[tokio::test]
async fn the_docs_page_loads_every_asset_and_the_openapi_document_from_the_service_itself()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    let fetched = assert_docs_work_offline(&app.client, &app.address).await?;
    assert!(
        fetched.iter().filter(|p| p.ends_with(".js")).count() >= 2,
        "the Swagger UI bundle and its initializer: {fetched:?}"
    );
    // The document the page loads is the service's own.
    let served: serde_json::Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(served, serde_json::to_value(game_service::openapi())?);
    // `/docs` without the slash leads there.
    let redirect = app.client.get(app.url("/docs")).send().await?;
    assert_eq!(redirect.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        redirect
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some("/docs/")
    );
    Ok(())
}
