//! `/v1/conversations/{id}/messages`: posting messages and reading them a page at a time.

use std::time::Duration;

use im_service::configuration::Limits;
use reqwest::StatusCode;
use serde_json::json;
use shared_types::{
    im::{MAX_MESSAGE_CHARS, Message},
    problem::ProblemCode,
};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with_limits};

#[tokio::test]
async fn posting_a_message_returns_it_and_moves_the_last_activity() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let conversation = app.open_conversation("alice", &["bob"]).await?;
    app.advance(Duration::from_secs(90));
    let message = app.say("bob", conversation.id, "hi alice 👋").await?;
    assert_eq!(message.seq, 1);
    assert_eq!(message.sender.as_str(), "bob");
    assert_eq!(message.text, "hi alice 👋");
    assert_eq!(message.conversation_id, conversation.id);
    assert_eq!(message.sent_at, app.clock_now());
    let listed = app.conversations("alice").await?;
    assert_eq!(listed[0].last_activity_at, Some(message.sent_at));
    assert_eq!(listed[0].created_at, conversation.created_at);
    assert_eq!(app.say("alice", conversation.id, "hi bob").await?.seq, 2);
    Ok(())
}

#[tokio::test]
async fn message_text_is_one_to_4096_characters_and_a_refused_one_is_not_stored()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    let conversation = app.open_conversation("alice", &["bob"]).await?;
    for text in [
        String::new(),
        "x".repeat(MAX_MESSAGE_CHARS + 1),
        "é".repeat(MAX_MESSAGE_CHARS + 1),
    ] {
        assert_problem(
            app.post_message("alice", conversation.id, &text).await?,
            StatusCode::BAD_REQUEST,
            ProblemCode::InvalidRequest,
        )
        .await?;
    }
    let path = format!("/v1/conversations/{}/messages", conversation.id);
    let token = app.token("alice")?;
    for body in [
        json!({"text": "hi", "urgent": true}),
        json!({"txt": "hi"}),
        json!({"text": 5}),
    ] {
        assert_problem(
            app.post_json(&path, &token, &body).await?,
            StatusCode::BAD_REQUEST,
            ProblemCode::InvalidRequest,
        )
        .await?;
    }
    assert!(app.messages("alice", conversation.id, "").await?.is_empty());
    assert_eq!(
        app.conversations("alice").await?[0].last_activity_at,
        conversation.last_activity_at
    );
    // Multi-byte characters count once each: 4096 of them (8 KiB of UTF-8) are fine.
    let longest = "é".repeat(MAX_MESSAGE_CHARS);
    assert_eq!(
        app.say("alice", conversation.id, &longest).await?.text,
        longest
    );
    assert_eq!(app.say("alice", conversation.id, "x").await?.seq, 2);
    Ok(())
}

#[tokio::test]
async fn messages_are_read_oldest_first_after_a_seq_a_page_at_a_time() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let conversation = app.open_conversation("alice", &["bob"]).await?;
    for i in 1..=60 {
        let who = if i % 2 == 0 { "alice" } else { "bob" };
        app.say(who, conversation.id, &format!("m{i}")).await?;
    }
    let seqs = |page: Vec<Message>| page.iter().map(|m| m.seq).collect::<Vec<_>>();
    let first_page = app.messages("bob", conversation.id, "").await?;
    assert_eq!(seqs(first_page.clone()), (1..=50).collect::<Vec<_>>());
    assert_eq!(first_page[0].text, "m1");
    assert_eq!(
        seqs(app.messages("bob", conversation.id, "?after=50").await?),
        (51..=60).collect::<Vec<_>>()
    );
    assert_eq!(
        seqs(
            app.messages("alice", conversation.id, "?after=10&limit=3")
                .await?
        ),
        [11, 12, 13]
    );
    assert!(
        app.messages("alice", conversation.id, "?after=60")
            .await?
            .is_empty()
    );
    assert_eq!(
        app.messages("alice", conversation.id, "?limit=200")
            .await?
            .len(),
        60
    );
    let token = app.token("alice")?;
    for query in [
        "?limit=0",
        "?limit=201",
        "?after=-1",
        "?after=abc",
        "?page=2",
    ] {
        assert_problem(
            app.get(
                &format!("/v1/conversations/{}/messages{query}", conversation.id),
                &token,
            )
            .await?,
            StatusCode::BAD_REQUEST,
            ProblemCode::InvalidRequest,
        )
        .await?;
    }
    Ok(())
}

#[tokio::test]
async fn only_the_newest_messages_are_kept() -> anyhow::Result<()> {
    let app = spawn_app_with_limits(Limits {
        messages_kept: 5,
        ..Limits::default()
    })
    .await?;
    let conversation = app.open_conversation("alice", &["bob"]).await?;
    for i in 1..=8 {
        let message = app.say("alice", conversation.id, &format!("m{i}")).await?;
        assert_eq!(message.seq, i);
    }
    let kept = app.messages("bob", conversation.id, "").await?;
    let seqs: Vec<u64> = kept.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [4, 5, 6, 7, 8]);
    assert_eq!(kept[0].text, "m4");
    let page: Vec<u64> = app
        .messages("bob", conversation.id, "?after=5&limit=2")
        .await?
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(page, [6, 7]);
    Ok(())
}
