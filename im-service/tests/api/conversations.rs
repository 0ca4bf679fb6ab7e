//! `/v1/conversations…`: opening, listing, closing, and who may touch them.

use std::time::Duration;

use im_service::configuration::Limits;
use reqwest::{Method, StatusCode};
use serde_json::json;
use shared_types::problem::ProblemCode;
use uuid::Uuid;

use crate::helpers::{assert_problem, expect_json, spawn_app, spawn_app_with_limits};

fn names(conversation: &shared_types::im::Conversation) -> Vec<&str> {
    conversation
        .participants
        .iter()
        .map(|p| p.as_str())
        .collect()
}

#[tokio::test]
async fn opening_a_conversation_adds_the_caller_first_and_drops_duplicates() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let response = app
        .post_json(
            "/v1/conversations",
            &app.token("alice")?,
            &json!({"participants": ["bob", "alice", "carol", "bob"]}),
        )
        .await?;
    let conversation: shared_types::im::Conversation =
        expect_json(response, StatusCode::CREATED).await?;
    assert_eq!(names(&conversation), ["alice", "bob", "carol"]);
    assert!(!conversation.closed);
    assert_eq!(conversation.created_at, app.clock_now());
    assert_eq!(
        conversation.last_activity_at, None,
        "opening is not activity"
    );
    // Everyone in it sees it.
    for who in ["alice", "bob", "carol"] {
        assert_eq!(
            app.conversations(who).await?,
            std::slice::from_ref(&conversation),
            "{who}"
        );
    }
    assert!(app.conversations("dave").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_conversation_has_two_to_sixteen_people_and_a_refused_one_leaves_no_trace()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    let token = app.token("alice")?;
    let others = |n: usize| (0..n).map(|i| format!("user{i}")).collect::<Vec<_>>();
    for participants in [
        json!([]),
        json!(["alice"]),
        json!(others(16)),
        json!(["bad id"]),
    ] {
        assert_problem(
            app.post_json(
                "/v1/conversations",
                &token,
                &json!({ "participants": participants }),
            )
            .await?,
            StatusCode::BAD_REQUEST,
            ProblemCode::InvalidRequest,
        )
        .await?;
    }
    assert!(app.conversations("alice").await?.is_empty());
    assert!(app.conversations("user0").await?.is_empty());

    let two = app.open_conversation("alice", &["bob"]).await?;
    assert_eq!(two.participants.len(), 2);
    let fifteen = others(15);
    let fifteen: Vec<&str> = fifteen.iter().map(String::as_str).collect();
    let sixteen = app.open_conversation("alice", &fifteen).await?;
    assert_eq!(sixteen.participants.len(), 16);
    Ok(())
}

#[tokio::test]
async fn malformed_bodies_are_4xx_problems_and_create_nothing() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let token = app.token("alice")?;
    let cases = [
        (
            "application/json",
            "{\"participants\": [\"bob\"",
            StatusCode::BAD_REQUEST,
            ProblemCode::InvalidRequest,
        ),
        (
            "application/json",
            "{\"participants\": [\"bob\"], \"topic\": \"x\"}",
            StatusCode::BAD_REQUEST,
            ProblemCode::InvalidRequest,
        ),
        (
            "application/json",
            "{\"participants\": \"bob\"}",
            StatusCode::BAD_REQUEST,
            ProblemCode::InvalidRequest,
        ),
        (
            "application/json",
            "",
            StatusCode::BAD_REQUEST,
            ProblemCode::InvalidRequest,
        ),
        (
            "text/plain",
            "{\"participants\": [\"bob\"]}",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ProblemCode::UnsupportedMediaType,
        ),
    ];
    for (content_type, body, status, code) in cases {
        assert_problem(
            app.send_raw(
                Method::POST,
                "/v1/conversations",
                &token,
                content_type,
                body,
            )
            .await?,
            status,
            code,
        )
        .await?;
    }
    let huge = format!("{{\"participants\": [\"{}\"]}}", "b".repeat(20_000));
    assert_problem(
        app.send_raw(
            Method::POST,
            "/v1/conversations",
            &token,
            "application/json",
            &huge,
        )
        .await?,
        StatusCode::PAYLOAD_TOO_LARGE,
        ProblemCode::PayloadTooLarge,
    )
    .await?;
    assert!(app.conversations("alice").await?.is_empty());
    assert!(app.conversations("bob").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn conversations_are_listed_newest_activity_first() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let first = app.open_conversation("alice", &["bob"]).await?;
    app.advance(Duration::from_secs(60));
    let second = app.open_conversation("carol", &["alice"]).await?;
    app.advance(Duration::from_secs(60));
    let third = app.open_conversation("alice", &["dave"]).await?;
    app.close("alice", third.id).await?;
    app.advance(Duration::from_secs(60));
    app.say("bob", first.id, "bump").await?;
    let ids: Vec<Uuid> = app
        .conversations("alice")
        .await?
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, [first.id, third.id, second.id]);
    Ok(())
}

#[tokio::test]
async fn closing_is_idempotent_and_a_closed_conversation_refuses_messages_with_409()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    let conversation = app.open_conversation("alice", &["bob"]).await?;
    app.say("alice", conversation.id, "bye").await?;
    let closed = app.close("bob", conversation.id).await?;
    assert!(closed.closed);
    assert_eq!(closed.participants, conversation.participants);
    assert_eq!(app.close("alice", conversation.id).await?, closed);
    assert_problem(
        app.post_message("alice", conversation.id, "wait").await?,
        StatusCode::CONFLICT,
        ProblemCode::ConversationClosed,
    )
    .await?;
    // History stays readable and the conversation stays listed.
    assert_eq!(app.messages("bob", conversation.id, "").await?.len(), 1);
    assert_eq!(app.conversations("alice").await?, [closed]);
    Ok(())
}

