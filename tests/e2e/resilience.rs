//! The IM service down or slow, Redis down: answers stay fast and never 5xx for the IM.

use std::time::Duration;

use reqwest::Method;
use shared_types::{
    game::{PromptKind, Reason},
    problem::ProblemCode,
};
use tokio::net::TcpListener;

use crate::helpers::{
    Service, StateExt, StoreChoice, WorldOptions, eventually, sorted, spawn_world, spawn_world_with,
};

/// "Well under 2 s": the IM timeout is 500 ms by default.
const DEGRADED_LIMIT: Duration = Duration::from_millis(1500);

#[tokio::test]
async fn with_the_im_service_killed_connect_answers_quickly_with_a_degraded_solo_session()
-> anyhow::Result<()> {
    let mut world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    world.chatting(&[&alice, &bob]).await?;
    world.kill_im();

    let reply = alice
        .raw(Service::Game, Method::POST, "/v1/connect", None)
        .await?;

    assert!(
        reply.elapsed < DEGRADED_LIMIT,
        "connect took {:?} with the IM service down",
        reply.elapsed
    );
    let state: shared_types::game::PlayerState = reply.ok()?.json()?;
    state.solo(Reason::ImUnavailable)?;
    assert!(state.degraded, "{state:#?}");
    assert!(
        alice.me().await?.degraded,
        "the state stays marked degraded"
    );

    world.restart_im().await?;
    let carol = world.player("carol")?;
    let dave = world.player("dave")?;
    world.chatting(&[&carol, &dave]).await?;
    let recovered = carol.connect().await?;
    let prompt = recovered.open_prompt()?;
    assert_eq!(prompt.kind, PromptKind::Invite, "{recovered:#?}");
    assert_eq!(sorted(&prompt.candidates), ["dave"]);
    assert!(!recovered.degraded);
    Ok(())
}

#[tokio::test]
async fn with_the_im_service_hanging_connect_answers_quickly_with_a_degraded_solo_session()
-> anyhow::Result<()> {
    let mut world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    world.chatting(&[&alice, &bob]).await?;
    world.kill_im();
    // Something that accepts connections on the IM port and never answers.
    let blackhole = TcpListener::bind(("127.0.0.1", world.im_port()?)).await?;
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = blackhole.accept().await {
            held.push(socket);
        }
    });

    let reply = alice
        .raw(Service::Game, Method::POST, "/v1/connect", None)
        .await?;
    hold.abort();

    assert!(
        reply.elapsed < DEGRADED_LIMIT,
        "connect took {:?} with the IM service hanging",
        reply.elapsed
    );
    let state: shared_types::game::PlayerState = reply.ok()?.json()?;
    state.solo(Reason::ImUnavailable)?;
    assert!(state.degraded, "{state:#?}");
    Ok(())
}

#[tokio::test]
async fn with_redis_down_the_game_service_answers_503_and_recovers_by_itself() -> anyhow::Result<()>
{
    // Kills Redis itself: a server of its own, even when the suite runs on a cluster.
    let mut world = spawn_world_with(WorldOptions {
        store: StoreChoice::PrivateRedis,
        ..WorldOptions::default()
    })
    .await?;
    let alice = world.player("alice")?;
    alice.set_presence("available").await?;
    world.redis()?.kill();

    let reply = alice
        .raw(Service::Game, Method::POST, "/v1/connect", None)
        .await?;
    reply.problem(503, ProblemCode::StoreUnavailable)?;
    assert!(
        reply.headers.contains_key("retry-after"),
        "a 503 says when to retry: {:?}",
        reply.headers
    );

    // Blocks the test's runtime for a moment; nothing else needs it meanwhile.
    world.redis()?.restart()?;
    // The restarted Redis is empty: alice's presence is gone, so she plays solo.
    let state = eventually(
        "the game service recovering",
        Duration::from_secs(10),
        || async {
            let reply = alice
                .raw(Service::Game, Method::POST, "/v1/connect", None)
                .await?;
            Ok(reply.status.is_success().then_some(reply))
        },
    )
    .await?;
    let state: shared_types::game::PlayerState = state.json()?;
    state.live_session()?;
    Ok(())
}

#[tokio::test]
async fn a_game_service_restart_loses_no_prompt_lobby_or_invitation() -> anyhow::Result<()> {
    let mut world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    let carol = world.player("carol")?;
    let dave = world.player("dave")?;
    world.chatting(&[&alice, &bob]).await?;
    world.chatting(&[&carol, &dave]).await?;
    let invite = alice.connect().await?.open_prompt()?.clone();
    let lobby = alice.accept(invite.id, None).await?.live_session()?.clone();
    let carol_before = carol.connect().await?;

    world.restart_game().await?;

    assert_eq!(
        alice.me().await?.live_session()?.id,
        lobby.id,
        "the lobby survived"
    );
    assert_eq!(
        carol.me().await?.open_prompt()?.id,
        carol_before.open_prompt()?.id,
        "the open prompt survived"
    );
    let join = bob.connect().await?.open_prompt()?.clone();
    assert_eq!(
        join.session_id,
        Some(lobby.id),
        "the stored invitation survived"
    );
    bob.accept(join.id, None).await?;
    assert_eq!(
        alice.me().await?.live_session()?.players.len(),
        2,
        "both players in the session"
    );
    Ok(())
}
