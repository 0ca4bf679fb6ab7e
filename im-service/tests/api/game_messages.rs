//! `kind: game` messages: only a service posts them, into any conversation, and they are
//! nobody's talk (no poster, no activity, no partner).

use anyhow::Context;
use reqwest::StatusCode;
use serde_json::{Value, json};
use shared_types::{
    im::{Message, MessageKind},
    problem::ProblemCode,
};

use crate::helpers::{TestApp, assert_problem, expect_json, spawn_app};

fn announcement(host: &str) -> Value {
    json!({
        "text": format!("{host} opened a game: join from the game"),
        "kind": "game",
        "game": {
            "session_id": "0b9b5ce1-55a3-4b8c-a1f5-6d1c3b2a9e10",
            "host": host,
            "mode": "default",
            "state": "waiting"
        }
    })
}

async fn post(
    app: &TestApp,
    token: &str,
    id: uuid::Uuid,
    body: &Value,
) -> anyhow::Result<reqwest::Response> {
    app.post_json(&format!("/v1/conversations/{id}/messages"), token, body)
        .await
}

#[tokio::test]
async fn a_service_announces_a_game_in_any_conversation_and_it_is_nobodys_talk()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    let conversation = app.open_conversation("alice", &["bob"]).await?;
    app.say("alice", conversation.id, "play?").await?;
    let service = app.service_token()?;
    let message: Message = expect_json(
        post(&app, &service, conversation.id, &announcement("alice")).await?,
        StatusCode::CREATED,
    )
    .await?;
    assert_eq!(message.kind, MessageKind::Game);
    let game = message.game.clone().context("the announced game")?;
    assert_eq!(
        (game.host.as_str(), game.mode.as_str()),
        ("alice", "default")
    );
    assert_eq!(message.sender.as_str(), "game-service");
    // The participants read it, in order after alice's message.
    let page: Value = expect_json(
        app.get(
            &format!("/v1/conversations/{}/messages", conversation.id),
            &app.token("bob")?,
        )
        .await?,
        StatusCode::OK,
    )
    .await?;
    assert_eq!(page["messages"][1]["kind"], "game");
    assert_eq!(page["messages"][1]["game"]["host"], "alice");
    // Nobody's talk: bob still has not posted, so alice has no partner, and the service is none.
    app.set_presence("alice", "available").await?;
    app.set_presence("bob", "available").await?;
    let partners: Value = expect_json(
        app.get("/v1/users/alice/partners", &app.token("alice")?)
            .await?,
        StatusCode::OK,
    )
    .await?;
    assert_eq!(partners["partners"], json!([]));
    // Its time moved no activity: the conversation's last activity is alice's message.
    let listed = app.conversations("alice").await?;
    assert_eq!(listed[0].last_activity_at, Some(page_time(&page, 0)?));
    Ok(())
}

fn page_time(page: &Value, index: usize) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    Ok(serde_json::from_value(
        page["messages"][index]["sent_at"].clone(),
    )?)
}

#[tokio::test]
async fn a_player_cannot_post_a_game_message_nor_a_service_text_and_mixed_bodies_are_400s()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    let conversation = app.open_conversation("alice", &["bob"]).await?;
    let alice = app.token("alice")?;
    let service = app.service_token()?;
    let id = conversation.id;
    assert_problem(
        post(&app, &alice, id, &announcement("alice")).await?,
        StatusCode::FORBIDDEN,
        ProblemCode::Forbidden,
    )
    .await?;
    assert_problem(
        post(&app, &service, id, &json!({"text": "hello"})).await?,
        StatusCode::FORBIDDEN,
        ProblemCode::Forbidden,
    )
    .await?;
    let mut text_with_game = announcement("alice");
    text_with_game["kind"] = json!("text");
    let mut game_without_game = announcement("alice");
    game_without_game["game"] = Value::Null;
    for (token, body) in [
        (&service, &text_with_game),
        (&alice, &text_with_game),
        (&service, &game_without_game),
    ] {
        assert_problem(
            post(&app, token, id, body).await?,
            StatusCode::BAD_REQUEST,
            ProblemCode::InvalidRequest,
        )
        .await?;
    }
    // Nothing was stored.
    let page: Value = expect_json(
        app.get(&format!("/v1/conversations/{id}/messages"), &alice)
            .await?,
        StatusCode::OK,
    )
    .await?;
    assert_eq!(page["messages"], json!([]));
    // A game is announced where its host talks: carol takes no part in this conversation.
    assert_problem(
        post(&app, &service, id, &announcement("carol")).await?,
        StatusCode::BAD_REQUEST,
        ProblemCode::InvalidRequest,
    )
    .await?;
    // A missing conversation is a 404, a closed one a 409, for a service as for anyone.
    assert_problem(
        post(&app, &service, uuid::Uuid::new_v4(), &announcement("alice")).await?,
        StatusCode::NOT_FOUND,
        ProblemCode::NotFound,
    )
    .await?;
    app.close("alice", id).await?;
    assert_problem(
        post(&app, &service, id, &announcement("alice")).await?,
        StatusCode::CONFLICT,
        ProblemCode::ConversationClosed,
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn announcing_the_same_game_twice_stores_one_message_and_answers_the_same_seq()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    let conversation = app.open_conversation("alice", &["bob"]).await?;
    let id = conversation.id;
    app.say("alice", id, "play?").await?;
    let service = app.service_token()?;
    let first: Message = expect_json(
        post(&app, &service, id, &announcement("alice")).await?,
        StatusCode::CREATED,
    )
    .await?;
    // The game service retries after a lost answer, a moment later, with the same session.
    app.advance(std::time::Duration::from_secs(2));
    let mut again = announcement("alice");
    again["text"] = json!("alice opened a game (retried)");
    let second: Message =
        expect_json(post(&app, &service, id, &again).await?, StatusCode::CREATED).await?;
    assert_eq!(second, first, "the first message again, same seq");
    let messages = app.messages("bob", id, "").await?;
    let games: Vec<&Message> = messages
        .iter()
        .filter(|m| m.kind == MessageKind::Game)
        .collect();
    assert_eq!(games, [&first], "one game message: {messages:?}");
    // Another session is another announcement.
    let mut other = announcement("alice");
    other["game"]["session_id"] = json!(uuid::Uuid::new_v4());
    let next: Message =
        expect_json(post(&app, &service, id, &other).await?, StatusCode::CREATED).await?;
    assert_eq!(next.seq, first.seq + 1);
    Ok(())
}
