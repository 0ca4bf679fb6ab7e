//! Request ids and the log: ids are echoed and logged; tokens and the secret never are.

use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{
    client, hs256, im_settings, jwt_settings, player_claims, process::GameProcess, spawn_im,
};

fn request_id(response: &Response) -> String {
    response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_echoed_and_logged_and_no_token_or_secret_ever_reaches_the_log()
-> anyhow::Result<()> {
    let secret = format!("log-secret-{}", Uuid::new_v4().simple());
    let im = spawn_im(im_settings(jwt_settings(&secret))).await?;
    let game = GameProcess::start(&[
        ("JWT_SECRET", secret.as_str()),
        ("LOG_FORMAT", "json"),
        ("RUST_LOG", "debug"),
        ("IM_URL", im.as_str()),
        ("IM_TIMEOUT_MS", "2000"),
    ])
    .await?;
    let http = client()?;
    let valid = hs256(&player_claims("alice"), &secret)?;
    let forged = hs256(&player_claims("alice"), "not-the-secret")?;
    let mut tokens = vec![valid.clone(), forged.clone()];

    // A valid token with the caller's request id.
    let mine = format!("req-{}", Uuid::new_v4());
    let response = http
        .get(game.url("/v1/me"))
        .bearer_auth(&valid)
        .header("x-request-id", &mine)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(request_id(&response), mine, "the caller's id is echoed");

    // An invalid token with another id.
    let refused = format!("req-{}", Uuid::new_v4());
    let response = http
        .get(game.url("/v1/me"))
        .bearer_auth(&forged)
        .header("x-request-id", &refused)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(request_id(&response), refused);

    // No id: a fresh one is generated; the IM call behind connect uses a service token.
    let response = http
        .post(game.url("/v1/connect"))
        .bearer_auth(&valid)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let generated = request_id(&response);
    assert!(
        Uuid::parse_str(&generated).is_ok(),
        "a generated id: {generated:?}"
    );
    let state: Value = response.json().await?;
    assert_eq!(
        state["degraded"], false,
        "the IM service was asked: {state}"
    );

    // An insane caller id (spaces) is replaced, not echoed.
    let response = http
        .get(game.url("/v1/me"))
        .bearer_auth(&valid)
        .header("x-request-id", "two words")
        .send()
        .await?;
    let replaced = request_id(&response);
    assert!(Uuid::parse_str(&replaced).is_ok(), "{replaced:?}");

    // A malformed token is not logged either.
    let garbage = format!(
        "eyJhbGciOiJIUzI1NiJ9.{}.{}",
        Uuid::new_v4().simple(),
        Uuid::new_v4().simple()
    );
    tokens.push(garbage.clone());
    let response = http
        .get(game.url("/v1/me"))
        .header("authorization", format!("Bearer {garbage}"))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    assert!(
        game.wait_for_log(
            &[&mine, &refused, &generated, &replaced],
            Duration::from_secs(5)
        )
        .await,
        "every request id reaches the log:\n{}",
        game.log()
    );
    let log = game.stop();

    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let parsed: Result<Value, _> = serde_json::from_str(line);
        assert!(
            parsed.is_ok_and(|v| v.is_object()),
            "LOG_FORMAT=json writes one JSON object per line: {line}"
        );
    }
    for id in [&mine, &refused] {
        assert!(
            log.lines()
                .any(|l| l.contains(id.as_str()) && l.contains("served")),
            "the access line of {id} carries the id:\n{log}"
        );
    }
    assert!(!log.contains(&secret), "the secret is in the log:\n{log}");
    for token in &tokens {
        assert!(
            !log.contains(token.as_str()),
            "a token is in the log:\n{log}"
        );
        let signature = token.rsplit('.').next().unwrap_or_default();
        assert!(
            !log.contains(signature),
            "a token signature is in the log:\n{log}"
        );
    }
    // No JWT at all, the game service's own service token included.
    assert!(
        !log.contains("eyJ"),
        "something JWT-shaped is in the log:\n{log}"
    );
    Ok(())
}
