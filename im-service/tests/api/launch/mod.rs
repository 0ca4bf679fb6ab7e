//! `POST /v1/conversations/{id}/games`: launching a game from a conversation, against a fake game service: who is invited, and what is refused before the game service is asked.

use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use shared_types::{game::PlayerState, problem::ProblemCode};
use uuid::Uuid;

use crate::helpers::{
    TestApp, assert_problem, expect_json,
    fake_game::{Answer, FakeGame, spawn_app_with_game},
};

mod game_answers;

/// Long enough for any answer of the fake that is not meant to be slow.
const TIMEOUT: Duration = Duration::from_secs(5);

/// What the fake game service answers a launch with: alice's state in a waiting lobby.
fn lobby_state() -> Value {
    json!({
        "player_id": "alice",
        "prompt": null,
        "session": {
            "id": "0b9b5ce1-55a3-4b8c-a1f5-6d1c3b2a9e10",
            "kind": "multiplayer",
            "mode": "duel",
            "state": "waiting",
            "host": "alice",
            "players": ["alice"],
            "pending": ["zoe", "bob"],
            "created_at": "2026-11-23T10:00:00Z",
            "join_token": "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl",
            "reason": null,
            "ended_reason": null
        },
        "degraded": false
    })
}

/// A fake game service that opens lobbies, and the IM service calling it.
async fn apps(answer: Answer) -> anyhow::Result<(TestApp, FakeGame)> {
    let game = FakeGame::start(answer).await?;
    let app = spawn_app_with_game(game.settings(TIMEOUT)).await?;
    Ok((app, game))
}

/// `POST /v1/conversations/{id}/games` as `token`, with `body` as JSON, or no body at all.
async fn launch_as(
    app: &TestApp,
    token: &str,
    id: Uuid,
    body: Option<&Value>,
) -> anyhow::Result<Response> {
    let request = app
        .client
        .post(app.url(&format!("/v1/conversations/{id}/games")))
        .bearer_auth(token);
    let request = match body {
        Some(body) => request.json(body),
        None => request,
    };
    Ok(request.send().await?)
}

async fn launch(
    app: &TestApp,
    who: &str,
    id: Uuid,
    body: Option<&Value>,
) -> anyhow::Result<Response> {
    launch_as(app, &app.token(who)?, id, body).await
}

/// alice and bob talk in a conversation and are available: bob may be invited.
async fn two_talking(app: &TestApp) -> anyhow::Result<Uuid> {
    let conversation = app.chat("alice", &["bob"]).await?;
    app.all_available(&["alice", "bob"]).await?;
    Ok(conversation.id)
}

/// alice's conversation in which only zoe and bob (in this order) may be invited: carol blocks
/// alice, alice blocks dave, erin never posted, frank is offline, gina is busy; each of them
/// would be invited but for that one reason. Everyone posts a second apart, bob last (so the
/// partners rule, newest first, lists bob before zoe).
async fn crowded(app: &TestApp) -> anyhow::Result<Uuid> {
    let others = ["zoe", "carol", "dave", "erin", "frank", "gina", "bob"];
    let id = app.open_conversation("alice", &others).await?.id;
    for who in ["alice", "zoe", "carol", "dave", "frank", "gina", "bob"] {
        app.say(who, id, &format!("{who} here")).await?;
        app.advance(Duration::from_secs(1));
    }
    app.all_available(&["alice", "zoe", "carol", "dave", "erin", "bob"])
        .await?;
    app.set_presence("frank", "offline").await?;
    app.set_presence("gina", "busy").await?;
    app.block("carol", "alice").await?;
    app.block("alice", "dave").await?;
    Ok(id)
}

/// `im_game_launches_total{outcome="<outcome>"}` as `/metrics` serves it now.
async fn launches_counted(app: &TestApp, outcome: &str) -> anyhow::Result<Option<u64>> {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let series = format!("im_game_launches_total{{outcome=\"{outcome}\"}} ");
    Ok(text
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .and_then(|value| value.trim().parse().ok()))
}

#[tokio::test]
async fn a_launch_invites_only_the_eligible_participants_in_the_conversations_order_and_passes_the_lobby_on()
-> anyhow::Result<()> {
    let (app, game) = apps(Answer::created(&lobby_state())).await?;
    let id = crowded(&app).await?;
    // Every outcome is a series from the start.
    for outcome in [
        "created",
        "nobody_to_invite",
        "already_playing",
        "unknown_mode",
        "refused",
        "game_error",
        "unreachable",
        "timeout",
        "bad_answer",
        "misconfigured",
    ] {
        assert!(
            launches_counted(&app, outcome).await?.is_some(),
            "{outcome} is pre-registered"
        );
    }
    let before = launches_counted(&app, "created").await?.unwrap_or_default();

    let response = launch(&app, "alice", id, Some(&json!({"mode": "duel"}))).await?;
    let state: PlayerState = expect_json(response, StatusCode::CREATED).await?;
    let sent: PlayerState = serde_json::from_value(lobby_state())?;
    assert_eq!(state, sent, "the game's PlayerState, passed on");

    let requests = game.requests();
    assert_eq!(requests.len(), 1, "one call: {requests:?}");
    let request = &requests[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/v1/lobbies")
    );
    assert_eq!(request.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        request.body,
        json!({"host": "alice", "invitees": ["zoe", "bob"], "mode": "duel", "conversation_id": id}),
        "only zoe and bob, in the conversation's order: carol blocks alice, alice blocks dave, \
         erin never posted, frank is offline, gina is busy"
    );
    let caller = request.caller()?;
    assert!(caller.is_service(), "a service-scope token: {caller:?}");
    assert_eq!(caller.user_id.as_str(), "im-service");
    assert!(
        launches_counted(&app, "created").await?.unwrap_or_default() > before,
        "counted as created"
    );
    Ok(())
}

