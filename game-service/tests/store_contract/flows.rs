//! The flow of docs/CONTRACT.md, played through `Game` on each store.

use anyhow::ensure;
use game_service::{domain::engine::Refusal, game::GameError};
use shared_types::events::Payload as _;
use shared_types::game::{PromptKind, Reason, SessionKind, SessionState};

use crate::{
    helpers::{Harness, INVITE_TTL_SECS, StateExt, uid},
    on_both_stores,
};

on_both_stores!(
    talking_to_nobody_gives_a_solo_session,
    im_down_gives_a_degraded_solo_session,
    invite_accept_then_join_accept_gives_one_active_session,
    host_rejecting_gets_a_solo_session,
    last_invitee_rejecting_turns_the_lobby_solo,
    lobby_keeps_waiting_while_another_invitee_is_pending,
    accepting_a_subset_invites_only_that_subset,
    invitee_holding_an_invite_prompt_is_switched_to_a_join_prompt,
    mutual_accept_lands_both_in_one_session,
    reconnecting_returns_the_same_prompt_and_session,
    decisions_are_final,
    unanswered_invite_prompt_expires_to_solo,
    unanswered_invitation_turns_the_lobby_solo_expired,
    host_leaving_an_empty_lobby_withdraws_invitations,
    a_session_ends_when_its_last_player_leaves,
    strangers_cannot_reach_prompts_or_sessions,
    with_naming_a_stranger_is_invalid_and_changes_nothing,
    events_are_stored_in_order_and_replayable,
    an_expired_invite_prompt_is_not_turned_into_a_join_prompt,
    an_expired_join_prompt_expires_rather_than_being_withdrawn,
);

async fn talking_to_nobody_gives_a_solo_session(h: Harness) -> anyhow::Result<()> {
    let alice = h.connect("alice").await?;
    let session = alice.session()?;
    ensure!(session.kind == SessionKind::Solo && session.state == SessionState::Active);
    ensure!(session.reason == Some(Reason::NoPartner));
    ensure!(!alice.degraded && alice.prompt.is_none());
    ensure!(!session.join_token.is_empty());
    Ok(())
}

async fn im_down_gives_a_degraded_solo_session(h: Harness) -> anyhow::Result<()> {
    h.talk("alice", &["bob"]);
    h.im_down(true);
    let alice = h.connect("alice").await?;
    ensure!(alice.degraded, "{alice:?}");
    ensure!(alice.session()?.reason == Some(Reason::ImUnavailable));
    ensure!(h.me("alice").await?.degraded);
    Ok(())
}

async fn invite_accept_then_join_accept_gives_one_active_session(h: Harness) -> anyhow::Result<()> {
    h.talk("alice", &["bob"]);
    let invite = h.connect("alice").await?.prompt()?.clone();
    ensure!(invite.kind == PromptKind::Invite && invite.candidates == vec![uid("bob")]);
    let lobby = h.accept("alice", invite.id).await?.session()?.clone();
    ensure!(lobby.state == SessionState::Waiting && lobby.pending == vec![uid("bob")]);

    let join = h.connect("bob").await?.prompt()?.clone();
    ensure!(join.kind == PromptKind::Join);
    ensure!(join.session_id == Some(lobby.id) && join.host == Some(uid("alice")));
    let bob = h.accept("bob", join.id).await?;
    let session = bob.session()?;
    ensure!(session.id == lobby.id && session.state == SessionState::Active);
    ensure!(session.players == vec![uid("alice"), uid("bob")] && session.pending.is_empty());

    let alice = h.me("alice").await?;
    ensure!(alice.session()?.id == lobby.id && alice.session()?.state == SessionState::Active);
    ensure!(
        alice.session()?.join_token != session.join_token,
        "each player has their own token"
    );
    Ok(())
}

async fn host_rejecting_gets_a_solo_session(h: Harness) -> anyhow::Result<()> {
    h.talk("alice", &["bob"]);
    let invite = h.connect("alice").await?.prompt()?.clone();
    let alice = h.reject("alice", invite.id).await?;
    ensure!(alice.prompt.is_none());
    ensure!(alice.session()?.kind == SessionKind::Solo);
    ensure!(alice.session()?.reason == Some(Reason::Rejected));
    // Bob was never invited: he gets his own invite prompt naming alice.
    let bob = h.connect("bob").await?;
    ensure!(bob.prompt()?.kind == PromptKind::Invite);
    Ok(())
}

