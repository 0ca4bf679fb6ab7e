//! Bearer tokens: every `/v1` endpoint refuses requests that do not carry a valid one.

use reqwest::{Method, StatusCode, header};
use shared_types::problem::ProblemCode;

use crate::helpers::{assert_problem, bad_tokens, spawn_app};

/// One request per `/v1` operation.
const OPERATIONS: [(&str, &str); 11] = [
    ("PUT", "/v1/presence"),
    ("GET", "/v1/users/alice/presence"),
    ("POST", "/v1/conversations"),
    ("GET", "/v1/conversations"),
    (
        "POST",
        "/v1/conversations/00000000-0000-0000-0000-000000000000/messages",
    ),
    (
        "GET",
        "/v1/conversations/00000000-0000-0000-0000-000000000000/messages",
    ),
    (
        "POST",
        "/v1/conversations/00000000-0000-0000-0000-000000000000/close",
    ),
    ("GET", "/v1/users/alice/partners"),
    ("PUT", "/v1/blocks/bob"),
    ("DELETE", "/v1/blocks/bob"),
    ("GET", "/v1/blocks"),
];

#[tokio::test]
async fn missing_forged_expired_wrong_audience_and_alg_none_tokens_are_401_problems()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    let bad: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        (
            "forged",
            Some(format!("Bearer {}", bad_tokens::forged("alice")?)),
        ),
        (
            "expired",
            Some(format!("Bearer {}", bad_tokens::expired("alice")?)),
        ),
        (
            "wrong audience",
            Some(format!("Bearer {}", bad_tokens::wrong_audience("alice")?)),
        ),
        (
            "alg none",
            Some(format!("Bearer {}", bad_tokens::alg_none("alice"))),
        ),
        ("garbage", Some("Bearer not.a.jwt".to_owned())),
        (
            "wrong scheme",
            Some(format!("Basic {}", app.token("alice")?)),
        ),
    ];
    for (method, path) in OPERATIONS {
        for (what, authorization) in &bad {
            let mut request = app
                .client
                .request(Method::from_bytes(method.as_bytes())?, app.url(path))
                .header(header::CONTENT_TYPE, "application/json")
                .body(r#"{"status":"available","participants":["bob"],"text":"hi"}"#);
            if let Some(value) = authorization {
                request = request.header(header::AUTHORIZATION, value);
            }
            let response = request.send().await?;
            assert!(
                response.headers().contains_key(header::WWW_AUTHENTICATE),
                "{what} on {method} {path}"
            );
            assert_problem(
                response,
                StatusCode::UNAUTHORIZED,
                ProblemCode::Unauthorized,
            )
            .await?;
        }
    }
    // Nothing got through: alice's presence was never set.
    let presence = app.presence_of(&app.token("alice")?, "alice").await?;
    let presence: shared_types::presence::Presence = presence.json().await?;
    assert_eq!(presence.status.as_str(), "offline");
    Ok(())
}

#[tokio::test]
async fn a_valid_token_is_accepted() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let response = app.get("/v1/conversations", &app.token("alice")?).await?;
    assert_eq!(response.status(), StatusCode::OK);
    Ok(())
}
