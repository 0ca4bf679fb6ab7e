//! A connect's first lock step: nothing is locked for a player with nothing open, and a player with something open is locked with what their record points at.

use std::time::Duration;

use anyhow::{Context, ensure};
use game_service::{
    domain::{
        records::{Invitation, PlayerRecord, SessionRecord},
        tx::Changes,
    },
    store::IfOpen,
};
use shared_types::game::Reason;

use crate::{
    helpers::{Harness, uid},
    on_both_stores,
};

on_both_stores!(
    nothing_is_locked_for_a_player_with_nothing_open,
    a_player_with_an_invitation_is_locked_with_its_lobbys_host,
);

const LEASE: Duration = Duration::from_secs(5);

async fn nothing_is_locked_for_a_player_with_nothing_open(h: Harness) -> anyhow::Result<()> {
    let (stranger, known) = (uid("stranger"), uid("known"));
    // A record that holds nothing open (it answered prompts before, say) counts as nothing.
    let changes = Changes {
        players: vec![(
            known.clone(),
            PlayerRecord {
                presence_seq: 7,
                ..PlayerRecord::default()
            },
        )],
        ..Changes::default()
    };
    h.store.commit(&[], "t0", &changes).await?;
    for player in [&stranger, &known] {
        let answer = h.store.lock_if_open(player, "t1", LEASE).await?;
        ensure!(
            matches!(answer, Some(IfOpen::NothingOpen)),
            "{player}: {answer:?}"
        );
        // Nothing was locked: another transition takes the player's lock at once.
        let held = h
            .store
            .lock(std::slice::from_ref(player), &[], None, "t2", LEASE)
            .await?;
        ensure!(held.is_some(), "{player} was left locked");
    }
    Ok(())
}

async fn a_player_with_an_invitation_is_locked_with_its_lobbys_host(
    h: Harness,
) -> anyhow::Result<()> {
    let (alice, carol) = (uid("alice"), uid("carol"));
    let lobby = SessionRecord::solo(&carol, Reason::NoPartner, chrono::Utc::now(), "default");
    let record = PlayerRecord {
        invitations: vec![Invitation {
            lobby: lobby.reference(),
            expires_at: chrono::Utc::now() + chrono::Duration::seconds(60),
        }],
        ..PlayerRecord::default()
    };
    let changes = Changes {
        players: vec![(alice.clone(), record.clone())],
        sessions: vec![lobby.clone()],
        ..Changes::default()
    };
    h.store.commit(&[], "t0", &changes).await?;

    let answer = h
        .store
        .lock_if_open(&alice, "t1", LEASE)
        .await?
        .context("nobody else holds them")?;
    let IfOpen::Locked(held) = answer else {
        anyhow::bail!("alice's invitation is open: {answer:?}");
    };
    let players: Vec<_> = held.players.keys().collect();
    ensure!(players == [&alice, &carol], "{held:?}");
    ensure!(held.players.get(&alice) == Some(&record), "{held:?}");
    ensure!(
        held.sessions.get(&lobby.id) == Some(&Some(lobby.clone())),
        "{held:?}"
    );
    // Both are held by t1 now, and a second look finds them busy.
    let busy = h
        .store
        .lock(std::slice::from_ref(&carol), &[], None, "t2", LEASE)
        .await?;
    ensure!(busy.is_none(), "carol is held by t1: {busy:?}");
    let again = h.store.lock_if_open(&alice, "t3", LEASE).await?;
    ensure!(again.is_none(), "alice is held by t1: {again:?}");
    h.store
        .unlock(&[alice.clone(), carol.clone()], "t1")
        .await?;
    ensure!(h.store.lock_if_open(&alice, "t3", LEASE).await?.is_some());
    Ok(())
}
