//! A lobby is announced once in each conversation through which an invitee was found,
//! heard of by its participants, never on the accept's path; with the IM service down the
//! lobby works and the announcement arrives once the IM service is back.

use std::time::Duration;

use anyhow::ensure;
use reqwest::Method;
use shared_types::{game::SessionState, im::MessageKind, problem::ProblemCode};

use super::announced_once;
use crate::helpers::{Service, StateExt, eventually, spawn_world};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lobby_is_announced_once_in_each_source_conversation_and_heard_by_its_participants()
-> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    let carol = world.player("carol")?;
    let dave = world.player("dave")?;
    let with_bob = world.chatting(&[&alice, &bob]).await?;
    let with_carol = world.chatting(&[&alice, &carol]).await?;
    let with_dave = world.chatting(&[&alice, &dave]).await?;
    let mut bob_stream = bob.stream(Service::Im, None).await?;

    let invite = alice.connect().await?.open_prompt()?.clone();
    let lobby = alice
        .accept(invite.id, Some(&["bob", "carol"]))
        .await?
        .live_session()?
        .clone();

    let seen = announced_once(&bob, with_bob, lobby.id).await?;
    let game = seen
        .game
        .clone()
        .unwrap_or_else(|| unreachable!("a game message"));
    ensure!(game.host.as_str() == "alice" && game.mode == "default");
    ensure!(game.state == SessionState::Waiting);
    ensure!(
        seen.text.contains("alice"),
        "a readable text beside it: {seen:?}"
    );
    announced_once(&alice, with_bob, lobby.id).await?;
    announced_once(&carol, with_carol, lobby.id).await?;
    // dave was not chosen: nothing in his conversation.
    dave.post_message(with_dave, "anyone?").await?;
    ensure!(dave.game_messages(with_dave).await?.is_empty());

    let heard = bob_stream
        .wait_for("the announcement as a message event", |e| {
            e.message().is_ok_and(|m| m.kind == MessageKind::Game)
        })
        .await?;
    ensure!(heard.message()?.seq == seen.seq, "{heard:?} vs {seen:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_cannot_post_a_game_message() -> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    let conversation = world.chatting(&[&alice, &bob]).await?;
    let body = serde_json::json!({
        "kind": "game",
        "text": "free gold",
        "game": {"session_id": uuid::Uuid::new_v4(), "host": "alice", "mode": "default", "state": "waiting"},
    })
    .to_string();
    let path = format!("/v1/conversations/{conversation}/messages");
    alice
        .raw(Service::Im, Method::POST, &path, Some(&body))
        .await?
        .problem(403, ProblemCode::Forbidden)?;
    ensure!(
        bob.game_messages(conversation).await?.is_empty(),
        "nothing stored"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_im_down_a_lobby_works_and_its_announcement_arrives_once_the_im_is_back()
-> anyhow::Result<()> {
    let mut world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    let conversation = world.chatting(&[&alice, &bob]).await?;
    let invite = alice.connect().await?.open_prompt()?.clone();

    world.kill_im();
    let lobby = alice.accept(invite.id, None).await?.live_session()?.clone();
    ensure!(
        lobby.state == SessionState::Waiting,
        "the lobby works without the IM"
    );
    // bob joins without the IM service too: his invitation becomes a join prompt.
    let join = bob.connect().await?.open_prompt()?.clone();
    bob.accept(join.id, None).await?;
    // Tries fail meanwhile and are rescheduled (250 ms, 500 ms, 1 s, … apart).
    eventually(
        "a try deferred while the IM is down",
        Duration::from_secs(10),
        || async {
            let retried = world
                .metric(
                    None,
                    "game_im_deliveries_total{kind=\"announcement\",outcome=\"retried\"}",
                )
                .await?;
            Ok((retried >= 1.0).then_some(()))
        },
    )
    .await?;

    world.restart_im().await?;
    announced_once(&bob, conversation, lobby.id).await?;
    Ok(())
}
