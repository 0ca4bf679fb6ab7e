//! Fails when a checked-in OpenAPI document no longer matches the code that serves it.

use xtask::openapi;

#[test]
fn checked_in_openapi_documents_match_the_code() -> anyhow::Result<()> {
    let drifted = openapi::drifted(&openapi::workspace_root())?;
    assert!(
        drifted.is_empty(),
        "{} differ(s) from the generated document: run `cargo xtask openapi` and commit the result",
        drifted.join(", ")
    );
    Ok(())
}
