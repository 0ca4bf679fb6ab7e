//! `/docs/`: a browsable API page that works with no internet access.

use crate::{docs_check::assert_docs_work_offline, helpers::spawn_app};

#[tokio::test]
async fn the_docs_page_loads_every_asset_and_the_openapi_document_from_the_service_itself()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    let fetched = assert_docs_work_offline(&app.client, &app.address).await?;
    assert!(
        fetched.iter().filter(|p| p.ends_with(".js")).count() >= 2,
        "the Swagger UI bundle and its initializer: {fetched:?}"
    );
    let served: serde_json::Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(served, serde_json::to_value(im_service::openapi())?);
    Ok(())
}
