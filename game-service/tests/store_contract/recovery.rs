//! A replica dying in the middle of a slot-by-slot commit: the next one to touch
//! an involved player finishes the transition, or undoes it if it was not decided.

use anyhow::ensure;
use game_service::store::redis::CrashPoint;
use shared_types::game::{PromptKind, SessionState};

use crate::helpers::{Backend, Harness, StateExt};

async fn two_phase() -> anyhow::Result<Harness> {
    let h = Harness::start(Backend::RedisTwoPhase).await?;
    h.talk("alice", &["bob"]);
    Ok(h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_interrupted_after_it_was_decided_is_rolled_forward() -> anyhow::Result<()> {
    let h = two_phase().await?;
    let bob_invite = h.connect("bob").await?.prompt()?.id;
    let invite = h.connect("alice").await?.prompt()?.id;
    let store = h.redis_store.clone().expect("redis");
    // Alice's accept touches her slot, bob's, the session index and a job shard.
    store.crash_next_commit_at(CrashPoint::AfterApplied(1));
    ensure!(
        h.accept("alice", invite).await.is_err(),
        "the simulated crash fails the request"
    );

    // Bob's next request finds the intent in his slot and finishes the commit.
    let bob = h.me("bob").await?;
    let bob = if bob.prompt()?.id == bob_invite {
        h.connect("bob").await?
    } else {
        bob
    };
    let join = bob.prompt()?;
    ensure!(join.kind == PromptKind::Join, "{bob:?}");
    let alice = h.connect("alice").await?;
    ensure!(alice.session()?.state == SessionState::Waiting, "{alice:?}");
    ensure!(join.session_id == Some(alice.session()?.id));
    let bob = h.accept("bob", join.id).await?;
    ensure!(bob.session()?.state == SessionState::Active);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_interrupted_before_it_was_decided_is_undone() -> anyhow::Result<()> {
    let h = two_phase().await?;
    let invite = h.connect("alice").await?.prompt()?.id;
    let store = h.redis_store.clone().expect("redis");
    // Only alice's slot got the intent: not decided, so nothing may be applied.
    store.crash_next_commit_at(CrashPoint::AfterPrepared(1));
    ensure!(h.accept("alice", invite).await.is_err());

    let alice = h.connect("alice").await?;
    ensure!(
        alice.prompt()?.id == invite,
        "alice's prompt is still open: {alice:?}"
    );
    ensure!(alice.session.is_none());
    let bob = h.connect("bob").await?;
    ensure!(
        bob.prompt()?.kind == PromptKind::Invite,
        "bob was never invited: {bob:?}"
    );
    // And the undone transition can simply be retried.
    let lobby = h.accept("alice", invite).await?;
    ensure!(lobby.session()?.state == SessionState::Waiting);
    Ok(())
}
