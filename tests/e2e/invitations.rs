//! The invitation flow: invite, lobby, join, accept or reject, subsets, trios, leaving.

use reqwest::Method;
use shared_types::{
    game::{PromptKind, Reason, SessionKind, SessionState},
    problem::ProblemCode,
};

use crate::helpers::{Service, StateExt, names, sorted, spawn_world};

#[tokio::test]
async fn invite_accept_join_accept_gives_one_active_session_with_both_players() -> anyhow::Result<()>
{
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    world.chatting(&[&alice, &bob]).await?;

    let invite = alice.connect().await?;
    let prompt = invite.open_prompt()?;
    assert_eq!(prompt.kind, PromptKind::Invite, "{prompt:#?}");
    assert_eq!(sorted(&prompt.candidates), ["bob"]);
    assert!(invite.session.is_none() && !invite.degraded, "{invite:#?}");

    let lobby = alice.accept(prompt.id, None).await?;
    let lobby_session = lobby.live_session()?;
    assert!(lobby.prompt.is_none(), "{lobby:#?}");
    assert_eq!(lobby_session.kind, SessionKind::Multiplayer);
    assert_eq!(lobby_session.state, SessionState::Waiting);
    assert_eq!(lobby_session.host.as_str(), "alice");
    assert_eq!(sorted(&lobby_session.players), ["alice"]);
    assert_eq!(sorted(&lobby_session.pending), ["bob"]);
    assert_eq!(lobby_session.reason, None);

    let join = bob.connect().await?;
    let join_prompt = join.open_prompt()?;
    assert_eq!(join_prompt.kind, PromptKind::Join, "{join_prompt:#?}");
    assert_eq!(join_prompt.session_id, Some(lobby_session.id));
    assert_eq!(join_prompt.host.as_ref().map(|h| h.as_str()), Some("alice"));
    assert_eq!(sorted(&join_prompt.candidates), ["alice"]);
    assert!(join.session.is_none(), "{join:#?}");

    let joined = bob.accept(join_prompt.id, None).await?;
    assert!(joined.prompt.is_none(), "{joined:#?}");

    let alice_now = alice.me().await?;
    let bob_now = bob.me().await?;
    for state in [&joined, &alice_now, &bob_now] {
        let session = state.live_session()?;
        assert_eq!(session.id, lobby_session.id, "{state:#?}");
        assert_eq!(session.kind, SessionKind::Multiplayer, "{state:#?}");
        assert_eq!(session.state, SessionState::Active, "{state:#?}");
        assert_eq!(sorted(&session.players), ["alice", "bob"], "{state:#?}");
        assert!(session.pending.is_empty(), "{state:#?}");
        assert!(!session.join_token.is_empty(), "{state:#?}");
    }
    let alice_view = alice.session(lobby_session.id).await?;
    let bob_view = bob.session(lobby_session.id).await?;
    assert_eq!(alice_view.state, SessionState::Active);
    assert_eq!(sorted(&bob_view.players), ["alice", "bob"]);
    assert!(!alice_view.join_token.is_empty() && !bob_view.join_token.is_empty());
    assert_ne!(
        alice_view.join_token, bob_view.join_token,
        "each player gets a join token of their own"
    );
    Ok(())
}

#[tokio::test]
async fn a_host_who_rejects_the_invite_plays_solo() -> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    world.chatting(&[&alice, &bob]).await?;
    let prompt = alice.connect().await?.open_prompt()?.clone();

    let state = alice.reject(prompt.id).await?;

    state.solo(Reason::Rejected)?;
    assert_eq!(alice.me().await?, state);
    Ok(())
}

#[tokio::test]
async fn an_invitee_who_rejects_plays_solo_and_the_hosts_lobby_turns_solo_declined()
-> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    world.chatting(&[&alice, &bob]).await?;
    let invite = alice.connect().await?.open_prompt()?.clone();
    let lobby = alice.accept(invite.id, None).await?.live_session()?.clone();
    let join = bob.connect().await?.open_prompt()?.clone();

    let bob_state = bob.reject(join.id).await?;

    let bob_solo = bob_state.solo(Reason::Rejected)?;
    assert_ne!(
        bob_solo.id, lobby.id,
        "bob plays alone, not in alice's lobby"
    );
    let alice_state = alice.me().await?;
    let alice_solo = alice_state.solo(Reason::Declined)?;
    assert_eq!(alice_solo.id, lobby.id, "the lobby itself turns solo");
    assert_eq!(sorted(&alice_solo.players), ["alice"]);
    assert!(alice_solo.pending.is_empty(), "{alice_solo:#?}");
    Ok(())
}

#[tokio::test]
async fn in_a_trio_the_lobby_keeps_waiting_until_the_last_invitee_declines() -> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    let carol = world.player("carol")?;
    world.chatting(&[&alice, &bob, &carol]).await?;
    let invite = alice.connect().await?.open_prompt()?.clone();
    assert_eq!(sorted(&invite.candidates), ["bob", "carol"]);
    let lobby = alice.accept(invite.id, None).await?.live_session()?.clone();
    assert_eq!(sorted(&lobby.pending), ["bob", "carol"]);

    let bob_join = bob.connect().await?.open_prompt()?.clone();
    bob.reject(bob_join.id).await?.solo(Reason::Rejected)?;

    let still = alice.me().await?;
    let waiting = still.live_session()?;
    assert_eq!(waiting.id, lobby.id);
    assert_eq!(waiting.kind, SessionKind::Multiplayer, "{still:#?}");
    assert_eq!(waiting.state, SessionState::Waiting, "{still:#?}");
    assert_eq!(sorted(&waiting.pending), ["carol"], "{still:#?}");

    let carol_join = carol.connect().await?.open_prompt()?.clone();
    assert_eq!(carol_join.session_id, Some(lobby.id));
    carol.reject(carol_join.id).await?.solo(Reason::Rejected)?;

    let alice_state = alice.me().await?;
    assert_eq!(alice_state.solo(Reason::Declined)?.id, lobby.id);
    Ok(())
}

