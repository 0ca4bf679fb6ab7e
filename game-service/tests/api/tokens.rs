//! Token claims: expiry with its 5 s leeway, required `exp`/`iss`/`aud`, the issuer and audience checked.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use shared_types::{auth::LEEWAY_SECS, game::PlayerState, problem::ProblemCode};

use crate::helpers::{
    SECRET, TestApp, assert_problem, expect_json, hs256, now_secs, player_claims, spawn_app,
};

/// `alice`'s claims with `edit` applied.
fn claims(edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let mut claims = player_claims("alice");
    if let Some(map) = claims.as_object_mut() {
        edit(map);
    }
    claims
}

async fn me_with(app: &TestApp, claims: &Value) -> anyhow::Result<reqwest::Response> {
    let token = hs256(claims, SECRET)?;
    Ok(app
        .request(Method::GET, "/v1/me", Some(&token))
        .send()
        .await?)
}

#[tokio::test]
async fn a_token_expired_beyond_the_leeway_is_401_and_one_within_it_is_accepted()
-> anyhow::Result<()> {
    assert_eq!(LEEWAY_SECS, 5, "the documented leeway");
    let app = spawn_app().await?;
    let now = now_secs();
    for expired_ago in [LEEWAY_SECS + 5, 3600] {
        let response = me_with(
            &app,
            &claims(|c| {
                c.insert("exp".into(), (now - expired_ago).into());
            }),
        )
        .await?;
        assert_problem(
            response,
            StatusCode::UNAUTHORIZED,
            ProblemCode::Unauthorized,
        )
        .await
        .map_err(|e| e.context(format!("expired {expired_ago} s ago")))?;
    }
    let response = me_with(
        &app,
        &claims(|c| {
            c.insert("exp".into(), (now - 2).into());
        }),
    )
    .await?;
    let state: PlayerState = expect_json(response, StatusCode::OK).await?;
    assert_eq!(state.player_id.as_str(), "alice");
    Ok(())
}

#[tokio::test]
async fn tokens_missing_exp_iss_aud_or_sub_or_naming_another_issuer_or_audience_are_401()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    let cases: Vec<(&str, Value)> = vec![
        (
            "no exp",
            claims(|c| {
                c.remove("exp");
            }),
        ),
        (
            "no iss",
            claims(|c| {
                c.remove("iss");
            }),
        ),
        (
            "no aud",
            claims(|c| {
                c.remove("aud");
            }),
        ),
        (
            "no sub",
            claims(|c| {
                c.remove("sub");
            }),
        ),
        (
            "wrong issuer",
            claims(|c| {
                c.insert("iss".into(), "someone-else".into());
            }),
        ),
        (
            "wrong audience",
            claims(|c| {
                c.insert("aud".into(), "another-platform".into());
            }),
        ),
        (
            "an invalid user id",
            claims(|c| {
                c.insert("sub".into(), "alice smith".into());
            }),
        ),
        (
            "an unknown scope",
            claims(|c| {
                c.insert("scope".into(), "admin".into());
            }),
        ),
    ];
    for (what, claims) in cases {
        let response = me_with(&app, &claims).await?;
        assert_problem(
            response,
            StatusCode::UNAUTHORIZED,
            ProblemCode::Unauthorized,
        )
        .await
        .map_err(|e| e.context(what))?;
    }
    // The unedited claims are fine: the cases above fail for their one reason.
    let response = me_with(&app, &claims(|_| {})).await?;
    assert_eq!(response.status(), StatusCode::OK);
    Ok(())
}
