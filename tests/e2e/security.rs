//! Tokens, other players' prompts and sessions, malformed requests: refused, state unchanged.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use shared_types::{
    UserId,
    auth::{Claims, DEFAULT_AUDIENCE, DEFAULT_ISSUER, Scope},
    problem::ProblemCode,
};
use uuid::Uuid;

use crate::helpers::{SECRET, Service, StateExt, spawn_world};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn claims(exp: u64, audience: &str) -> anyhow::Result<Claims> {
    Ok(Claims {
        sub: UserId::parse("alice")?,
        exp,
        iat: Some(now()),
        nbf: None,
        iss: DEFAULT_ISSUER.into(),
        aud: audience.into(),
        scope: Scope::Player,
    })
}

fn sign(claims: &Claims, secret: &str) -> anyhow::Result<String> {
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

fn base64url(bytes: &[u8]) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
}

/// Every `Authorization` value that must be refused, with what is wrong with it.
fn bad_authorizations() -> anyhow::Result<Vec<(&'static str, Option<String>)>> {
    let valid_claims = claims(now() + 600, DEFAULT_AUDIENCE)?;
    let alg_none = format!(
        "{}.{}.",
        base64url(br#"{"alg":"none","typ":"JWT"}"#),
        base64url(serde_json::to_string(&valid_claims)?.as_bytes())
    );
    Ok(vec![
        ("missing", None),
        ("not a JWT", Some("Bearer not-a-jwt".into())),
        ("empty bearer", Some("Bearer ".into())),
        (
            "wrong scheme",
            Some(format!("Basic {}", sign(&valid_claims, SECRET)?)),
        ),
        (
            "expired an hour ago",
            Some(format!(
                "Bearer {}",
                sign(&claims(now() - 3600, DEFAULT_AUDIENCE)?, SECRET)?
            )),
        ),
        (
            "forged (other secret)",
            Some(format!("Bearer {}", sign(&valid_claims, "not-the-secret")?)),
        ),
        ("alg none", Some(format!("Bearer {alg_none}"))),
        (
            "wrong audience",
            Some(format!(
                "Bearer {}",
                sign(&claims(now() + 600, "some-other-platform")?, SECRET)?
            )),
        ),
    ])
}

#[tokio::test]
async fn bad_expired_forged_alg_none_and_wrong_audience_tokens_get_401() -> anyhow::Result<()> {
    let world = spawn_world().await?;
    let id = Uuid::new_v4();
    let endpoints = [
        (Method::POST, "/v1/connect".to_owned()),
        (Method::GET, "/v1/me".to_owned()),
        (Method::GET, "/v1/events".to_owned()),
        (Method::POST, format!("/v1/prompts/{id}/accept")),
        (Method::POST, format!("/v1/prompts/{id}/reject")),
        (Method::GET, format!("/v1/sessions/{id}")),
        (Method::POST, format!("/v1/sessions/{id}/leave")),
    ];
    for (what, authorization) in bad_authorizations()? {
        for (method, path) in &endpoints {
            let reply = world
                .raw(
                    Service::Game,
                    method.clone(),
                    path,
                    authorization.as_deref(),
                    None,
                )
                .await?;
            reply
                .problem(401, ProblemCode::Unauthorized)
                .map_err(|e| e.context(format!("token {what}")))?;
        }
    }
    // The same claims signed properly are accepted: the refusals above are about the token.
    let good = sign(&claims(now() + 600, DEFAULT_AUDIENCE)?, SECRET)?;
    world
        .raw(
            Service::Game,
            Method::GET,
            "/v1/me",
            Some(&format!("Bearer {good}")),
            None,
        )
        .await?
        .ok()?;
    Ok(())
}

#[tokio::test]
async fn the_im_service_refuses_bad_tokens_too() -> anyhow::Result<()> {
    let world = spawn_world().await?;
    for (what, authorization) in bad_authorizations()? {
        world
            .raw(
                Service::Im,
                Method::GET,
                "/v1/users/alice/partners",
                authorization.as_deref(),
                None,
            )
            .await?
            .problem(401, ProblemCode::Unauthorized)
            .map_err(|e| e.context(format!("token {what}")))?;
    }
    Ok(())
}

#[tokio::test]
async fn another_players_prompt_and_session_are_not_found() -> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    let mallory = world.player("mallory")?;
    world.chatting(&[&alice, &bob]).await?;
    let before = alice.connect().await?;
    let prompt = before.open_prompt()?.clone();

    for verb in ["accept", "reject"] {
        mallory
            .raw(
                Service::Game,
                Method::POST,
                &format!("/v1/prompts/{}/{verb}", prompt.id),
                None,
            )
            .await?
            .problem(404, ProblemCode::NotFound)?;
    }
    assert_eq!(alice.me().await?, before, "alice's prompt is untouched");

    let lobby = alice.accept(prompt.id, None).await?.live_session()?.clone();
    let path = format!("/v1/sessions/{}", lobby.id);
    mallory
        .raw(Service::Game, Method::GET, &path, None)
        .await?
        .problem(404, ProblemCode::NotFound)?;
    mallory
        .raw(Service::Game, Method::POST, &format!("{path}/leave"), None)
        .await?
        .problem(404, ProblemCode::NotFound)?;
    let invitee_view = bob.session(lobby.id).await?;
    assert_eq!(invitee_view.id, lobby.id, "invitees may read the session");
    assert_eq!(alice.me().await?.live_session()?.id, lobby.id);
    Ok(())
}

#[tokio::test]
async fn malformed_json_unknown_fields_and_bad_ids_are_refused_and_change_nothing()
-> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    world.chatting(&[&alice, &bob]).await?;
    let before = alice.connect().await?;
    let prompt = before.open_prompt()?.clone();
    let accept = format!("/v1/prompts/{}/accept", prompt.id);

    for body in [
        r#"{"with": ["#,
        r#"{"wiht": ["bob"]}"#,
        r#"{"with": "bob"}"#,
        r#"{"with": []}"#,
        r#"{"with": ["zed"]}"#,
        r#"{"with": ["not a valid id!"]}"#,
        r#"[]"#,
        r#"[["bob"]]"#,
    ] {
        alice
            .raw(Service::Game, Method::POST, &accept, Some(body))
            .await?
            .problem(400, ProblemCode::InvalidRequest)
            .map_err(|e| e.context(format!("body {body}")))?;
    }
    let random = Uuid::new_v4();
    alice
        .raw(
            Service::Game,
            Method::POST,
            &format!("/v1/prompts/{random}/accept"),
            None,
        )
        .await?
        .problem(404, ProblemCode::NotFound)?;
    for (method, path) in [
        (Method::POST, "/v1/prompts/not-a-uuid/accept"),
        (Method::POST, "/v1/prompts/not-a-uuid/reject"),
        (Method::GET, "/v1/sessions/not-a-uuid"),
        (Method::POST, "/v1/sessions/12345/leave"),
        (Method::GET, "/v1/no-such-route"),
    ] {
        alice
            .raw(Service::Game, method, path, None)
            .await?
            .client_error()?;
    }

    assert_eq!(alice.me().await?, before, "nothing changed");
    // And the prompt still works.
    alice.accept(prompt.id, None).await?.live_session()?;
    Ok(())
}