#[tokio::test]
async fn in_a_trio_the_session_turns_active_with_the_first_joiner_and_others_may_still_join()
-> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    let carol = world.player("carol")?;
    world.chatting(&[&alice, &bob, &carol]).await?;
    let invite = alice.connect().await?.open_prompt()?.clone();
    let lobby = alice.accept(invite.id, None).await?.live_session()?.clone();

    let bob_join = bob.connect().await?.open_prompt()?.clone();
    let bob_state = bob.accept(bob_join.id, None).await?;
    let active = bob_state.live_session()?;
    assert_eq!(active.id, lobby.id);
    assert_eq!(active.state, SessionState::Active, "{bob_state:#?}");
    assert_eq!(sorted(&active.players), ["alice", "bob"]);
    assert_eq!(sorted(&active.pending), ["carol"]);

    let carol_join = carol.connect().await?.open_prompt()?.clone();
    assert_eq!(carol_join.kind, PromptKind::Join);
    let carol_state = carol.accept(carol_join.id, None).await?;
    let full = carol_state.live_session()?;
    assert_eq!(full.id, lobby.id);
    assert_eq!(sorted(&full.players), ["alice", "bob", "carol"]);
    assert!(full.pending.is_empty(), "{full:#?}");
    Ok(())
}

#[tokio::test]
async fn accepting_a_subset_invites_only_that_subset() -> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    let carol = world.player("carol")?;
    world.chatting(&[&alice, &bob, &carol]).await?;
    let invite = alice.connect().await?.open_prompt()?.clone();
    assert_eq!(sorted(&invite.candidates), ["bob", "carol"]);

    let lobby = alice
        .accept(invite.id, Some(&["bob"]))
        .await?
        .live_session()?
        .clone();

    assert_eq!(sorted(&lobby.pending), names(&[&bob]), "{lobby:#?}");
    let carol_state = carol.connect().await?;
    if let Some(prompt) = &carol_state.prompt {
        assert!(
            prompt.session_id != Some(lobby.id),
            "carol was not chosen, yet she is asked to join: {carol_state:#?}"
        );
    }
    assert!(
        carol_state
            .session
            .as_ref()
            .is_none_or(|s| s.id != lobby.id),
        "{carol_state:#?}"
    );
    carol
        .raw(
            Service::Game,
            Method::GET,
            &format!("/v1/sessions/{}", lobby.id),
            None,
        )
        .await?
        .problem(404, ProblemCode::NotFound)?;
    let bob_join = bob.connect().await?.open_prompt()?.clone();
    assert_eq!(bob_join.session_id, Some(lobby.id));
    Ok(())
}

#[tokio::test]
async fn leaving_ends_a_session_once_nobody_is_in_it() -> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    world.chatting(&[&alice, &bob]).await?;
    let invite = alice.connect().await?.open_prompt()?.clone();
    let lobby = alice.accept(invite.id, None).await?.live_session()?.clone();
    let join = bob.connect().await?.open_prompt()?.clone();
    bob.accept(join.id, None).await?;

    let alice_left = alice.leave(lobby.id).await?;
    assert!(
        alice_left.session.as_ref().is_none_or(|s| s.id != lobby.id),
        "alice left, yet her state still holds the session: {alice_left:#?}"
    );
    let bob_view = bob.session(lobby.id).await?;
    assert_eq!(bob_view.state, SessionState::Active, "bob is still playing");

    bob.leave(lobby.id).await?;
    let ended = alice.session(lobby.id).await?;
    assert_eq!(ended.state, SessionState::Ended, "{ended:#?}");

    let again = alice.connect().await?;
    assert!(
        again.session.as_ref().is_none_or(|s| s.id != lobby.id),
        "connecting after the end must not return the ended session: {again:#?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_host_leaving_the_lobby_withdraws_the_pending_join_prompts() -> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    world.chatting(&[&alice, &bob]).await?;
    let invite = alice.connect().await?.open_prompt()?.clone();
    let lobby = alice.accept(invite.id, None).await?.live_session()?.clone();
    let join = bob.connect().await?.open_prompt()?.clone();
    let mut bob_events = bob.events(None).await?;

    alice.leave(lobby.id).await?;

    let cancelled = bob_events
        .wait_for("the join prompt's cancellation", |e| {
            e.cancelled().is_ok_and(|c| c.prompt_id == join.id)
        })
        .await?
        .cancelled()?;
    assert_eq!(cancelled.reason, Reason::Withdrawn, "{cancelled:#?}");
    let bob_state = bob.me().await?;
    assert!(
        bob_state.prompt.as_ref().is_none_or(|p| p.id != join.id),
        "{bob_state:#?}"
    );
    assert!(
        bob_state.session.as_ref().is_none_or(|s| s.id != lobby.id),
        "{bob_state:#?}"
    );
    bob.raw(
        Service::Game,
        Method::POST,
        &format!("/v1/prompts/{}/accept", join.id),
        None,
    )
    .await?
    .problem(409, ProblemCode::PromptClosed)?;
    Ok(())
}
