//! Both services on a real 3-master Redis Cluster (`REDIS_URL=redis+cluster://…`): the flows
//! that span several players' slots commit in two phases there.

use std::collections::BTreeSet;

use shared_types::game::{PromptKind, SessionKind, SessionState};

use crate::helpers::{
    StateExt, StoreChoice, TestWorld, WorldOptions, invariants::check_store, mutual_accept_round,
    sorted, spawn_world_with,
};

/// Each round crosses two replicas and several cluster slots.
const MUTUAL_ACCEPT_ROUNDS: usize = 20;

async fn on_the_cluster() -> anyhow::Result<TestWorld> {
    spawn_world_with(WorldOptions {
        store: StoreChoice::SharedCluster,
        ..WorldOptions::default()
    })
    .await
}

#[tokio::test]
async fn on_a_redis_cluster_invite_accept_join_accept_gives_one_active_session()
-> anyhow::Result<()> {
    let world = on_the_cluster().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    world.chatting(&[&alice, &bob]).await?;
    let mut bob_events = bob.events(None).await?;

    let invite = alice.connect().await?.open_prompt()?.clone();
    assert_eq!(invite.kind, PromptKind::Invite, "{invite:#?}");
    assert_eq!(sorted(&invite.candidates), ["bob"]);
    let lobby = alice.accept(invite.id, None).await?.live_session()?.clone();
    assert_eq!(lobby.state, SessionState::Waiting, "{lobby:#?}");
    let join = bob.connect().await?.open_prompt()?.clone();
    assert_eq!(join.kind, PromptKind::Join, "{join:#?}");
    assert_eq!(join.session_id, Some(lobby.id));
    bob_events
        .wait_for("the join prompt", |e| {
            e.prompt().is_ok_and(|p| p.id == join.id)
        })
        .await?;
    bob.accept(join.id, None).await?;

    for state in [alice.me().await?, bob.me().await?] {
        let session = state.live_session()?;
        assert_eq!(session.id, lobby.id, "{state:#?}");
        assert_eq!(session.kind, SessionKind::Multiplayer, "{state:#?}");
        assert_eq!(session.state, SessionState::Active, "{state:#?}");
        assert_eq!(sorted(&session.players), ["alice", "bob"], "{state:#?}");
    }
    bob_events
        .wait_for("the active session", |e| {
            e.session()
                .is_ok_and(|s| s.id == lobby.id && s.state == SessionState::Active)
        })
        .await?;
    // Every key on every master has a TTL, no two-phase commit is left half-done.
    check_store(&world).await?;
    // The store checks really read every master: the world's keys are spread over them.
    let keys = world.stored_keys().await?;
    let nodes: BTreeSet<&str> = keys.iter().map(|key| key.node.as_str()).collect();
    assert!(
        nodes.len() >= 2,
        "the world's {} keys were all read from {nodes:?}",
        keys.len()
    );
    Ok(())
}

#[tokio::test]
async fn on_a_redis_cluster_simultaneous_mutual_accept_on_two_replicas_gives_exactly_one_active_session()
-> anyhow::Result<()> {
    let mut world = on_the_cluster().await?;
    let other = world.spawn_game_replica().await?;
    for round in 0..MUTUAL_ACCEPT_ROUNDS {
        let alice = world.player(&format!("alice-{round}"))?;
        let bob = world.player(&format!("bob-{round}"))?.via(&other);
        let (alice_now, bob_now) = mutual_accept_round(&world, &alice, &bob, round).await?;
        let (a, b) = (alice_now.live_session()?, bob_now.live_session()?);
        assert_eq!(
            a.id, b.id,
            "round {round}: two sessions\n{alice_now:#?}\n{bob_now:#?}"
        );
        assert_eq!(
            a.kind,
            SessionKind::Multiplayer,
            "round {round}: {alice_now:#?}"
        );
        assert_eq!(
            a.state,
            SessionState::Active,
            "round {round}: {alice_now:#?}"
        );
        assert_eq!(
            sorted(&a.players),
            [alice.id.as_str(), bob.id.as_str()],
            "round {round}: {alice_now:#?}"
        );
        assert!(
            alice_now.prompt.is_none() && bob_now.prompt.is_none(),
            "round {round}: nobody is asked again\n{alice_now:#?}\n{bob_now:#?}"
        );
    }
    check_store(&world).await?;
    Ok(())
}