async fn last_invitee_rejecting_turns_the_lobby_solo(h: Harness) -> anyhow::Result<()> {
    h.talk("alice", &["bob"]);
    let invite = h.connect("alice").await?.prompt()?.clone();
    let lobby = h.accept("alice", invite.id).await?.session()?.id;
    let join = h.connect("bob").await?.prompt()?.id;
    let bob = h.reject("bob", join).await?;
    ensure!(bob.session()?.reason == Some(Reason::Rejected) && bob.session()?.id != lobby);
    let alice = h.me("alice").await?;
    let session = alice.session()?;
    ensure!(session.id == lobby && session.kind == SessionKind::Solo);
    ensure!(session.state == SessionState::Active && session.reason == Some(Reason::Declined));
    Ok(())
}

async fn lobby_keeps_waiting_while_another_invitee_is_pending(h: Harness) -> anyhow::Result<()> {
    h.talk("alice", &["bob", "carol"]);
    let invite = h.connect("alice").await?.prompt()?.clone();
    ensure!(invite.candidates.len() == 2);
    let lobby = h.accept("alice", invite.id).await?.session()?.id;
    let join = h.connect("bob").await?.prompt()?.id;
    h.reject("bob", join).await?;
    let waiting = h.me("alice").await?.session()?.clone();
    ensure!(waiting.state == SessionState::Waiting && waiting.pending == vec![uid("carol")]);
    let join = h.connect("carol").await?.prompt()?.id;
    let carol = h.accept("carol", join).await?;
    ensure!(carol.session()?.id == lobby && carol.session()?.state == SessionState::Active);
    ensure!(carol.session()?.kind == SessionKind::Multiplayer);
    Ok(())
}

async fn accepting_a_subset_invites_only_that_subset(h: Harness) -> anyhow::Result<()> {
    h.talk("alice", &["bob", "carol"]);
    let invite = h.connect("alice").await?.prompt()?.clone();
    let lobby = h.accept_with("alice", invite.id, &["carol"]).await?;
    ensure!(lobby.session()?.pending == vec![uid("carol")]);
    // Bob was not chosen: no join prompt for him, his own invite instead.
    let bob = h.connect("bob").await?;
    ensure!(bob.prompt()?.kind == PromptKind::Invite, "{bob:?}");
    let carol = h.connect("carol").await?;
    ensure!(carol.prompt()?.kind == PromptKind::Join);
    Ok(())
}

async fn invitee_holding_an_invite_prompt_is_switched_to_a_join_prompt(
    h: Harness,
) -> anyhow::Result<()> {
    h.talk("alice", &["bob"]);
    let bob_invite = h.connect("bob").await?.prompt()?.clone();
    let alice_invite = h.connect("alice").await?.prompt()?.clone();
    let lobby = h.accept("alice", alice_invite.id).await?.session()?.id;

    let bob = h.me("bob").await?;
    let join = bob.prompt()?;
    ensure!(join.kind == PromptKind::Join && join.session_id == Some(lobby));
    ensure!(join.id != bob_invite.id);
    // Bob answers the prompt he saw: it applies to the join prompt that replaced it.
    let bob = h.accept("bob", bob_invite.id).await?;
    ensure!(bob.session()?.id == lobby && bob.session()?.state == SessionState::Active);
    Ok(())
}

async fn mutual_accept_lands_both_in_one_session(h: Harness) -> anyhow::Result<()> {
    for round in 0..20 {
        let (a, b) = (format!("a{round}"), format!("b{round}"));
        h.talk(&a, &[&b]);
        let pa = h.connect(&a).await?.prompt()?.id;
        let pb = h.connect(&b).await?.prompt()?.id;
        let (ra, rb) = tokio::join!(h.accept(&a, pa), h.accept(&b, pb));
        let (ra, rb) = (ra?, rb?);
        let (sa, sb) = (ra.session()?, rb.session()?);
        ensure!(sa.id == sb.id, "round {round}: two sessions {sa:?} {sb:?}");
        ensure!(sa.state == SessionState::Active || sb.state == SessionState::Active);
        let final_state = h.me(&a).await?;
        let session = final_state.session()?;
        ensure!(session.state == SessionState::Active && session.players.len() == 2);
        ensure!(h.me(&b).await?.prompt.is_none());
    }
    Ok(())
}

async fn reconnecting_returns_the_same_prompt_and_session(h: Harness) -> anyhow::Result<()> {
    h.talk("alice", &["bob"]);
    let first = h.connect("alice").await?.prompt()?.id;
    let again = h.connect("alice").await?.prompt()?.id;
    ensure!(first == again);
    let lobby = h.accept("alice", first).await?.session()?.id;
    ensure!(h.connect("alice").await?.session()?.id == lobby);
    ensure!(h.connect("alice").await?.prompt.is_none());
    Ok(())
}

