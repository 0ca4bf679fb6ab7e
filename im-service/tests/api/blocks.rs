//! `PUT`/`DELETE /v1/blocks/{user_id}`, `GET /v1/blocks`: what a block does, and that the
//! blocked user never learns of it.

use im_service::configuration::Limits;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared_types::{im::BlockList, presence::Presence, problem::ProblemCode};
use uuid::Uuid;

use crate::helpers::{TestApp, assert_problem, expect_json, spawn_app, spawn_app_with_limits};

#[tokio::test]
async fn blocking_and_unblocking_are_idempotent_204s_and_the_list_is_newest_first()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    assert!(app.blocked_by("alice").await?.is_empty());
    app.block("alice", "bob").await?;
    app.advance(std::time::Duration::from_secs(5));
    app.block("alice", "carol").await?;
    let first: BlockList = expect_json(
        app.get("/v1/blocks", &app.token("alice")?).await?,
        StatusCode::OK,
    )
    .await?;
    // Blocking again changes nothing, not even the time.
    app.advance(std::time::Duration::from_secs(5));
    app.block("alice", "bob").await?;
    let again: BlockList = expect_json(
        app.get("/v1/blocks", &app.token("alice")?).await?,
        StatusCode::OK,
    )
    .await?;
    assert_eq!(again, first);
    let names: Vec<&str> = again.blocks.iter().map(|b| b.user_id.as_str()).collect();
    assert_eq!(names, ["carol", "bob"]);
    assert_eq!(
        again.blocks[0].blocked_at - again.blocks[1].blocked_at,
        chrono::TimeDelta::seconds(5)
    );
    app.unblock("alice", "bob").await?;
    app.unblock("alice", "bob").await?;
    app.unblock("alice", "never-blocked").await?;
    assert_eq!(app.blocked_by("alice").await?, ["carol"]);
    assert!(app.blocked_by("bob").await?.is_empty(), "bob blocks nobody");
    Ok(())
}

