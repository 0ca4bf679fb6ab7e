//! Per-caller rate limiting, on the real binary (the limit is read from the process environment).

use reqwest::{StatusCode, header};
use shared_types::problem::ProblemCode;

use crate::helpers::{SECRET, assert_problem, client, hs256, player_claims, process::GameProcess};

#[tokio::test]
async fn the_fourth_quick_request_of_a_caller_is_429_with_retry_after_while_others_and_probes_are_not()
-> anyhow::Result<()> {
    let game = GameProcess::start(&[
        ("JWT_SECRET", SECRET),
        ("RATE_LIMIT_PER_SEC", "1"),
        ("RATE_LIMIT_BURST", "3"),
    ])
    .await?;
    let http = client()?;
    let alice = hs256(&player_claims("alice"), SECRET)?;
    let bob = hs256(&player_claims("bob"), SECRET)?;
    let me = game.url("/v1/me");

    // Alice: a burst of three, then limited.
    for i in 0..3 {
        let response = http.get(&me).bearer_auth(&alice).send().await?;
        assert_eq!(response.status(), StatusCode::OK, "alice's request {i}");
    }
    let response = http.get(&me).bearer_auth(&alice).send().await?;
    let retry_after: u64 = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("a 429 carries Retry-After in seconds"))?;
    assert!((1..=2).contains(&retry_after), "Retry-After: {retry_after}");
    assert_problem(
        response,
        StatusCode::TOO_MANY_REQUESTS,
        ProblemCode::RateLimited,
    )
    .await?;

    // Bob has his own bucket.
    let response = http.get(&me).bearer_auth(&bob).send().await?;
    assert_eq!(response.status(), StatusCode::OK, "bob is unaffected");

    // Anonymous callers share their IP's bucket: three 401s, then 429.
    for i in 0..3 {
        let response = http.get(&me).send().await?;
        assert_problem(
            response,
            StatusCode::UNAUTHORIZED,
            ProblemCode::Unauthorized,
        )
        .await
        .map_err(|e| e.context(format!("anonymous request {i}")))?;
    }
    let response = http.get(&me).send().await?;
    assert!(response.headers().contains_key(header::RETRY_AFTER));
    assert_problem(
        response,
        StatusCode::TOO_MANY_REQUESTS,
        ProblemCode::RateLimited,
    )
    .await?;
    // An invalid token counts as anonymous: same IP, same empty bucket.
    let response = http.get(&me).bearer_auth("not.a.token").send().await?;
    assert_problem(
        response,
        StatusCode::TOO_MANY_REQUESTS,
        ProblemCode::RateLimited,
    )
    .await?;
    // A valid token from that same IP is limited by its own bucket, not the IP's.
    let response = http.get(&me).bearer_auth(&bob).send().await?;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "bob after the anonymous flood"
    );

    // Probes are never limited, whoever asks.
    for i in 0..10 {
        let response = http.get(game.url("/healthz")).send().await?;
        assert_eq!(response.status(), StatusCode::OK, "healthz {i}");
        let response = http
            .get(game.url("/healthz"))
            .bearer_auth(&alice)
            .send()
            .await?;
        assert_eq!(response.status(), StatusCode::OK, "healthz as alice {i}");
    }
    let response = http.get(game.url("/readyz")).send().await?;
    assert_eq!(response.status(), StatusCode::OK);
    let response = http.get(game.url("/metrics")).send().await?;
    assert_eq!(response.status(), StatusCode::OK);
    game.stop();
    Ok(())
}
