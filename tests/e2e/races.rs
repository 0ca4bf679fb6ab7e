//! Both players arriving at once: one multiplayer session results, never two.

use shared_types::game::{PromptKind, Reason, SessionKind, SessionState};

use crate::helpers::{StateExt, mutual_accept_round, sorted, spawn_world};

/// Fresh pairs per round: each round is a new race, not a reconnect.
const MUTUAL_ACCEPT_ROUNDS: usize = 50;

#[tokio::test]
async fn an_invitee_holding_an_invite_is_switched_to_a_join_prompt_when_the_host_creates_the_lobby()
-> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    world.chatting(&[&alice, &bob]).await?;
    let bob_invite = bob.connect().await?.open_prompt()?.clone();
    assert_eq!(bob_invite.kind, PromptKind::Invite);
    assert_eq!(sorted(&bob_invite.candidates), ["alice"]);
    let mut bob_events = bob.events(None).await?;

    let alice_invite = alice.connect().await?.open_prompt()?.clone();
    assert_eq!(alice_invite.kind, PromptKind::Invite, "{alice_invite:#?}");
    let lobby = alice
        .accept(alice_invite.id, None)
        .await?
        .live_session()?
        .clone();
    assert_eq!(lobby.state, SessionState::Waiting, "{lobby:#?}");

    let bob_state = bob.me().await?;
    let join = bob_state.open_prompt()?;
    assert_eq!(join.kind, PromptKind::Join, "{bob_state:#?}");
    assert_eq!(join.session_id, Some(lobby.id));
    assert_ne!(join.id, bob_invite.id, "the join prompt is a new prompt");
    let cancelled = bob_events
        .wait_for("the invite's cancellation", |e| {
            e.cancelled().is_ok_and(|c| c.prompt_id == bob_invite.id)
        })
        .await?
        .cancelled()?;
    assert_eq!(cancelled.reason, Reason::Superseded, "{cancelled:#?}");
    assert_eq!(cancelled.replaced_by, Some(join.id), "{cancelled:#?}");
    Ok(())
}

#[tokio::test]
async fn accepting_a_superseded_invite_joins_the_hosts_session() -> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    world.chatting(&[&alice, &bob]).await?;
    let bob_invite = bob.connect().await?.open_prompt()?.clone();
    let alice_invite = alice.connect().await?.open_prompt()?.clone();
    let lobby = alice
        .accept(alice_invite.id, None)
        .await?
        .live_session()?
        .clone();

    let bob_state = bob.accept(bob_invite.id, None).await?;

    let session = bob_state.live_session()?;
    assert!(bob_state.prompt.is_none(), "{bob_state:#?}");
    assert_eq!(session.id, lobby.id, "{bob_state:#?}");
    assert_eq!(session.state, SessionState::Active);
    assert_eq!(sorted(&session.players), ["alice", "bob"]);
    let alice_session = alice.me().await?.live_session()?.clone();
    assert_eq!(alice_session.id, lobby.id);
    assert_eq!(alice_session.state, SessionState::Active);
    Ok(())
}

#[tokio::test]
async fn rejecting_a_superseded_invite_declines_the_hosts_session() -> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    world.chatting(&[&alice, &bob]).await?;
    let bob_invite = bob.connect().await?.open_prompt()?.clone();
    let alice_invite = alice.connect().await?.open_prompt()?.clone();
    let lobby = alice
        .accept(alice_invite.id, None)
        .await?
        .live_session()?
        .clone();

    let bob_state = bob.reject(bob_invite.id).await?;

    bob_state.solo(Reason::Rejected)?;
    assert_eq!(alice.me().await?.solo(Reason::Declined)?.id, lobby.id);
    Ok(())
}

#[tokio::test]
async fn simultaneous_mutual_accept_gives_exactly_one_active_session() -> anyhow::Result<()> {
    let world = spawn_world().await?;
    for round in 0..MUTUAL_ACCEPT_ROUNDS {
        let alice = world.player(&format!("alice-{round}"))?;
        let bob = world.player(&format!("bob-{round}"))?;
        let (alice_now, bob_now) = mutual_accept_round(&world, &alice, &bob, round).await?;
        let a = alice_now.live_session()?;
        let b = bob_now.live_session()?;
        assert_eq!(
            a.id, b.id,
            "round {round}: two sessions for one pair\n{alice_now:#?}\n{bob_now:#?}"
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
        assert!(a.pending.is_empty(), "round {round}: {alice_now:#?}");
        assert!(
            alice_now.prompt.is_none() && bob_now.prompt.is_none(),
            "round {round}: nobody is asked again\n{alice_now:#?}\n{bob_now:#?}"
        );
    }
    Ok(())
}
