//! `PUT /v1/presence`, `GET /v1/users/{user_id}/presence`.

use reqwest::{Method, StatusCode};
use serde_json::json;
use shared_types::{presence::Presence, problem::ProblemCode};

use crate::helpers::{assert_problem, expect_json, spawn_app};

#[tokio::test]
async fn setting_presence_returns_it_and_reading_it_back_agrees() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let set = app.set_presence("alice", "busy").await?;
    assert_eq!(
        (set.user_id.as_str(), set.status.as_str()),
        ("alice", "busy")
    );
    let read: Presence = expect_json(
        app.presence_of(&app.token("alice")?, "alice").await?,
        StatusCode::OK,
    )
    .await?;
    assert_eq!(read, set);
    Ok(())
}

#[tokio::test]
async fn a_user_who_never_set_a_presence_is_offline() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let read: Presence = expect_json(
        app.presence_of(&app.token("alice")?, "alice").await?,
        StatusCode::OK,
    )
    .await?;
    assert_eq!(read.status.as_str(), "offline");
    Ok(())
}

#[tokio::test]
async fn people_who_talked_see_each_others_presence_even_after_closing() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    app.set_presence("bob", "away").await?;
    let conversation = app.chat("alice", &["bob"]).await?;
    let read: Presence = expect_json(
        app.presence_of(&app.token("alice")?, "bob").await?,
        StatusCode::OK,
    )
    .await?;
    assert_eq!(read.status.as_str(), "away");
    app.close("bob", conversation.id).await?;
    let read: Presence = expect_json(
        app.presence_of(&app.token("bob")?, "alice").await?,
        StatusCode::OK,
    )
    .await?;
    assert_eq!(read.status.as_str(), "offline");
    Ok(())
}

#[tokio::test]
async fn opening_a_conversation_reveals_no_presence_until_both_have_posted() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    app.all_available(&["alice", "bob", "carol"]).await?;
    let conversation = app.open_conversation("alice", &["bob", "carol"]).await?;
    let stranger = assert_problem(
        app.presence_of(&app.token("alice")?, "nobody-at-all")
            .await?,
        StatusCode::NOT_FOUND,
        ProblemCode::NotFound,
    )
    .await?;
    app.say("alice", conversation.id, "anyone?").await?;
    for (viewer, subject) in [("alice", "bob"), ("bob", "alice"), ("carol", "alice")] {
        let refused = assert_problem(
            app.presence_of(&app.token(viewer)?, subject).await?,
            StatusCode::NOT_FOUND,
            ProblemCode::NotFound,
        )
        .await?;
        assert_eq!(refused, stranger, "{viewer} → {subject}: as for a stranger");
    }
    app.say("bob", conversation.id, "me").await?;
    for (viewer, subject) in [("alice", "bob"), ("bob", "alice")] {
        expect_json::<Presence>(
            app.presence_of(&app.token(viewer)?, subject).await?,
            StatusCode::OK,
        )
        .await?;
    }
    // carol never posted: still nothing either way.
    for (viewer, subject) in [("carol", "alice"), ("alice", "carol")] {
        assert_problem(
            app.presence_of(&app.token(viewer)?, subject).await?,
            StatusCode::NOT_FOUND,
            ProblemCode::NotFound,
        )
        .await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_strangers_presence_is_404_whether_or_not_they_exist_but_a_service_sees_anyone()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    app.set_presence("bob", "available").await?;
    app.chat("bob", &["carol"]).await?;
    let existing = assert_problem(
        app.presence_of(&app.token("alice")?, "bob").await?,
        StatusCode::NOT_FOUND,
        ProblemCode::NotFound,
    )
    .await?;
    let unknown = assert_problem(
        app.presence_of(&app.token("alice")?, "nobody-at-all")
            .await?,
        StatusCode::NOT_FOUND,
        ProblemCode::NotFound,
    )
    .await?;
    assert_eq!(
        existing, unknown,
        "the answer must not hint that bob exists"
    );
    let read: Presence = expect_json(
        app.presence_of(&app.service_token()?, "bob").await?,
        StatusCode::OK,
    )
    .await?;
    assert_eq!(read.status.as_str(), "available");
    assert_problem(
        app.presence_of(&app.service_token()?, "not%20valid")
            .await?,
        StatusCode::NOT_FOUND,
        ProblemCode::NotFound,
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn an_invalid_presence_update_is_a_400_and_changes_nothing() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    app.set_presence("alice", "busy").await?;
    let token = app.token("alice")?;
    for body in [
        json!({"status": "sleeping"}),
        json!({"status": "available", "mood": "happy"}),
        json!({}),
        json!({"status": 1}),
    ] {
        assert_problem(
            app.put_json("/v1/presence", &token, &body).await?,
            StatusCode::BAD_REQUEST,
            ProblemCode::InvalidRequest,
        )
        .await?;
    }
    assert_problem(
        app.send_raw(
            Method::PUT,
            "/v1/presence",
            &token,
            "application/json",
            "{\"status\":",
        )
        .await?,
        StatusCode::BAD_REQUEST,
        ProblemCode::InvalidRequest,
    )
    .await?;
    assert_problem(
        app.send_raw(
            Method::PUT,
            "/v1/presence",
            &token,
            "text/plain",
            r#"{"status":"away"}"#,
        )
        .await?,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ProblemCode::UnsupportedMediaType,
    )
    .await?;
    let read: Presence =
        expect_json(app.presence_of(&token, "alice").await?, StatusCode::OK).await?;
    assert_eq!(read.status.as_str(), "busy");
    Ok(())
}
