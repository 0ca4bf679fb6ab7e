//! Game modes on each store: the mode a player asks for reaches the session, an unknown
//! mode changes nothing, and no session ever has more players than its mode allows.

use anyhow::ensure;
use futures_util::future::join_all;
use game_service::{domain::engine::Refusal, game::GameError};
use shared_types::{
    events::Payload as _,
    game::{GameEvent, Reason, SessionState},
};
use uuid::Uuid;

use crate::{
    helpers::{Harness, Options, StateExt, uid},
    on_both_stores,
};

fn duel_and_squad() -> Options {
    Options {
        modes: "duel:2,squad:3",
        ..Options::default()
    }
}

on_both_stores!(with super::duel_and_squad();
    the_mode_asked_for_reaches_the_prompts_and_the_session,
    no_mode_is_the_first_listed,
    an_unknown_mode_is_refused_and_changes_nothing,
    a_full_session_cancels_its_other_invitations_with_full,
    many_joiners_racing_never_overfill_a_session,
);

async fn the_mode_asked_for_reaches_the_prompts_and_the_session(h: Harness) -> anyhow::Result<()> {
    h.talk("alice", &["bob"]);
    let invite = h.connect_mode("alice", "squad").await?.prompt()?.clone();
    ensure!(invite.mode == "squad", "{invite:?}");
    let lobby = h.accept("alice", invite.id).await?.session()?.clone();
    ensure!(lobby.mode == "squad");
    let join = h.connect_mode("bob", "duel").await?.prompt()?.clone();
    ensure!(
        join.mode == "squad",
        "a join prompt is for the lobby's mode"
    );
    let session = h.accept("bob", join.id).await?.session()?.clone();
    ensure!(session.mode == "squad" && session.players.len() == 2);
    Ok(())
}

async fn no_mode_is_the_first_listed(h: Harness) -> anyhow::Result<()> {
    let solo = h.connect("alice").await?.session()?.clone();
    h.talk("bob", &["carol"]);
    let invite = h.connect("bob").await?.prompt()?.clone();
    ensure!(invite.mode == "duel", "{invite:?}");
    ensure!(
        solo.mode == "duel",
        "a solo session has the default mode: {solo:?}"
    );
    Ok(())
}

async fn an_unknown_mode_is_refused_and_changes_nothing(h: Harness) -> anyhow::Result<()> {
    h.talk("alice", &["bob"]);
    let refused = h.connect_mode("alice", "raid").await;
    ensure!(
        matches!(&refused, Err(GameError::Refused(Refusal::UnknownMode(known))) if known.contains("duel, squad")),
        "{refused:?}"
    );
    let alice = h.me("alice").await?;
    ensure!(
        alice.prompt.is_none() && alice.session.is_none(),
        "{alice:?}"
    );
    ensure!(h.events("alice").await?.is_empty());
    Ok(())
}

async fn a_full_session_cancels_its_other_invitations_with_full(h: Harness) -> anyhow::Result<()> {
    h.talk("alice", &["bob", "carol"]);
    let invite = h.connect_mode("alice", "duel").await?.prompt()?.clone();
    let lobby = h.accept("alice", invite.id).await?.session()?.clone();
    let bob_join = h.connect("bob").await?.prompt()?.clone();
    let carol_join = h.connect("carol").await?.prompt()?.clone();
    let session = h.accept("bob", bob_join.id).await?.session()?.clone();
    ensure!(session.players == [uid("alice"), uid("bob")] && session.pending.is_empty());
    ensure!(session.state == SessionState::Active);
    let carol = h.me("carol").await?;
    ensure!(
        carol.prompt.is_none(),
        "carol's join prompt is gone: {carol:?}"
    );
    let heard = h.events("carol").await?;
    let cancelled_full = heard.iter().any(|e| {
        matches!(e, GameEvent::PromptCancelled(c) if c.prompt_id == carol_join.id && c.reason == Reason::Full)
    });
    ensure!(
        cancelled_full,
        "carol hears `full`: {:?}",
        heard.iter().map(|e| e.name()).collect::<Vec<_>>()
    );
    let late = h.accept("carol", carol_join.id).await;
    ensure!(
        matches!(
            late,
            Err(GameError::Refused(Refusal::PromptClosed(Reason::Full)))
        ),
        "{late:?}"
    );
    let seen = h.session_seen_by("carol", lobby.id).await?;
    ensure!(
        seen.is_some_and(|s| s.players.len() == 2),
        "an invitee may still read it"
    );
    // carol is free again: connecting asks the IM service anew.
    ensure!(h.connect("carol").await?.prompt.is_some());
    Ok(())
}

async fn many_joiners_racing_never_overfill_a_session(h: Harness) -> anyhow::Result<()> {
    let invitees: Vec<String> = (0..8).map(|i| format!("joiner{i}")).collect();
    let names: Vec<&str> = invitees.iter().map(String::as_str).collect();
    let lobby = h
        .launch("host", &names, Some("squad"), Uuid::new_v4())
        .await?
        .session()?
        .clone();
    let mut prompts = Vec::new();
    for name in &names {
        prompts.push((*name, h.me(name).await?.prompt()?.id));
    }
    let answers = join_all(prompts.iter().map(|(name, prompt)| h.accept(name, *prompt))).await;
    let joined = answers
        .iter()
        .filter(|a| {
            a.as_ref()
                .is_ok_and(|s| s.session.as_ref().is_some_and(|s| s.id == lobby.id))
        })
        .count();
    let full = answers
        .iter()
        .filter(|a| {
            matches!(
                a,
                Err(GameError::Refused(Refusal::PromptClosed(Reason::Full)))
            )
        })
        .count();
    let busy = answers
        .iter()
        .filter(|a| matches!(a, Err(GameError::Busy)))
        .count();
    ensure!(
        joined == 2,
        "exactly the room there was: {joined} joined ({answers:?})"
    );
    ensure!(
        full + busy == 6,
        "the others are told `full` (or to retry): {answers:?}"
    );
    let session = h
        .session_seen_by("host", lobby.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the lobby is gone"))?;
    ensure!(
        session.players.len() == 3 && session.pending.is_empty(),
        "{session:?}"
    );
    for (name, _) in &prompts {
        let state = h.me(name).await?;
        let inside = session.players.contains(&uid(name));
        ensure!(
            state.session.as_ref().is_some_and(|s| s.id == lobby.id) == inside,
            "{name}'s own state agrees with the session: {state:?}"
        );
        ensure!(inside || state.prompt.is_none(), "{name}: {state:?}");
    }
    Ok(())
}
