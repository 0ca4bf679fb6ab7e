//! Presence both ways through the real services: `in_game` reaches the chat (presence
//! answers, partner entries, `presence` events) and clears; going `offline` in the chat
//! cancels the game prompt (`unavailable`) and ends a waiting lobby; nothing is lost while
//! either service is down, or when a replica is killed mid-delivery, and nothing is applied
//! twice.

use std::time::Duration;

use anyhow::ensure;
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::Value;
use shared_types::game::{Reason, SessionState};
use uuid::Uuid;

use crate::helpers::{EventStream, Player, Service, StateExt, eventually, spawn_world};

/// Within the contract's 2 s, with room for a slow machine.
const WITHIN: Duration = Duration::from_secs(10);

/// `user`'s presence as `reader` reads it (`GET /v1/users/{user}/presence`).
async fn presence_of(reader: &Player, user: &Player) -> anyhow::Result<Value> {
    let path = format!("/v1/users/{}/presence", user.id);
    reader
        .raw(Service::Im, Method::GET, &path, None)
        .await?
        .ok()?
        .json()
}

/// The session `activity` names while it is `in_game`, else `None`.
fn in_game(activity: &Value) -> Option<Uuid> {
    (activity["kind"] == "in_game")
        .then(|| activity["session_id"].as_str()?.parse().ok())
        .flatten()
}

/// Waits until `reader` sees `user` in game in `session` (`Some`) or not in game (`None`).
async fn sees_playing(
    reader: &Player,
    user: &Player,
    session: Option<Uuid>,
) -> anyhow::Result<Value> {
    eventually(
        &format!(
            "{} seeing {}'s activity become {session:?}",
            reader.id, user.id
        ),
        WITHIN,
        || async {
            let presence = presence_of(reader, user).await?;
            Ok((in_game(&presence["activity"]) == session).then_some(presence))
        },
    )
    .await
}

