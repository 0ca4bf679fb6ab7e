//! The chat side of lobbies on each store: announcements into the conversations the
//! invitees were found through (retried while the IM service is down), and lobbies
//! launched from a chat.

use std::collections::BTreeSet;

use anyhow::ensure;
use game_service::{domain::engine::Refusal, game::GameError};
use shared_types::game::{PromptKind, SessionKind, SessionState};
use uuid::Uuid;

use crate::{
    helpers::{Harness, INVITE_TTL_SECS, StateExt, uid},
    on_both_stores,
};

on_both_stores!(
    a_lobby_is_announced_once_in_each_conversation_its_invitees_were_found_through,
    only_the_chosen_invitees_conversations_are_announced,
    while_the_im_is_down_an_announcement_is_retried_then_posted_once,
    an_announcement_the_im_never_takes_is_dropped_when_the_invitations_run_out,
    a_lobby_that_turned_solo_before_its_announcement_is_not_announced,
    a_launch_opens_a_lobby_prompts_idle_invitees_and_is_announced_in_its_conversation,
    a_launch_turns_an_invite_prompt_naming_the_host_into_a_join_prompt,
    launching_while_playing_is_already_playing_and_changes_nothing,
    a_launch_with_an_unknown_mode_changes_nothing,
);

async fn a_lobby_is_announced_once_in_each_conversation_its_invitees_were_found_through(
    h: Harness,
) -> anyhow::Result<()> {
    let with_bob = h.talk("alice", &["bob"]);
    let with_carol_and_dave = h.talk("alice", &["carol", "dave"]);
    let invite = h.connect("alice").await?.prompt()?.clone();
    let lobby = h.accept("alice", invite.id).await?.session()?.clone();
    ensure!(h.announced().is_empty(), "never on the accept's path");
    h.sweep().await?;
    let announced = h.announced();
    let places: BTreeSet<Uuid> = announced.iter().map(|(c, _)| *c).collect();
    ensure!(
        announced.len() == 2 && places == BTreeSet::from([with_bob, with_carol_and_dave]),
        "{announced:?}"
    );
    for (_, game) in &announced {
        ensure!(game.session_id == lobby.id && game.host == uid("alice"));
        ensure!(game.mode == "default" && game.state == SessionState::Waiting);
    }
    h.advance(1);
    h.sweep().await?;
    ensure!(h.announced().len() == 2, "posted once: {:?}", h.announced());
    Ok(())
}

async fn only_the_chosen_invitees_conversations_are_announced(h: Harness) -> anyhow::Result<()> {
    let with_bob = h.talk("alice", &["bob"]);
    h.talk("alice", &["carol"]);
    let invite = h.connect("alice").await?.prompt()?.clone();
    h.accept_with("alice", invite.id, &["bob"]).await?;
    h.sweep().await?;
    let places: Vec<Uuid> = h.announced().iter().map(|(c, _)| *c).collect();
    ensure!(places == [with_bob], "{places:?}");
    Ok(())
}

async fn while_the_im_is_down_an_announcement_is_retried_then_posted_once(
    h: Harness,
) -> anyhow::Result<()> {
    let conversation = h.talk("alice", &["bob"]);
    let invite = h.connect("alice").await?.prompt()?.clone();
    h.im_down(true);
    let lobby = h.accept("alice", invite.id).await?.session()?.clone();
    ensure!(
        lobby.state == SessionState::Waiting,
        "the lobby works without the IM"
    );
    for _ in 0..3 {
        h.sweep().await?;
        h.advance(1);
    }
    ensure!(h.announced().is_empty());
    h.im_down(false);
    // The backoff is at most 5 s: within it the next try goes out.
    for _ in 0..6 {
        h.advance(1);
        h.sweep().await?;
    }
    let announced = h.announced();
    ensure!(
        announced.len() == 1 && announced[0].0 == conversation,
        "{announced:?}"
    );
    ensure!(announced[0].1.session_id == lobby.id);
    Ok(())
}

async fn an_announcement_the_im_never_takes_is_dropped_when_the_invitations_run_out(
    h: Harness,
) -> anyhow::Result<()> {
    h.talk("alice", &["bob"]);
    let invite = h.connect("alice").await?.prompt()?.clone();
    let lobby = h.accept("alice", invite.id).await?.session()?.clone();
    // bob joins, so the lobby stays multiplayer after its invitations' deadline.
    let join = h.connect("bob").await?.prompt()?.clone();
    h.accept("bob", join.id).await?;
    h.im_down(true);
    let mut waited = 0;
    while waited <= INVITE_TTL_SECS + 5 {
        h.sweep().await?;
        h.advance(5);
        waited += 5;
    }
    h.im_down(false);
    for _ in 0..5 {
        h.advance(5);
        h.sweep().await?;
    }
    ensure!(h.announced().is_empty(), "{:?}", h.announced());
    let session = h.session_seen_by("alice", lobby.id).await?;
    ensure!(session.is_some_and(|s| s.state == SessionState::Active));
    Ok(())
}

