//! Both OpenAPI documents are complete enough for QA and client generators:
//! every operation has a summary, a description, its security, the shared
//! error answers and examples for its parameters; every schema has an example.
//! A public `/v1` operation (no token: the join-token key set) says so with
//! an explicit empty `security` list, and needs no 401.

use serde_json::Value;

fn problems(name: &str, doc: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    for (path, item) in &paths {
        for method in ["get", "put", "post", "delete", "patch"] {
            let Some(op) = item.get(method) else { continue };
            let at = format!("{name}: {} {path}", method.to_uppercase());
            for field in ["summary", "description"] {
                if op[field].as_str().is_none_or(str::is_empty) {
                    found.push(format!("{at} has no {field}"));
                }
            }
            let responses = op["responses"].as_object().cloned().unwrap_or_default();
            for (status, response) in &responses {
                if response["description"].as_str().is_none_or(str::is_empty) {
                    found.push(format!("{at}: response {status} has no description"));
                }
            }
            if path.starts_with("/v1") {
                let public = op["security"].as_array().is_some_and(Vec::is_empty);
                if op["security"].as_array().is_none() {
                    found.push(format!("{at} has no security requirement"));
                }
                let mut needed = vec!["429", "503"];
                if !public {
                    needed.push("401");
                }
                if op.get("requestBody").is_some() {
                    needed.extend(["400", "413", "415"]);
                }
                if path.contains('{') {
                    needed.push("404");
                }
                for status in needed {
                    if !responses.contains_key(status) {
                        found.push(format!("{at} does not document {status}"));
                    }
                }
            }
            for param in op["parameters"].as_array().cloned().unwrap_or_default() {
                let has_example = param.get("example").is_some()
                    || param.get("examples").is_some()
                    || param["schema"].get("example").is_some()
                    || param["schema"].get("examples").is_some();
                if !has_example {
                    found.push(format!("{at}: parameter {} has no example", param["name"]));
                }
            }
        }
    }
    let schemas = doc["components"]["schemas"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (schema, body) in &schemas {
        if body.get("example").is_none() && body.get("examples").is_none() {
            found.push(format!("{name}: schema {schema} has no example"));
        }
    }
    found
}

#[test]
fn every_operation_and_schema_is_documented_completely() -> anyhow::Result<()> {
    let mut found = Vec::new();
    for (name, doc) in [
        ("im-service", serde_json::to_value(im_service::openapi())?),
        (
            "game-service",
            serde_json::to_value(game_service::openapi())?,
        ),
    ] {
        found.extend(problems(name, &doc));
    }
    assert!(
        found.is_empty(),
        "incomplete OpenAPI:\n{}",
        found.join("\n")
    );
    Ok(())
}

#[test]
fn the_completeness_check_notices_a_gap() {
    let doc = serde_json::json!({
        "paths": {"/v1/x/{id}": {"get": {"summary": "x", "responses": {"200": {"description": "ok"}}}}},
        "components": {"schemas": {"Thing": {"type": "object"}}}
    });
    let found = problems("probe", &doc);
    for gap in ["description", "security", "401", "404", "schema Thing"] {
        assert!(
            found.iter().any(|f| f.contains(gap)),
            "missed {gap}: {found:?}"
        );
    }
}
