//! The IM service's presence feed applied by the game, on each store: going offline cancels
//! and withdraws with `unavailable` and ends a waiting lobby; every change is applied once,
//! however often it is delivered; nothing is lost while the IM service is down; one replica
//! follows the feed at a time.

use anyhow::ensure;
use game_service::{domain::engine::Refusal, game::GameError};
use shared_types::{
    game::{GameEvent, Reason, SessionKind, SessionState},
    presence::PresenceStatus::{Available, Offline},
};

use crate::{
    helpers::{Harness, StateExt, uid},
    on_both_stores,
};

on_both_stores!(
    going_offline_cancels_the_open_prompt_with_unavailable,
    an_invitee_going_offline_is_withdrawn_from_the_lobby,
    a_host_going_offline_ends_their_waiting_lobby_and_withdraws_its_invitations,
    a_change_delivered_again_or_late_is_applied_once,
    while_the_im_is_down_the_feed_waits_and_nothing_is_lost,
    only_the_replica_holding_the_lease_follows_the_feed,
    a_cursor_the_feed_no_longer_understands_is_read_again_from_the_start,
);

fn cancelled_for(events: &[GameEvent], prompt: uuid::Uuid, reason: Reason) -> bool {
    events.iter().any(|e| {
        matches!(e, GameEvent::PromptCancelled(c) if c.prompt_id == prompt && c.reason == reason)
    })
}

async fn going_offline_cancels_the_open_prompt_with_unavailable(h: Harness) -> anyhow::Result<()> {
    h.talk("alice", &["bob"]);
    let invite = h.connect("alice").await?.prompt()?.clone();
    h.presence("alice", Offline);
    h.follow_presence("replica").await;
    let alice = h.me("alice").await?;
    ensure!(
        alice.prompt.is_none() && alice.session.is_none(),
        "{alice:?}"
    );
    ensure!(cancelled_for(
        &h.events("alice").await?,
        invite.id,
        Reason::Unavailable
    ));
    let late = h.accept("alice", invite.id).await;
    ensure!(
        matches!(
            late,
            Err(GameError::Refused(Refusal::PromptClosed(
                Reason::Unavailable
            )))
        ),
        "{late:?}"
    );
    Ok(())
}

async fn an_invitee_going_offline_is_withdrawn_from_the_lobby(h: Harness) -> anyhow::Result<()> {
    h.talk("alice", &["bob", "carol"]);
    let invite = h.connect("alice").await?.prompt()?.clone();
    let lobby = h.accept("alice", invite.id).await?.session()?.clone();
    // bob holds a join prompt; carol only her invitation.
    let join = h.connect("bob").await?.prompt()?.clone();
    h.presence("bob", Offline);
    h.presence("carol", Offline);
    h.follow_presence("replica").await;
    ensure!(cancelled_for(
        &h.events("bob").await?,
        join.id,
        Reason::Unavailable
    ));
    ensure!(h.me("bob").await?.prompt.is_none());
    let carol = h.me("carol").await?;
    ensure!(
        carol.prompt.is_none(),
        "no invitation left to turn into a prompt: {carol:?}"
    );
    let host = h.me("alice").await?;
    let session = host.session()?;
    ensure!(
        session.id == lobby.id && session.pending.is_empty(),
        "{session:?}"
    );
    ensure!(session.kind == SessionKind::Solo && session.reason == Some(Reason::Declined));
    Ok(())
}

async fn a_host_going_offline_ends_their_waiting_lobby_and_withdraws_its_invitations(
    h: Harness,
) -> anyhow::Result<()> {
    h.talk("alice", &["bob"]);
    let invite = h.connect("alice").await?.prompt()?.clone();
    let lobby = h.accept("alice", invite.id).await?.session()?.clone();
    let join = h.connect("bob").await?.prompt()?.clone();
    h.presence("alice", Offline);
    h.follow_presence("replica").await;
    let seen = h.session_seen_by("bob", lobby.id).await?;
    ensure!(
        seen.is_some_and(|s| s.state == SessionState::Ended),
        "the lobby ended"
    );
    ensure!(h.me("alice").await?.session.is_none());
    ensure!(cancelled_for(
        &h.events("bob").await?,
        join.id,
        Reason::Withdrawn
    ));
    ensure!(h.me("bob").await?.prompt.is_none());
    Ok(())
}

async fn a_change_delivered_again_or_late_is_applied_once(h: Harness) -> anyhow::Result<()> {
    h.talk("alice", &["bob"]);
    h.connect("alice").await?.prompt()?;
    h.presence("alice", Offline);
    h.follow_presence("replica").await;
    h.presence("alice", Available);
    h.follow_presence("replica").await;
    let again = h.connect("alice").await?.prompt()?.clone();
    // The old `offline` delivered again, after the newer `available`: it changes nothing.
    let old = h
        .feed()
        .into_iter()
        .find(|c| c.user_id == uid("alice") && c.status == Offline)
        .ok_or_else(|| anyhow::anyhow!("the offline change is in the feed"))?;
    h.redeliver(old.clone());
    h.redeliver(old);
    h.follow_presence("replica").await;
    let alice = h.me("alice").await?;
    ensure!(
        alice.prompt.as_ref().is_some_and(|p| p.id == again.id),
        "the prompt after coming back stays: {alice:?}"
    );
    Ok(())
}

async fn while_the_im_is_down_the_feed_waits_and_nothing_is_lost(h: Harness) -> anyhow::Result<()> {
    h.talk("alice", &["bob"]);
    let invite = h.connect("alice").await?.prompt()?.clone();
    h.presence("alice", Offline);
    h.im_down(true);
    h.follow_presence("replica").await;
    ensure!(h.me("alice").await?.prompt.is_some(), "not read yet");
    h.im_down(false);
    // The next poll reads on from the cursor, which waited.
    h.follow_presence("replica").await;
    ensure!(h.me("alice").await?.prompt.is_none());
    ensure!(cancelled_for(
        &h.events("alice").await?,
        invite.id,
        Reason::Unavailable
    ));
    Ok(())
}

async fn only_the_replica_holding_the_lease_follows_the_feed(h: Harness) -> anyhow::Result<()> {
    h.talk("alice", &["bob"]);
    h.connect("alice").await?.prompt()?;
    h.follow_presence("first").await;
    h.presence("alice", Offline);
    h.follow_presence("second").await;
    ensure!(
        h.me("alice").await?.prompt.is_some(),
        "the second replica waits for the lease"
    );
    h.follow_presence("first").await;
    ensure!(
        h.me("alice").await?.prompt.is_none(),
        "the holder applies it"
    );
    Ok(())
}

async fn a_cursor_the_feed_no_longer_understands_is_read_again_from_the_start(
    h: Harness,
) -> anyhow::Result<()> {
    h.talk("alice", &["bob"]);
    h.connect("alice").await?.prompt()?;
    // As after the IM service's feed was resharded: the stored cursor means nothing to it.
    ensure!(
        h.store
            .hold_feed("replica", std::time::Duration::from_secs(5))
            .await?
    );
    ensure!(h.store.save_feed_cursor("replica", "resharded").await?);
    h.presence("alice", Offline);
    h.follow_presence("replica").await;
    ensure!(
        h.me("alice").await?.prompt.is_none(),
        "applied from the feed's start"
    );
    ensure!(
        h.store.feed_cursor().await?.as_deref() == Some("1"),
        "and the cursor moved on"
    );
    Ok(())
}
