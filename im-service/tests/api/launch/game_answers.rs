//! What the game service's answers to a launch become for the chat user: its refusals passed on, its failures a 503 `game_unavailable`.

use std::time::{Duration, Instant};

use reqwest::{Response, StatusCode, header};
use serde_json::json;
use shared_types::problem::ProblemCode;

use super::{TIMEOUT, apps, launch, lobby_state, two_talking};
use crate::helpers::{
    assert_problem,
    fake_game::{Answer, FakeGame, closed_port_url, spawn_app_with_game},
};
use im_service::configuration::GameSettings;

#[tokio::test]
async fn the_game_services_409_is_already_playing_with_its_detail() -> anyhow::Result<()> {
    let detail = "alice already has an open prompt";
    let (app, game) = apps(Answer::problem(409, "already_playing", detail)).await?;
    let id = two_talking(&app).await?;
    let problem = assert_problem(
        launch(&app, "alice", id, None).await?,
        StatusCode::CONFLICT,
        ProblemCode::AlreadyPlaying,
    )
    .await?;
    assert_eq!(problem.detail.as_deref(), Some(detail));
    assert_eq!(game.requests().len(), 1, "asked once, never again");
    Ok(())
}

#[tokio::test]
async fn the_game_services_unknown_mode_is_a_400_unknown_mode_and_its_other_400s_invalid_request()
-> anyhow::Result<()> {
    let detail = "no mode \"chess\": default, duel";
    let (app, game) = apps(Answer::problem(400, "unknown_mode", detail)).await?;
    let id = two_talking(&app).await?;
    let chess = json!({"mode": "chess"});
    let problem = assert_problem(
        launch(&app, "alice", id, Some(&chess)).await?,
        StatusCode::BAD_REQUEST,
        ProblemCode::UnknownMode,
    )
    .await?;
    assert_eq!(problem.detail.as_deref(), Some(detail));
    assert_eq!(game.requests()[0].body["mode"], "chess");

    game.answer_with(Answer::problem(400, "invalid_request", "bad invitees"));
    assert_problem(
        launch(&app, "alice", id, Some(&chess)).await?,
        StatusCode::BAD_REQUEST,
        ProblemCode::InvalidRequest,
    )
    .await?;
    Ok(())
}

fn retry_after(response: &Response) -> Option<String> {
    response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A 503 `game_unavailable` with this `Retry-After`.
async fn assert_game_unavailable(response: Response, retry: &str) -> anyhow::Result<()> {
    assert_eq!(retry_after(&response).as_deref(), Some(retry));
    assert_problem(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        ProblemCode::GameUnavailable,
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_game_service_that_is_down_is_a_503_game_unavailable_with_retry_after()
-> anyhow::Result<()> {
    let app = spawn_app_with_game(GameSettings {
        url: closed_port_url()?,
        timeout: TIMEOUT,
    })
    .await?;
    let id = two_talking(&app).await?;
    let started = Instant::now();
    assert_game_unavailable(launch(&app, "alice", id, None).await?, "1").await?;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a refused connection is answered at once, not after GAME_TIMEOUT_MS"
    );
    Ok(())
}

#[tokio::test]
async fn the_game_services_failures_and_token_refusals_are_503_game_unavailable()
-> anyhow::Result<()> {
    let (app, game) =
        apps(Answer::problem(503, "store_unavailable", "redis").with_retry_after("7")).await?;
    let id = two_talking(&app).await?;
    // Its own Retry-After is passed on.
    assert_game_unavailable(launch(&app, "alice", id, None).await?, "7").await?;
    for (answer, why) in [
        (Answer::problem(500, "internal", "internal error"), "a 500"),
        (
            Answer::problem(401, "unauthorized", "bad signature"),
            "our token refused (mismatched secrets)",
        ),
        (
            Answer::problem(403, "forbidden", "not a service"),
            "our token refused",
        ),
        (
            Answer::raw(201, "<html>not json</html>"),
            "an undecodable 201",
        ),
        (
            Answer::problem(404, "not_found", "no such path"),
            "a status outside the contract",
        ),
    ] {
        game.answer_with(answer);
        let response = launch(&app, "alice", id, None).await?;
        assert_eq!(retry_after(&response).as_deref(), Some("1"), "{why}");
        assert_problem(
            response,
            StatusCode::SERVICE_UNAVAILABLE,
            ProblemCode::GameUnavailable,
        )
        .await?;
    }
    assert_eq!(game.requests().len(), 6, "each launch asked once");
    Ok(())
}

#[tokio::test]
async fn a_game_service_slower_than_game_timeout_ms_is_a_503_in_about_that_time()
-> anyhow::Result<()> {
    let game =
        FakeGame::start(Answer::created(&lobby_state()).after(Duration::from_secs(10))).await?;
    let app = spawn_app_with_game(game.settings(Duration::from_millis(300))).await?;
    let id = two_talking(&app).await?;
    let started = Instant::now();
    assert_game_unavailable(launch(&app, "alice", id, None).await?, "1").await?;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "answered after GAME_TIMEOUT_MS (300 ms), not after the game's 10 s: {took:?}"
    );
    assert_eq!(
        game.requests().len(),
        1,
        "a POST timed out is not sent again"
    );
    Ok(())
}
