//! Lifetimes, on each store, in real time with short TTLs: whatever a
//! player's record points at lives at least as long as the record (and a
//! live session keeps its players' records), so nobody is ever left with a
//! record that names something gone.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use game_service::store::Retention;

use crate::{
    helpers::{Harness, Options, StateExt, leads_somewhere},
    on_both_stores,
};

/// Records and live sessions live this long after their last change.
const TTL: Duration = Duration::from_secs(3);
/// The test needs this much room between an old and a new expiry to tell them apart.
const MARGIN: Duration = Duration::from_millis(300);

fn short_ttls() -> Options {
    Options {
        retention: Retention {
            record_ttl: TTL,
            ended_session_ttl: TTL,
            events_ttl: TTL,
            jobs_ttl: Duration::from_secs(60),
        },
        // Life is recorded once a second: a heartbeat after that writes the session.
        session_idle_secs: 8,
        ..Options::default()
    }
}

on_both_stores!(with super::short_ttls();
    a_session_lives_as_long_as_a_record_that_points_at_it,
    a_live_session_keeps_its_players_records_alive,
    whatever_expires_the_player_can_always_connect,
);

/// Sleeps until `at` (the condition these tests wait for is time itself: a TTL running out).
async fn until(at: Instant) {
    tokio::time::sleep(at.saturating_duration_since(Instant::now())).await;
}

/// The midpoint of (`old`, `new`): after the old expiry, before the new one.
fn between(old: Instant, new: Instant) -> anyhow::Result<Instant> {
    ensure!(
        new > old + 2 * MARGIN,
        "the machine was too slow to tell the two expiries apart ({:?} apart)",
        new.saturating_duration_since(old)
    );
    Ok(old + (new - old) / 2)
}

/// The stuck player: alice walks away from a solo session; just before it
/// would expire, bob invites her (her record is written again, pointing at
/// it). Past the session's own expiry, her record still names it: the
/// session must still be there.
async fn a_session_lives_as_long_as_a_record_that_points_at_it(h: Harness) -> anyhow::Result<()> {
    let solo = h.connect("alice").await?.session()?.clone();
    let first_expiry = Instant::now() + TTL;
    until(first_expiry - TTL / 2).await;
    h.talk("bob", &["alice"]);
    let invited = Instant::now();
    let invite = h.connect("bob").await?.prompt()?.id;
    h.accept("bob", invite).await?;
    until(between(first_expiry, invited + TTL)?).await;
    let alice = h.me("alice").await?;
    ensure!(
        alice.session.as_ref().map(|s| s.id) == Some(solo.id),
        "alice's record names her solo session, which must still exist: {alice:?}"
    );
    Ok(())
}

/// Alice and bob play; the session is written again later (a heartbeat
/// after a second of idleness). Past the players' records' own expiry, the
/// session still lists them: their records must still be there.
async fn a_live_session_keeps_its_players_records_alive(h: Harness) -> anyhow::Result<()> {
    h.talk("alice", &["bob"]);
    let invite = h.connect("alice").await?.prompt()?.id;
    h.accept("alice", invite).await?;
    let join = h.connect("bob").await?.prompt()?.id;
    let session = h.accept("bob", join).await?.session()?.clone();
    let records_expire = Instant::now() + TTL;
    until(records_expire - TTL / 2).await;
    h.advance(2);
    let touched = Instant::now();
    h.heartbeat(session.id).await?.context("exists")?;
    until(between(records_expire, touched + TTL)?).await;
    for p in ["alice", "bob"] {
        let state = h.me(p).await?;
        ensure!(
            state.session.as_ref().map(|s| s.id) == Some(session.id),
            "{p} is still in the session that lists them: {state:?}"
        );
    }
    Ok(())
}

/// Whatever expires and whenever, connecting leads to a prompt or a session.
async fn whatever_expires_the_player_can_always_connect(h: Harness) -> anyhow::Result<()> {
    h.connect("alice").await?.session()?;
    h.talk("bob", &["alice"]);
    let invite = h.connect("bob").await?.prompt()?.id;
    h.accept("bob", invite).await?;
    let end = Instant::now() + 3 * TTL;
    let mut checks = 0;
    while Instant::now() < end {
        for p in ["alice", "bob"] {
            let state = h.connect(p).await?;
            ensure!(leads_somewhere(&state), "{p} is stuck: {state:?}");
        }
        checks += 1;
        tokio::time::sleep(TTL / 10).await;
    }
    ensure!(checks >= 10, "only {checks} checks in {:?}", 3 * TTL);
    Ok(())
}