#[tokio::test]
async fn blocking_yourself_is_a_400_unblocking_yourself_changes_nothing_and_bad_ids_are_404()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    let problem = assert_problem(
        app.block_request("alice", "alice").await?,
        StatusCode::BAD_REQUEST,
        ProblemCode::InvalidRequest,
    )
    .await?;
    assert!(problem.detail.is_some_and(|d| d.contains("yourself")));
    let response = app.unblock_request("alice", "alice").await?;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    for bad in ["not%20valid", "a%2Cb", &"x".repeat(65)] {
        for response in [
            app.block_request("alice", bad).await?,
            app.unblock_request("alice", bad).await?,
        ] {
            assert_problem(response, StatusCode::NOT_FOUND, ProblemCode::NotFound).await?;
        }
    }
    assert!(app.blocked_by("alice").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn blocks_are_for_players_a_service_token_is_forbidden_and_changes_nothing()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    let service = app.service_token()?;
    for (method, path) in [
        (Method::PUT, "/v1/blocks/alice"),
        (Method::DELETE, "/v1/blocks/alice"),
        (Method::GET, "/v1/blocks"),
        // The scope is checked before the path: a bad id is a 403 too.
        (Method::PUT, "/v1/blocks/not%20valid"),
    ] {
        assert_problem(
            app.client
                .request(method.clone(), app.url(path))
                .bearer_auth(&service)
                .send()
                .await?,
            StatusCode::FORBIDDEN,
            ProblemCode::Forbidden,
        )
        .await?;
    }
    assert!(app.blocked_by("game-service").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn past_the_block_limit_a_409_block_limit_changes_nothing() -> anyhow::Result<()> {
    let app = spawn_app_with_limits(Limits {
        max_blocks: 2,
        ..Limits::default()
    })
    .await?;
    app.all_available(&["alice", "bob", "carol", "dave"])
        .await?;
    app.chat("alice", &["dave"]).await?;
    app.block("alice", "bob").await?;
    app.block("alice", "carol").await?;
    let problem = assert_problem(
        app.block_request("alice", "dave").await?,
        StatusCode::CONFLICT,
        ProblemCode::BlockLimit,
    )
    .await?;
    assert!(problem.detail.is_some_and(|d| d.contains("unblock one")));
    assert_eq!(app.blocked_by("alice").await?, ["bob", "carol"]);
    // dave is not blocked: still alice's partner.
    assert_eq!(app.partner_names("alice", "").await?, ["dave"]);
    assert_eq!(app.partner_names("dave", "").await?, ["alice"]);
    // Blocking someone already blocked is still fine; unblocking frees a place.
    app.block("alice", "bob").await?;
    app.unblock("alice", "carol").await?;
    app.block("alice", "dave").await?;
    assert!(app.partner_names("alice", "").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_blocked_user_is_never_a_partner_either_way_and_presence_is_hidden_both_ways()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    app.all_available(&["alice", "bob", "carol"]).await?;
    let direct = app.chat("alice", &["bob"]).await?;
    app.chat("carol", &["alice", "bob"]).await?;
    assert_eq!(app.partner_names("alice", "").await?, ["bob", "carol"]);
    let stranger = assert_problem(
        app.presence_of(&app.token("bob")?, "nobody-at-all").await?,
        StatusCode::NOT_FOUND,
        ProblemCode::NotFound,
    )
    .await?;

    app.block("alice", "bob").await?;
    assert_eq!(app.partner_names("alice", "").await?, ["carol"]);
    assert_eq!(app.partner_names("bob", "").await?, ["carol"]);
    assert_eq!(app.partner_names("carol", "").await?, ["alice", "bob"]);
    let hidden = assert_problem(
        app.presence_of(&app.token("bob")?, "alice").await?,
        StatusCode::NOT_FOUND,
        ProblemCode::NotFound,
    )
    .await?;
    assert_eq!(hidden, stranger, "bob gets exactly a stranger's answer");
    assert_problem(
        app.presence_of(&app.token("alice")?, "bob").await?,
        StatusCode::NOT_FOUND,
        ProblemCode::NotFound,
    )
    .await?;
    // The game service asking gets the same answer.
    let answer: shared_types::im::PartnersResponse = expect_json(
        app.partners_request(&app.service_token()?, "bob", "")
            .await?,
        StatusCode::OK,
    )
    .await?;
    let names: Vec<&str> = answer.partners.iter().map(|p| p.user_id.as_str()).collect();
    assert_eq!(names, ["carol"]);
    // Messages in their old conversation change nothing.
    app.talk(direct.id, &["bob", "alice"]).await?;
    assert_eq!(app.partner_names("bob", "").await?, ["carol"]);

    app.unblock("alice", "bob").await?;
    assert_eq!(app.partner_names("alice", "").await?, ["bob", "carol"]);
    expect_json::<Presence>(
        app.presence_of(&app.token("bob")?, "alice").await?,
        StatusCode::OK,
    )
    .await?;
    Ok(())
}

/// Everything `who` can see of a conversation: its listing, messages, posting and closing.
async fn view_of(app: &TestApp, who: &str, id: Uuid) -> anyhow::Result<Vec<(u16, Value)>> {
    let token = app.token(who)?;
    let mut view = Vec::new();
    for response in [
        app.get(&format!("/v1/conversations/{id}/messages"), &token)
            .await?,
        app.post_json(
            &format!("/v1/conversations/{id}/messages"),
            &token,
            &json!({"text": "hello?"}),
        )
        .await?,
        app.client
            .post(app.url(&format!("/v1/conversations/{id}/close")))
            .bearer_auth(&token)
            .send()
            .await?,
    ] {
        let status = response.status().as_u16();
        view.push((status, response.json().await?));
    }
    Ok(view)
}

#[tokio::test]
async fn a_conversation_a_blocked_user_opens_is_invisible_to_the_blocker_and_never_counts()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    app.all_available(&["alice", "mallory", "carol"]).await?;
    app.block("alice", "mallory").await?;
    // Created as usual for mallory: 201, naming alice.
    let response = app
        .post_json(
            "/v1/conversations",
            &app.token("mallory")?,
            &json!({"participants": ["alice"]}),
        )
        .await?;
    let direct: shared_types::im::Conversation = expect_json(response, StatusCode::CREATED).await?;
    assert_eq!(direct.participants[1].as_str(), "alice");
    app.say("mallory", direct.id, "hi alice").await?;
    let group = app
        .open_conversation("mallory", &["alice", "carol"])
        .await?;
    app.talk(group.id, &["mallory", "carol"]).await?;
    assert_eq!(app.conversations("mallory").await?.len(), 2);
    assert_eq!(app.conversations("carol").await?.len(), 1);

    // alice never sees them: not listed, and a 404 exactly like an unknown conversation.
    assert!(app.conversations("alice").await?.is_empty());
    let unknown = view_of(&app, "alice", Uuid::new_v4()).await?;
    for id in [direct.id, group.id] {
        assert_eq!(view_of(&app, "alice", id).await?, unknown);
    }
    assert!(unknown.iter().all(|(status, _)| *status == 404));
    // It never counts: alice is nobody's partner and mallory nobody's through alice.
    assert!(app.partner_names("alice", "").await?.is_empty());
    assert_eq!(app.partner_names("mallory", "").await?, ["carol"]);
    assert_problem(
        app.presence_of(&app.token("mallory")?, "alice").await?,
        StatusCode::NOT_FOUND,
        ProblemCode::NotFound,
    )
    .await?;
    // mallory's view is the one of a conversation nobody answers: still open, her message there.
    let messages = app.messages("mallory", direct.id, "").await?;
    assert_eq!(messages.len(), 1);
    assert!(!app.conversations("mallory").await?.iter().any(|c| c.closed));

    // Unblocking does not reveal what was opened while blocked.
    app.unblock("alice", "mallory").await?;
    assert!(app.conversations("alice").await?.is_empty());
    assert_eq!(view_of(&app, "alice", direct.id).await?, unknown);
    Ok(())
}

#[tokio::test]
async fn the_blocked_user_gets_the_same_answers_as_when_simply_ignored() -> anyhow::Result<()> {
    // Two worlds, identical but for one block: what the blocked user sees must not differ.
    let mut views = Vec::new();
    for blocked in [false, true] {
        let app = spawn_app().await?;
        app.all_available(&["alice", "mallory"]).await?;
        if blocked {
            app.block("alice", "mallory").await?;
        }
        let conversation = app.open_conversation("mallory", &["alice"]).await?;
        app.say("mallory", conversation.id, "hello").await?;
        let token = app.token("mallory")?;
        let mut view = Vec::new();
        for path in [
            "/v1/conversations".to_owned(),
            format!("/v1/conversations/{}/messages", conversation.id),
            "/v1/users/alice/presence".to_owned(),
            "/v1/users/mallory/partners".to_owned(),
            "/v1/blocks".to_owned(),
        ] {
            let response = app.get(&path, &token).await?;
            let status = response.status().as_u16();
            let mut body: Value = response.json().await?;
            // Ids and times differ between the worlds; the shapes and statuses must not.
            scrub(&mut body);
            view.push((
                path.replace(&conversation.id.to_string(), "{id}"),
                status,
                body,
            ));
        }
        views.push(view);
    }
    assert_eq!(views[0], views[1]);
    Ok(())
}

/// Replaces ids and timestamps by placeholders.
fn scrub(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if [
                    "id",
                    "conversation_id",
                    "created_at",
                    "last_activity_at",
                    "sent_at",
                ]
                .contains(&key.as_str())
                    && !value.is_null()
                {
                    *value = Value::String(key.clone());
                } else {
                    scrub(value);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub),
        _ => {}
    }
}