async fn decisions_are_final(h: Harness) -> anyhow::Result<()> {
    h.talk("alice", &["bob"]);
    let invite = h.connect("alice").await?.prompt()?.id;
    let accepted = h.accept("alice", invite).await?;
    let again = h.accept("alice", invite).await?;
    ensure!(
        accepted.session()?.id == again.session()?.id,
        "same answer twice is harmless"
    );
    let contrary = h.reject("alice", invite).await;
    ensure!(
        matches!(contrary, Err(GameError::Refused(Refusal::AlreadyAnswered))),
        "{contrary:?}"
    );
    ensure!(h.me("alice").await?.session()?.id == accepted.session()?.id);
    Ok(())
}

async fn unanswered_invite_prompt_expires_to_solo(h: Harness) -> anyhow::Result<()> {
    h.talk("alice", &["bob"]);
    let invite = h.connect("alice").await?.prompt()?.clone();
    ensure!(h.sweep().await? == 0, "nothing is due yet");
    h.advance(INVITE_TTL_SECS + 1);
    ensure!(h.sweep().await? == 1);
    let alice = h.me("alice").await?;
    ensure!(alice.prompt.is_none());
    ensure!(alice.session()?.reason == Some(Reason::Expired));
    let late = h.accept("alice", invite.id).await;
    ensure!(matches!(
        late,
        Err(GameError::Refused(Refusal::PromptClosed(Reason::Expired)))
    ));
    // The expiry's solo session is reported to the IM service (a job of its own), then
    // nothing is left: the expiry ran once.
    ensure!(h.sweep().await? == 1 && h.reported().len() == 1);
    ensure!(h.sweep().await? == 0, "a job runs once");
    Ok(())
}

async fn unanswered_invitation_turns_the_lobby_solo_expired(h: Harness) -> anyhow::Result<()> {
    h.talk("alice", &["bob"]);
    let invite = h.connect("alice").await?.prompt()?.id;
    let lobby = h.accept("alice", invite).await?.session()?.id;
    let join = h.connect("bob").await?.prompt()?.id;
    h.advance(INVITE_TTL_SECS + 1);
    h.sweep().await?;
    let alice = h.me("alice").await?;
    ensure!(alice.session()?.id == lobby && alice.session()?.kind == SessionKind::Solo);
    ensure!(alice.session()?.reason == Some(Reason::Expired));
    let bob = h.me("bob").await?;
    ensure!(bob.prompt.is_none() && bob.session()?.reason == Some(Reason::Expired));
    ensure!(matches!(
        h.accept("bob", join).await,
        Err(GameError::Refused(Refusal::PromptClosed(_)))
    ));
    Ok(())
}

async fn host_leaving_an_empty_lobby_withdraws_invitations(h: Harness) -> anyhow::Result<()> {
    h.talk("alice", &["bob"]);
    let invite = h.connect("alice").await?.prompt()?.id;
    let lobby = h.accept("alice", invite).await?.session()?.id;
    let join = h.connect("bob").await?.prompt()?.id;
    let alice = h.leave("alice", lobby).await?;
    ensure!(alice.session.is_none() && alice.prompt.is_none());
    let bob = h.me("bob").await?;
    ensure!(bob.prompt.is_none(), "join prompt withdrawn: {bob:?}");
    let answer = h.accept("bob", join).await;
    ensure!(matches!(
        answer,
        Err(GameError::Refused(Refusal::PromptClosed(Reason::Withdrawn)))
    ));
    let ended = h
        .session_seen_by("alice", lobby)
        .await?
        .expect("host still sees it");
    ensure!(ended.state == SessionState::Ended);
    Ok(())
}

async fn a_session_ends_when_its_last_player_leaves(h: Harness) -> anyhow::Result<()> {
    h.talk("alice", &["bob"]);
    let invite = h.connect("alice").await?.prompt()?.id;
    let lobby = h.accept("alice", invite).await?.session()?.id;
    let join = h.connect("bob").await?.prompt()?.id;
    h.accept("bob", join).await?;
    h.leave("alice", lobby).await?;
    let still = h.me("bob").await?.session()?.clone();
    ensure!(still.state == SessionState::Active && still.players == vec![uid("bob")]);
    h.leave("bob", lobby).await?;
    ensure!(
        h.session_seen_by("bob", lobby)
            .await?
            .expect("visible")
            .state
            == SessionState::Ended
    );
    // Leaving twice is harmless; a new connect starts afresh.
    h.leave("bob", lobby).await?;
    ensure!(h.connect("bob").await?.prompt.is_some());
    Ok(())
}

