//! The game-server endpoints: who may call them, the key set, and the join-token key at start-up.

#![expect(clippy::expect_used, reason = "tests")]

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use shared_types::{game::Verification, problem::ProblemCode};

use crate::helpers::{SECRET, assert_problem, expect_json, game_settings, jwt_settings, spawn_app};

#[tokio::test]
async fn game_server_endpoints_answer_anonymous_401_player_403_and_service_200()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    let solo = app
        .connect("alice")
        .await?
        .session
        .expect("alice plays solo");
    let player = app.token("alice")?;
    let server = app.service_token("game-server-1")?;
    let verify = json!({"token": solo.join_token});
    let end = json!({"outcome": "finished"});
    // Heartbeat before end: the session must still be live for its 200.
    let calls = [
        (format!("/v1/sessions/{}/heartbeat", solo.id), None),
        ("/v1/join-tokens/verify".to_owned(), Some(&verify)),
        (format!("/v1/sessions/{}/end", solo.id), Some(&end)),
    ];
    for (path, body) in &calls {
        let send = |token: Option<&str>| {
            let request = app.request(Method::POST, path, token);
            match body {
                Some(body) => request.json(body),
                None => request,
            }
            .send()
        };
        assert_problem(
            send(None).await?,
            StatusCode::UNAUTHORIZED,
            ProblemCode::Unauthorized,
        )
        .await?;
        assert_problem(
            send(Some(&player)).await?,
            StatusCode::FORBIDDEN,
            ProblemCode::Forbidden,
        )
        .await?;
        let ok = send(Some(&server)).await?;
        assert_eq!(ok.status(), StatusCode::OK, "{path} with a service token");
    }
    Ok(())
}

#[tokio::test]
async fn the_key_set_needs_no_token_and_verifies_the_tokens_the_service_signs() -> anyhow::Result<()>
{
    let app = spawn_app().await?;
    let solo = app
        .connect("alice")
        .await?
        .session
        .expect("alice plays solo");
    let response = app
        .request(Method::GET, "/v1/join-tokens/jwks.json", None)
        .send()
        .await?;
    let cache = response
        .headers()
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    assert_eq!(cache.as_deref(), Some("public, max-age=300"));
    let set: jsonwebtoken::jwk::JwkSet = expect_json(response, StatusCode::OK).await?;
    let kid = jsonwebtoken::decode_header(&solo.join_token)?
        .kid
        .expect("a kid");
    let key = set.find(&kid).expect("the token's key is published");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&["game-server"]);
    validation.set_issuer(&[shared_types::auth::DEFAULT_ISSUER]);
    let claims: Value = jsonwebtoken::decode(
        &solo.join_token,
        &jsonwebtoken::DecodingKey::from_jwk(key)?,
        &validation,
    )?
    .claims;
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["sid"], solo.id.to_string());
    assert_eq!(claims["kind"], "solo");
    assert_eq!(claims["mode"], "default");
    let lifetime = claims["exp"]
        .as_u64()
        .zip(claims["iat"].as_u64())
        .map(|(e, i)| e - i);
    assert_eq!(lifetime, Some(900), "JOIN_TOKEN_TTL_SECS");

    let verified: Verification = expect_json(
        app.request(
            Method::POST,
            "/v1/join-tokens/verify",
            Some(&app.service_token("game-server-1")?),
        )
        .json(&json!({"token": solo.join_token}))
        .send()
        .await?,
        StatusCode::OK,
    )
    .await?;
    assert!(verified.valid && verified.member, "{verified:?}");
    Ok(())
}

#[tokio::test]
async fn with_redis_and_no_join_token_key_the_service_refuses_to_start_and_says_how_to_make_one()
-> anyhow::Result<()> {
    let mut settings = game_settings("http://127.0.0.1:9");
    settings.jwt = jwt_settings(SECRET);
    // Never reached: the key is checked before Redis is.
    settings.redis_url = Some("redis://127.0.0.1:9".into());
    let refused = game_service::startup::Application::build(settings)
        .await
        .err()
        .map(|err| format!("{err:#}"))
        .expect("refused");
    assert!(refused.contains("JOIN_TOKEN_KEY_FILE"), "{refused}");
    assert!(
        refused.contains("openssl genpkey -algorithm ed25519"),
        "{refused}"
    );
    assert!(refused.contains("cargo xtask join-token-key"), "{refused}");
    Ok(())
}

#[tokio::test]
async fn a_key_file_that_is_not_an_ed25519_private_key_is_refused_at_start() -> anyhow::Result<()> {
    let mut settings = game_settings("http://127.0.0.1:9");
    settings.join_token_keys.signing_pem =
        Some(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_vec());
    let refused = game_service::startup::Application::build(settings)
        .await
        .err()
        .map(|err| format!("{err:#}"))
        .expect("refused");
    assert!(refused.contains("JOIN_TOKEN_KEY_FILE"), "{refused}");
    Ok(())
}
