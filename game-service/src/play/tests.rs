use std::{collections::BTreeSet, path::Path};

use actix_web::{App, test as actix};

use super::*;

const WEB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/web");

fn client() -> PlayClient {
    PlayClient::new("http://im.example.test:8081/").expect("a valid IM URL")
}

async fn get(path: &str) -> actix_web::dev::ServiceResponse {
    let app = actix::init_service(App::new().configure(|cfg| configure(cfg, client()))).await;
    actix::call_service(&app, actix::TestRequest::get().uri(path).to_request()).await
}

fn header<'a>(response: &'a actix_web::dev::ServiceResponse, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

#[actix_web::test]
async fn the_page_is_served_under_a_policy_that_only_allows_this_origin_and_the_im_service() {
    let response = get("/play/").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "content-type"),
        "text/html; charset=utf-8"
    );
    assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    assert_eq!(header(&response, "referrer-policy"), "no-referrer");
    let policy = header(&response, "content-security-policy");
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert!(policy.contains("script-src 'self';"), "{policy}");
    assert!(
        policy.contains("connect-src 'self' http://im.example.test:8081;"),
        "{policy}"
    );
}

#[actix_web::test]
async fn the_page_learns_where_the_im_service_is_from_its_config() {
    let response = get("/play/config.json").await;
    assert_eq!(response.status(), 200);
    let config: serde_json::Value = actix::read_body_json(response).await;
    assert_eq!(
        config,
        serde_json::json!({"im_url": "http://im.example.test:8081"})
    );
}

#[actix_web::test]
async fn play_without_its_slash_redirects_so_relative_asset_urls_resolve() {
    let response = get("/play").await;
    assert_eq!(response.status(), 308);
    assert_eq!(header(&response, "location"), "/play/");
}

#[actix_web::test]
async fn an_unknown_file_is_a_404_problem_and_nothing_outside_the_assets_is_reachable() {
    for path in ["/play/nope.js", "/play/../Cargo.toml", "/play/web/app.js"] {
        let response = get(path).await;
        assert_eq!(response.status(), 404, "{path}");
    }
}

#[actix_web::test]
async fn every_file_of_the_web_directory_is_served_with_its_type() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(WEB)
        .expect("game-service/web")
        .map(|entry| {
            entry
                .expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let served: BTreeSet<String> = ASSETS
        .iter()
        .map(|(name, _, _)| if name.is_empty() { "index.html" } else { name }.to_string())
        .collect();
    assert_eq!(
        on_disk, served,
        "add the file to ASSETS (or remove it from web/)"
    );
    for (name, body, content_type) in ASSETS {
        let response = get(&format!("/play/{name}")).await;
        assert_eq!(response.status(), 200, "{name}");
        assert_eq!(header(&response, "content-type"), *content_type, "{name}");
        assert_eq!(actix::read_body(response).await, body.as_bytes(), "{name}");
    }
}

#[test]
fn every_file_a_page_or_module_loads_is_an_asset() {
    let names: BTreeSet<&str> = ASSETS.iter().map(|(name, _, _)| *name).collect();
    for (name, body, _) in ASSETS {
        for quote in ["src=\"", "href=\"", "from \"./"] {
            for reference in body.split(quote).skip(1) {
                let target = reference.split('"').next().unwrap_or_default();
                let target = target.trim_start_matches("./");
                assert!(
                    names.contains(target),
                    "{name} loads {target:?}, which is not served"
                );
            }
        }
    }
}

/// The `("METHOD", "/path")` pairs `api.js` passes to `caller(`.
fn calls(source: &str, caller: &str) -> Vec<(String, String)> {
    source
        .split(&format!("{caller}(\""))
        .skip(1)
        .map(|rest| {
            let mut parts = rest.split('"');
            let method = parts.next().unwrap_or_default().to_lowercase();
            let path = parts.nth(1).unwrap_or_default().to_owned();
            (method, path)
        })
        .collect()
}

#[test]
fn every_call_of_the_page_is_an_operation_of_the_openapi_documents() {
    let api = include_str!("../../web/api.js");
    let documents = Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi");
    let mut checked = 0;
    for (caller, document) in [("game", "game-service.json"), ("im", "im-service.json")] {
        let text = std::fs::read_to_string(documents.join(document)).expect(document);
        let openapi: serde_json::Value = serde_json::from_str(&text).expect(document);
        let found = calls(api, caller);
        assert!(found.len() >= 5, "{caller}: {found:?}");
        for (method, path) in found {
            assert!(
                openapi["paths"][&path][&method].is_object(),
                "api.js calls {method} {path}, which {document} does not document"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 15, "a call of api.js was not recognised");
}

#[test]
fn the_im_url_must_be_absolute_and_http() {
    for bad in ["/im", "im:8081", "ftp://im.example.test"] {
        assert!(PlayClient::new(bad).is_err(), "{bad}");
    }
}