async fn strangers_cannot_reach_prompts_or_sessions(h: Harness) -> anyhow::Result<()> {
    h.talk("alice", &["bob"]);
    let invite = h.connect("alice").await?.prompt()?.id;
    let lobby = h.accept("alice", invite).await?.session()?.id;
    let mallory_accept = h.accept("mallory", invite).await;
    ensure!(matches!(
        mallory_accept,
        Err(GameError::Refused(Refusal::NotFound(_)))
    ));
    ensure!(h.session_seen_by("mallory", lobby).await?.is_none());
    ensure!(
        h.session_seen_by("bob", lobby).await?.is_some(),
        "invitees may look"
    );
    let leave = h.leave("mallory", lobby).await;
    ensure!(matches!(
        leave,
        Err(GameError::Refused(Refusal::NotFound(_)))
    ));
    Ok(())
}

async fn with_naming_a_stranger_is_invalid_and_changes_nothing(h: Harness) -> anyhow::Result<()> {
    h.talk("alice", &["bob"]);
    let invite = h.connect("alice").await?.prompt()?.id;
    let answer = h.accept_with("alice", invite, &["mallory"]).await;
    ensure!(matches!(
        answer,
        Err(GameError::Refused(Refusal::Invalid(_)))
    ));
    let empty = h.accept_with("alice", invite, &[]).await;
    ensure!(matches!(
        empty,
        Err(GameError::Refused(Refusal::Invalid(_)))
    ));
    let alice = h.me("alice").await?;
    ensure!(alice.prompt()?.id == invite && alice.session.is_none());
    Ok(())
}

async fn events_are_stored_in_order_and_replayable(h: Harness) -> anyhow::Result<()> {
    h.talk("alice", &["bob"]);
    let mut live = h.store.subscribe();
    let invite = h.connect("alice").await?.prompt()?.id;
    h.accept("alice", invite).await?;
    let events = h.store.events_after(&uid("alice"), None, 100).await?;
    let names: Vec<&str> = events.iter().map(|e| e.event.name()).collect();
    ensure!(names == ["prompt", "session"], "{names:?}");
    let ids: Vec<_> = events
        .iter()
        .map(|e| game_service::store::parse_event_id(&e.id))
        .collect();
    ensure!(ids[0] < ids[1], "ids increase: {ids:?}");
    let after_first = h
        .store
        .events_after(&uid("alice"), Some(&events[0].id), 100)
        .await?;
    ensure!(
        after_first == events[1..],
        "replay after the first id gives the rest"
    );
    let first_live = loop {
        match tokio::time::timeout(std::time::Duration::from_secs(5), live.recv()).await?? {
            game_service::store::Relayed::Event(event) => break event,
            game_service::store::Relayed::Resync => continue,
        }
    };
    ensure!(first_live.player == uid("alice") && first_live.id == events[0].id);
    Ok(())
}

async fn an_expired_invite_prompt_is_not_turned_into_a_join_prompt(
    h: Harness,
) -> anyhow::Result<()> {
    h.talk("alice", &["bob"]);
    let bob_invite = h.connect("bob").await?.prompt()?.id;
    h.advance(30);
    let alice_invite = h.connect("alice").await?.prompt()?.id;
    h.advance(31); // bob's prompt is past its deadline; no sweep has run
    let lobby = h.accept("alice", alice_invite).await?.session()?.id;
    let late = h.accept("bob", bob_invite).await;
    ensure!(
        matches!(
            late,
            Err(GameError::Refused(Refusal::PromptClosed(Reason::Expired)))
        ),
        "{late:?}"
    );
    let bob = h.me("bob").await?;
    ensure!(bob.session()?.reason == Some(Reason::Expired) && bob.session()?.id != lobby);
    Ok(())
}

async fn an_expired_join_prompt_expires_rather_than_being_withdrawn(
    h: Harness,
) -> anyhow::Result<()> {
    h.talk("alice", &["bob"]);
    let invite = h.connect("alice").await?.prompt()?.id;
    let lobby = h.accept("alice", invite).await?.session()?.id;
    let join = h.connect("bob").await?.prompt()?.id;
    h.advance(INVITE_TTL_SECS + 1); // no sweep has run
    h.leave("alice", lobby).await?;
    let bob = h.me("bob").await?;
    ensure!(
        bob.prompt.is_none() && bob.session()?.reason == Some(Reason::Expired),
        "{bob:?}"
    );
    let late = h.accept("bob", join).await;
    ensure!(matches!(
        late,
        Err(GameError::Refused(Refusal::PromptClosed(Reason::Expired)))
    ));
    Ok(())
}
