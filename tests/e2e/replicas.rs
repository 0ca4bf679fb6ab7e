//! Several game-service replicas sharing one Redis behave as one service.

use shared_types::game::{PromptKind, SessionState};

use crate::helpers::{StateExt, mutual_accept_round, sorted, spawn_world};

/// Fewer rounds than the single-replica race: each round crosses two processes.
const CROSS_REPLICA_ROUNDS: usize = 20;

#[tokio::test]
async fn a_flow_spread_over_two_replicas_gives_one_session() -> anyhow::Result<()> {
    let mut world = spawn_world().await?;
    let other = world.spawn_game_replica().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    world.chatting(&[&alice, &bob]).await?;

    let invite = alice.connect().await?.open_prompt()?.clone();
    let lobby = alice
        .via(&other)
        .accept(invite.id, None)
        .await?
        .live_session()?
        .clone();
    let join = bob.via(&other).connect().await?.open_prompt()?.clone();
    assert_eq!(join.kind, PromptKind::Join);
    assert_eq!(join.session_id, Some(lobby.id));
    bob.accept(join.id, None).await?;

    for view in [
        alice.me().await?,
        alice.via(&other).me().await?,
        bob.me().await?,
        bob.via(&other).me().await?,
    ] {
        let session = view.live_session()?;
        assert_eq!(session.id, lobby.id, "{view:#?}");
        assert_eq!(session.state, SessionState::Active, "{view:#?}");
        assert_eq!(sorted(&session.players), ["alice", "bob"], "{view:#?}");
    }
    Ok(())
}

#[tokio::test]
async fn events_reach_a_player_whose_stream_is_held_by_another_replica() -> anyhow::Result<()> {
    let mut world = spawn_world().await?;
    let other = world.spawn_game_replica().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    world.chatting(&[&alice, &bob]).await?;
    let mut alice_stream = alice.via(&other).events(None).await?;

    let invite = alice.connect().await?.open_prompt()?.clone();
    alice_stream
        .wait_for("the invite created on the other replica", |e| {
            e.prompt().is_ok_and(|p| p.id == invite.id)
        })
        .await?;
    let lobby = alice.accept(invite.id, None).await?.live_session()?.clone();
    let join = bob.connect().await?.open_prompt()?.clone();
    bob.accept(join.id, None).await?;
    alice_stream
        .wait_for("the session turning active on the other replica", |e| {
            e.session()
                .is_ok_and(|s| s.id == lobby.id && s.state == SessionState::Active)
        })
        .await?;
    Ok(())
}

#[tokio::test]
async fn simultaneous_mutual_accept_on_two_replicas_gives_exactly_one_active_session()
-> anyhow::Result<()> {
    let mut world = spawn_world().await?;
    let other = world.spawn_game_replica().await?;
    for round in 0..CROSS_REPLICA_ROUNDS {
        let alice = world.player(&format!("alice-{round}"))?;
        let bob = world.player(&format!("bob-{round}"))?.via(&other);
        let (alice_now, bob_now) = mutual_accept_round(&world, &alice, &bob, round).await?;
        let (a, b) = (alice_now.live_session()?, bob_now.live_session()?);
        assert_eq!(
            a.id, b.id,
            "round {round}: two sessions\n{alice_now:#?}\n{bob_now:#?}"
        );
        assert_eq!(
            a.state,
            SessionState::Active,
            "round {round}: {alice_now:#?}"
        );
        assert_eq!(sorted(&a.players).len(), 2, "round {round}: {alice_now:#?}");
    }
    Ok(())
}