#[tokio::test]
async fn without_a_body_or_with_an_empty_object_the_game_service_picks_the_mode()
-> anyhow::Result<()> {
    let (app, game) = apps(Answer::created(&lobby_state())).await?;
    let id = two_talking(&app).await?;
    expect_json::<PlayerState>(launch(&app, "alice", id, None).await?, StatusCode::CREATED).await?;
    expect_json::<PlayerState>(
        launch(&app, "alice", id, Some(&json!({}))).await?,
        StatusCode::CREATED,
    )
    .await?;
    let requests = game.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(request.body["mode"], Value::Null, "{:?}", request.body);
        assert_eq!(request.body["invitees"], json!(["bob"]));
    }
    Ok(())
}

#[tokio::test]
async fn a_service_token_cannot_launch() -> anyhow::Result<()> {
    let (app, game) = apps(Answer::created(&lobby_state())).await?;
    let id = two_talking(&app).await?;
    assert_problem(
        launch_as(&app, &app.service_token()?, id, None).await?,
        StatusCode::FORBIDDEN,
        ProblemCode::Forbidden,
    )
    .await?;
    assert!(game.requests().is_empty());
    Ok(())
}

#[tokio::test]
async fn a_non_participant_gets_the_404_of_an_unknown_conversation() -> anyhow::Result<()> {
    let (app, game) = apps(Answer::created(&lobby_state())).await?;
    let id = two_talking(&app).await?;
    app.all_available(&["mallory"]).await?;
    let stranger = assert_problem(
        launch(&app, "mallory", id, None).await?,
        StatusCode::NOT_FOUND,
        ProblemCode::NotFound,
    )
    .await?;
    let unknown = assert_problem(
        launch(&app, "mallory", Uuid::new_v4(), None).await?,
        StatusCode::NOT_FOUND,
        ProblemCode::NotFound,
    )
    .await?;
    assert_eq!(stranger, unknown, "nothing tells the two apart");
    assert!(game.requests().is_empty());
    Ok(())
}

#[tokio::test]
async fn a_closed_conversation_is_a_409_conversation_closed() -> anyhow::Result<()> {
    let (app, game) = apps(Answer::created(&lobby_state())).await?;
    let id = two_talking(&app).await?;
    app.close("bob", id).await?;
    assert_problem(
        launch(&app, "alice", id, None).await?,
        StatusCode::CONFLICT,
        ProblemCode::ConversationClosed,
    )
    .await?;
    assert!(game.requests().is_empty());
    Ok(())
}

#[tokio::test]
async fn with_nobody_eligible_the_answer_is_409_nobody_to_invite_and_the_game_service_is_not_called()
-> anyhow::Result<()> {
    let (app, game) = apps(Answer::created(&lobby_state())).await?;
    // bob never answered: talking takes two.
    let one_sided = app.open_conversation("alice", &["bob"]).await?.id;
    app.say("alice", one_sided, "play?").await?;
    app.all_available(&["alice", "bob"]).await?;
    assert_problem(
        launch(&app, "alice", one_sided, None).await?,
        StatusCode::CONFLICT,
        ProblemCode::NobodyToInvite,
    )
    .await?;
    // carol talks with alice, but alice is offline: she talks to nobody.
    let talked = app.chat("alice", &["carol"]).await?.id;
    app.all_available(&["carol"]).await?;
    app.set_presence("alice", "offline").await?;
    assert_problem(
        launch(&app, "alice", talked, None).await?,
        StatusCode::CONFLICT,
        ProblemCode::NobodyToInvite,
    )
    .await?;
    assert!(game.requests().is_empty(), "{:?}", game.requests());
    // Once alice is back, carol is invited: the refusal above was the presence's.
    app.set_presence("alice", "available").await?;
    expect_json::<PlayerState>(
        launch(&app, "alice", talked, None).await?,
        StatusCode::CREATED,
    )
    .await?;
    assert_eq!(game.requests()[0].body["invitees"], json!(["carol"]));
    Ok(())
}

#[tokio::test]
async fn a_malformed_body_is_refused_before_anything_else() -> anyhow::Result<()> {
    let (app, game) = apps(Answer::created(&lobby_state())).await?;
    let id = two_talking(&app).await?;
    let too_long = "m".repeat(33);
    for body in [
        json!({"mood": "duel"}),
        json!({"mode": ""}),
        json!({"mode": too_long}),
        json!({"mode": 3}),
        Value::Null,
        json!(["duel"]),
    ] {
        assert_problem(
            launch(&app, "alice", id, Some(&body)).await?,
            StatusCode::BAD_REQUEST,
            ProblemCode::InvalidRequest,
        )
        .await?;
    }
    assert_problem(
        app.send_raw(
            reqwest::Method::POST,
            &format!("/v1/conversations/{id}/games"),
            &app.token("alice")?,
            "text/plain",
            "{}",
        )
        .await?,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ProblemCode::UnsupportedMediaType,
    )
    .await?;
    assert!(game.requests().is_empty());
    Ok(())
}