#[tokio::test]
async fn a_non_participant_gets_404_from_every_conversation_endpoint_even_with_a_service_token()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    let conversation = app.open_conversation("alice", &["bob"]).await?;
    app.say("alice", conversation.id, "private").await?;
    let base = format!("/v1/conversations/{}", conversation.id);
    for (token, posting) in [
        (
            app.token("mallory")?,
            (StatusCode::NOT_FOUND, ProblemCode::NotFound),
        ),
        // A service posts `kind: game` messages only (game_messages.rs): text is refused
        // before the conversation is looked at.
        (
            app.service_token()?,
            (StatusCode::FORBIDDEN, ProblemCode::Forbidden),
        ),
    ] {
        assert_problem(
            app.get(&format!("{base}/messages"), &token).await?,
            StatusCode::NOT_FOUND,
            ProblemCode::NotFound,
        )
        .await?;
        assert_problem(
            app.post_json(&format!("{base}/messages"), &token, &json!({"text": "hi"}))
                .await?,
            posting.0,
            posting.1,
        )
        .await?;
        assert_problem(
            app.client
                .post(app.url(&format!("{base}/close")))
                .bearer_auth(&token)
                .send()
                .await?,
            StatusCode::NOT_FOUND,
            ProblemCode::NotFound,
        )
        .await?;
    }
    assert_eq!(app.messages("bob", conversation.id, "").await?.len(), 1);
    assert!(!app.conversations("bob").await?[0].closed);
    assert!(app.conversations("mallory").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn unknown_and_malformed_conversation_ids_are_404_problems() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let token = app.token("alice")?;
    for path in [
        format!("/v1/conversations/{}/messages", Uuid::new_v4()),
        "/v1/conversations/not-a-uuid/messages".to_owned(),
    ] {
        assert_problem(
            app.get(&path, &token).await?,
            StatusCode::NOT_FOUND,
            ProblemCode::NotFound,
        )
        .await?;
        assert_problem(
            app.post_json(&path, &token, &json!({"text": "hi"})).await?,
            StatusCode::NOT_FOUND,
            ProblemCode::NotFound,
        )
        .await?;
    }
    assert_problem(
        app.close_request("alice", Uuid::new_v4()).await?,
        StatusCode::NOT_FOUND,
        ProblemCode::NotFound,
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn past_the_open_conversation_limit_opening_one_is_a_409_that_creates_nothing()
-> anyhow::Result<()> {
    let app = spawn_app_with_limits(Limits {
        max_open_conversations: 3,
        ..Limits::default()
    })
    .await?;
    let mut opened = Vec::new();
    for friend in ["bob", "carol", "dave"] {
        opened.push(app.open_conversation("alice", &[friend]).await?);
    }
    let before = app.conversations("alice").await?;
    let problem = assert_problem(
        app.post_json(
            "/v1/conversations",
            &app.token("alice")?,
            &json!({"participants": ["erin", "frank"]}),
        )
        .await?,
        StatusCode::CONFLICT,
        ProblemCode::ConversationLimit,
    )
    .await?;
    assert!(problem.detail.is_some_and(|d| d.contains("close one")));
    assert_eq!(app.conversations("alice").await?, before);
    assert!(app.conversations("erin").await?.is_empty());
    assert!(app.conversations("frank").await?.is_empty());
    // Someone else may still open one with alice: it counts for them, not for her.
    let invitation = app.open_conversation("erin", &["alice"]).await?;
    assert!(app.conversations("alice").await?.contains(&invitation));
    // Closing one frees a slot.
    app.close("bob", opened[0].id).await?;
    app.open_conversation("alice", &["erin"]).await?;
    assert_problem(
        app.post_json(
            "/v1/conversations",
            &app.token("alice")?,
            &json!({"participants": ["frank"]}),
        )
        .await?,
        StatusCode::CONFLICT,
        ProblemCode::ConversationLimit,
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn answering_a_conversation_past_the_limit_is_a_409_that_stores_nothing() -> anyhow::Result<()>
{
    let app = spawn_app_with_limits(Limits {
        max_open_conversations: 2,
        ..Limits::default()
    })
    .await?;
    app.all_available(&["alice", "bob", "carol", "dave"])
        .await?;
    let first = app.chat("alice", &["bob"]).await?;
    app.chat("carol", &["alice"]).await?;
    // alice has two open conversations (one opened, one answered); dave invites her.
    let invitation = app.open_conversation("dave", &["alice"]).await?;
    app.say("dave", invitation.id, "game?").await?;
    assert_problem(
        app.post_message("alice", invitation.id, "sure").await?,
        StatusCode::CONFLICT,
        ProblemCode::ConversationLimit,
    )
    .await?;
    assert_eq!(app.messages("dave", invitation.id, "").await?.len(), 1);
    assert!(app.partner_names("dave", "").await?.is_empty());
    // In the conversations she already counts, alice posts as before.
    app.say("alice", first.id, "still here").await?;
    // She closes one, then may answer.
    app.close("alice", first.id).await?;
    app.say("alice", invitation.id, "sure").await?;
    assert_eq!(app.partner_names("dave", "").await?, ["alice"]);
    Ok(())
}