/// Waits for the `prompt_cancelled` event of `prompt` on `stream`, which must say `reason`.
async fn cancelled(stream: &mut EventStream, prompt: Uuid, reason: Reason) -> anyhow::Result<()> {
    let event = stream
        .wait_for("the prompt's cancellation", |e| {
            e.cancelled().is_ok_and(|c| c.prompt_id == prompt)
        })
        .await?;
    ensure!(event.cancelled()?.reason == reason, "{event:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_game_reaches_the_chat_while_they_play_and_clears_when_they_leave() -> anyhow::Result<()>
{
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    let carol = world.player("carol")?;
    world.chatting(&[&alice, &bob]).await?;
    world.chatting(&[&carol, &alice]).await?;
    let mut carol_stream = carol.stream(Service::Im, None).await?;

    let invite = alice.connect().await?.open_prompt()?.clone();
    let lobby = alice
        .accept(invite.id, Some(&["bob"]))
        .await?
        .live_session()?
        .clone();
    let join = bob.connect().await?.open_prompt()?.clone();
    bob.accept(join.id, None).await?;

    let seen = sees_playing(&carol, &alice, Some(lobby.id)).await?;
    ensure!(
        seen["activity"]["mode"] == "default" && seen["status"] == "available",
        "{seen}"
    );
    sees_playing(&alice, &bob, Some(lobby.id)).await?;
    let heard = carol_stream
        .wait_for("alice's presence with her game", |e| {
            e.event == "presence"
                && e.data["user_id"] == "alice"
                && in_game(&e.data["activity"]).is_some()
        })
        .await?;
    ensure!(
        in_game(&heard.data["activity"]) == Some(lobby.id),
        "{heard:?}"
    );
    // carol's partners list says alice is in game.
    let partners = carol.partners(None).await?;
    let entry = serde_json::to_value(&partners)?["partners"]
        .as_array()
        .and_then(|list| list.iter().find(|p| p["user_id"] == "alice").cloned())
        .ok_or_else(|| anyhow::anyhow!("alice is carol's partner: {partners:?}"))?;
    ensure!(in_game(&entry["activity"]) == Some(lobby.id), "{entry}");

    bob.leave(lobby.id).await?;
    sees_playing(&alice, &bob, None).await?;
    ensure!(
        in_game(&presence_of(&carol, &alice).await?["activity"]) == Some(lobby.id),
        "alice still plays"
    );
    alice.leave(lobby.id).await?;
    sees_playing(&carol, &alice, None).await?;
    carol_stream
        .wait_for("alice's presence without a game", |e| {
            e.event == "presence" && e.data["user_id"] == "alice" && e.data["activity"].is_null()
        })
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn going_offline_in_the_chat_cancels_the_prompt_and_ends_the_waiting_lobby()
-> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    let carol = world.player("carol")?;
    let dave = world.player("dave")?;
    world.chatting(&[&alice, &bob]).await?;
    world.chatting(&[&carol, &dave]).await?;

    // carol's invite prompt is cancelled when she goes offline.
    let mut carol_events = carol.events(None).await?;
    let invite = carol.connect().await?.open_prompt()?.clone();
    carol.set_presence("offline").await?;
    cancelled(&mut carol_events, invite.id, Reason::Unavailable).await?;
    ensure!(carol.me().await?.prompt.is_none());

    // alice hosts a waiting lobby; bob holds its join prompt; alice goes offline.
    let invite = alice.connect().await?.open_prompt()?.clone();
    let lobby = alice.accept(invite.id, None).await?.live_session()?.clone();
    let mut bob_events = bob.events(None).await?;
    let join = bob.connect().await?.open_prompt()?.clone();
    alice.set_presence("offline").await?;
    cancelled(&mut bob_events, join.id, Reason::Withdrawn).await?;
    let ended = bob.session(lobby.id).await?;
    ensure!(ended.state == SessionState::Ended, "{ended:?}");
    ensure!(alice.me().await?.session.is_none());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_game_service_down_a_presence_change_is_applied_once_it_is_back()
-> anyhow::Result<()> {
    let mut world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    world.chatting(&[&alice, &bob]).await?;
    let invite = alice.connect().await?.open_prompt()?.clone();
    world.signal_game("KILL")?;
    world.wait_game_exit(WITHIN).await?;
    alice.set_presence("offline").await?;
    world.restart_game().await?;
    eventually("the prompt cancelled after the restart", WITHIN, || async {
        Ok(alice.me().await?.prompt.is_none().then_some(()))
    })
    .await?;
    let events = alice
        .events(Some("0"))
        .await?
        .drain(Duration::from_millis(500))
        .await?;
    let cancellations = events
        .iter()
        .filter(|e| e.cancelled().is_ok_and(|c| c.prompt_id == invite.id))
        .count();
    ensure!(cancellations == 1, "once: {events:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_im_down_in_game_reaches_the_chat_once_it_is_back() -> anyhow::Result<()> {
    let mut world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    world.chatting(&[&alice, &bob]).await?;
    let invite = alice.connect().await?.open_prompt()?.clone();
    let lobby = alice.accept(invite.id, None).await?.live_session()?.clone();
    let join = bob.connect().await?.open_prompt()?.clone();
    world.kill_im();
    bob.accept(join.id, None).await?;
    world.restart_im().await?;
    sees_playing(&alice, &bob, Some(lobby.id)).await?;
    sees_playing(&bob, &alice, Some(lobby.id)).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_while_following_the_feed_loses_no_change_and_repeats_none()
-> anyhow::Result<()> {
    let mut world = spawn_world().await?;
    let second = world.spawn_game_replica().await?;
    let mut players = Vec::new();
    for i in 0..10 {
        let host = world.player(&format!("host{i}"))?;
        let guest = world.player(&format!("guest{i}"))?;
        world.chatting(&[&host, &guest]).await?;
        let prompt = host.connect().await?.open_prompt()?.id;
        players.push((host, prompt));
    }
    // Every host goes offline at once; the replica that may hold the feed's lease dies now.
    join_all(players.iter().map(|(host, _)| host.set_presence("offline")))
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<()>>>()?;
    world.signal_game("KILL")?;
    for (host, prompt) in &players {
        let host = host.via(&second);
        eventually(
            &format!("{}'s prompt cancelled", host.id),
            Duration::from_secs(20),
            || async { Ok(host.me().await?.prompt.is_none().then_some(())) },
        )
        .await?;
        let events = host
            .events(Some("0"))
            .await?
            .drain(Duration::from_millis(300))
            .await?;
        let cancellations: Vec<_> = events
            .iter()
            .filter_map(|e| e.cancelled().ok())
            .filter(|c| c.prompt_id == *prompt)
            .collect();
        ensure!(
            cancellations.len() == 1 && cancellations[0].reason == Reason::Unavailable,
            "{}: exactly one cancellation, unavailable: {cancellations:?}",
            host.id
        );
    }
    Ok(())
}