async fn a_lobby_that_turned_solo_before_its_announcement_is_not_announced(
    h: Harness,
) -> anyhow::Result<()> {
    h.talk("alice", &["bob"]);
    let invite = h.connect("alice").await?.prompt()?.clone();
    h.accept("alice", invite.id).await?;
    let join = h.connect("bob").await?.prompt()?.clone();
    h.reject("bob", join.id).await?;
    h.sweep().await?;
    ensure!(h.announced().is_empty(), "{:?}", h.announced());
    Ok(())
}

async fn a_launch_opens_a_lobby_prompts_idle_invitees_and_is_announced_in_its_conversation(
    h: Harness,
) -> anyhow::Result<()> {
    let conversation = Uuid::new_v4();
    let alice = h
        .launch(
            "alice",
            &["bob", "carol", "alice", "bob"],
            None,
            conversation,
        )
        .await?;
    let lobby = alice.session()?.clone();
    ensure!(lobby.kind == SessionKind::Multiplayer && lobby.state == SessionState::Waiting);
    ensure!(lobby.host == uid("alice") && lobby.players == [uid("alice")]);
    ensure!(lobby.pending == [uid("bob"), uid("carol")], "{lobby:?}");
    ensure!(alice.prompt.is_none());
    for invitee in ["bob", "carol"] {
        let state = h.me(invitee).await?;
        let prompt = state.prompt()?;
        ensure!(prompt.kind == PromptKind::Join && prompt.session_id == Some(lobby.id));
        let pushed = h.events(invitee).await?;
        ensure!(!pushed.is_empty(), "{invitee} hears of the prompt at once");
    }
    let bob_join = h.me("bob").await?.prompt()?.clone();
    let joined = h.accept("bob", bob_join.id).await?.session()?.clone();
    ensure!(joined.state == SessionState::Active && joined.players.len() == 2);
    h.sweep().await?;
    let announced = h.announced();
    ensure!(
        announced.len() == 1 && announced[0].0 == conversation,
        "{announced:?}"
    );
    Ok(())
}

async fn a_launch_turns_an_invite_prompt_naming_the_host_into_a_join_prompt(
    h: Harness,
) -> anyhow::Result<()> {
    h.talk("alice", &["bob"]);
    let bobs_invite = h.connect("bob").await?.prompt()?.clone();
    let lobby = h
        .launch("alice", &["bob"], None, Uuid::new_v4())
        .await?
        .session()?
        .clone();
    let bob = h.me("bob").await?;
    let join = bob.prompt()?;
    ensure!(join.kind == PromptKind::Join && join.session_id == Some(lobby.id));
    // Answering the old invite prompt is applied to the join prompt that replaced it.
    let joined = h.accept("bob", bobs_invite.id).await?;
    ensure!(joined.session()?.id == lobby.id);
    Ok(())
}

async fn launching_while_playing_is_already_playing_and_changes_nothing(
    h: Harness,
) -> anyhow::Result<()> {
    let solo = h.connect("alice").await?.session()?.clone();
    let refused = h.launch("alice", &["bob"], None, Uuid::new_v4()).await;
    ensure!(
        matches!(refused, Err(GameError::Refused(Refusal::AlreadyPlaying))),
        "{refused:?}"
    );
    ensure!(h.me("alice").await?.session()?.id == solo.id);
    ensure!(h.me("bob").await?.prompt.is_none(), "bob was not invited");
    h.talk("carol", &["dave"]);
    h.connect("carol").await?.prompt()?;
    let refused = h.launch("carol", &["erin"], None, Uuid::new_v4()).await;
    ensure!(
        matches!(refused, Err(GameError::Refused(Refusal::AlreadyPlaying))),
        "an open prompt: {refused:?}"
    );
    h.sweep().await?;
    ensure!(h.announced().is_empty());
    Ok(())
}

async fn a_launch_with_an_unknown_mode_changes_nothing(h: Harness) -> anyhow::Result<()> {
    let refused = h
        .launch("alice", &["bob"], Some("raid"), Uuid::new_v4())
        .await;
    ensure!(
        matches!(&refused, Err(GameError::Refused(Refusal::UnknownMode(known))) if known.contains("default")),
        "{refused:?}"
    );
    let alice = h.me("alice").await?;
    ensure!(alice.prompt.is_none() && alice.session.is_none());
    ensure!(h.me("bob").await?.prompt.is_none());
    ensure!(h.events("alice").await?.is_empty() && h.events("bob").await?.is_empty());
    Ok(())
}
