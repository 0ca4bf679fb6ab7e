//! Game activity reported to the IM service, on each store: who began or stopped playing,
//! once per change, in order per player, and still delivered after the IM service was down.

use std::collections::BTreeMap;

use anyhow::ensure;
use shared_types::activity::ActivityReport;
use uuid::Uuid;

use crate::{
    helpers::{Harness, StateExt},
    on_both_stores,
};

on_both_stores!(
    both_players_are_reported_playing_when_the_session_becomes_active_and_not_when_they_leave,
    a_solo_session_is_playing_at_once_and_a_lobby_nobody_joined_is_not,
    each_players_reports_are_numbered_in_order,
    with_the_im_down_reports_wait_and_arrive_once_it_is_back,
);

/// `(player, session, playing)` of each report, in the order the IM service took them.
fn told(h: &Harness) -> Vec<(String, Uuid, bool)> {
    h.reported()
        .into_iter()
        .map(|r| (r.user_id.to_string(), r.session_id, r.playing))
        .collect()
}

async fn both_players_are_reported_playing_when_the_session_becomes_active_and_not_when_they_leave(
    h: Harness,
) -> anyhow::Result<()> {
    h.talk("alice", &["bob"]);
    let invite = h.connect("alice").await?.prompt()?.clone();
    let lobby = h.accept("alice", invite.id).await?.session()?.clone();
    h.sweep().await?;
    ensure!(
        told(&h).is_empty(),
        "a waiting lobby is nobody's game: {:?}",
        told(&h)
    );
    let join = h.connect("bob").await?.prompt()?.clone();
    h.accept("bob", join.id).await?;
    h.sweep().await?;
    let mut playing = told(&h);
    playing.sort();
    ensure!(
        playing
            == [
                ("alice".into(), lobby.id, true),
                ("bob".into(), lobby.id, true)
            ],
        "{playing:?}"
    );
    ensure!(h.reported().iter().all(|r| r.mode == "default"));
    h.leave("bob", lobby.id).await?;
    h.leave("alice", lobby.id).await?;
    h.sweep().await?;
    // Jobs due at once go out in any order: each player's seq orders their reports.
    let mut after: Vec<_> = told(&h).into_iter().skip(2).collect();
    after.sort();
    ensure!(
        after
            == [
                ("alice".into(), lobby.id, false),
                ("bob".into(), lobby.id, false)
            ],
        "{after:?}"
    );
    h.sweep().await?;
    ensure!(h.reported().len() == 4, "each change once: {:?}", told(&h));
    Ok(())
}

async fn a_solo_session_is_playing_at_once_and_a_lobby_nobody_joined_is_not(
    h: Harness,
) -> anyhow::Result<()> {
    let solo = h.connect("zoe").await?.session()?.clone();
    h.talk("alice", &["bob"]);
    let invite = h.connect("alice").await?.prompt()?.clone();
    let lobby = h.accept("alice", invite.id).await?.session()?.clone();
    let join = h.connect("bob").await?.prompt()?.clone();
    // bob says no: alice's lobby turns into her solo session, which she plays.
    let bobs = h.reject("bob", join.id).await?.session()?.clone();
    h.sweep().await?;
    let mut playing = told(&h);
    playing.sort();
    ensure!(
        playing
            == [
                ("alice".into(), lobby.id, true),
                ("bob".into(), bobs.id, true),
                ("zoe".into(), solo.id, true)
            ],
        "{playing:?}"
    );
    Ok(())
}

async fn each_players_reports_are_numbered_in_order(h: Harness) -> anyhow::Result<()> {
    for _ in 0..3 {
        let solo = h.connect("alice").await?.session()?.clone();
        h.leave("alice", solo.id).await?;
    }
    h.sweep().await?;
    let mut seqs: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let reports: Vec<ActivityReport> = h.reported();
    for r in &reports {
        seqs.entry(r.user_id.to_string()).or_default().push(r.seq);
    }
    let alice = seqs.get("alice").cloned().unwrap_or_default();
    let mut sorted = alice.clone();
    sorted.sort_unstable();
    sorted.dedup();
    ensure!(
        alice.len() == 6 && sorted.len() == 6,
        "six distinct seqs: {alice:?}"
    );
    ensure!(sorted.windows(2).all(|w| w[0] < w[1]));
    // In seq order they alternate playing, not playing.
    let mut by_seq: Vec<&ActivityReport> = reports.iter().collect();
    by_seq.sort_by_key(|r| r.seq);
    ensure!(
        by_seq
            .iter()
            .enumerate()
            .all(|(i, r)| r.playing == (i % 2 == 0)),
        "{by_seq:?}"
    );
    Ok(())
}

async fn with_the_im_down_reports_wait_and_arrive_once_it_is_back(
    h: Harness,
) -> anyhow::Result<()> {
    h.im_down(true);
    let solo = h.connect("alice").await?.session()?.clone();
    for _ in 0..4 {
        h.sweep().await?;
        h.advance(1);
    }
    ensure!(h.reported().is_empty());
    h.im_down(false);
    for _ in 0..6 {
        h.advance(1);
        h.sweep().await?;
    }
    ensure!(
        told(&h) == [("alice".into(), solo.id, true)],
        "once: {:?}",
        told(&h)
    );
    Ok(())
}
