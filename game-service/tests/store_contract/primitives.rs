//! The store's own promises: exclusive locks, fenced commits, once-only jobs, recovery.

use std::time::Duration;

use anyhow::ensure;
use game_service::{
    domain::{
        records::{ExpiryJob, PlayerRecord, ScheduledJob},
        tx::Changes,
    },
    store::StoreError,
};
use uuid::Uuid;

use crate::{
    helpers::{Harness, uid},
    on_both_stores,
};

on_both_stores!(
    a_lock_is_exclusive_until_released,
    a_lock_frees_itself_when_its_lease_runs_out,
    a_commit_after_losing_the_lease_writes_nothing,
    each_due_job_is_claimed_by_exactly_one_caller,
    an_unfinished_job_is_handed_out_again_after_its_lease,
);

const LEASE: Duration = Duration::from_secs(5);

async fn a_lock_is_exclusive_until_released(h: Harness) -> anyhow::Result<()> {
    let alice = uid("alice");
    ensure!(h.store.try_lock(&alice, "t1", LEASE).await?.is_some());
    ensure!(h.store.try_lock(&alice, "t2", LEASE).await?.is_none());
    h.store.unlock(std::slice::from_ref(&alice), "t2").await?;
    ensure!(
        h.store.try_lock(&alice, "t2", LEASE).await?.is_none(),
        "only the owner unlocks"
    );
    h.store.unlock(std::slice::from_ref(&alice), "t1").await?;
    ensure!(h.store.try_lock(&alice, "t2", LEASE).await?.is_some());
    Ok(())
}

async fn a_lock_frees_itself_when_its_lease_runs_out(h: Harness) -> anyhow::Result<()> {
    let alice = uid("alice");
    ensure!(
        h.store
            .try_lock(&alice, "t1", Duration::from_millis(50))
            .await?
            .is_some()
    );
    tokio::time::sleep(Duration::from_millis(120)).await;
    ensure!(h.store.try_lock(&alice, "t2", LEASE).await?.is_some());
    Ok(())
}

async fn a_commit_after_losing_the_lease_writes_nothing(h: Harness) -> anyhow::Result<()> {
    let alice = uid("alice");
    ensure!(
        h.store
            .try_lock(&alice, "t1", Duration::from_millis(50))
            .await?
            .is_some()
    );
    tokio::time::sleep(Duration::from_millis(120)).await;
    ensure!(h.store.try_lock(&alice, "t2", LEASE).await?.is_some());
    let changes = Changes {
        players: vec![(alice.clone(), PlayerRecord::default())],
        ..Changes::default()
    };
    let stale = h
        .store
        .commit(std::slice::from_ref(&alice), "t1", &changes)
        .await;
    ensure!(matches!(stale, Err(StoreError::LeaseLost)), "{stale:?}");
    ensure!(h.store.player(&alice).await?.is_none(), "nothing written");
    h.store
        .commit(std::slice::from_ref(&alice), "t2", &changes)
        .await?;
    ensure!(h.store.player(&alice).await?.is_some());
    ensure!(
        h.store.try_lock(&alice, "t3", LEASE).await?.is_some(),
        "commit released the lock"
    );
    Ok(())
}

fn jobs(n: usize) -> Changes {
    Changes {
        jobs: (0..n)
            .map(|i| ScheduledJob {
                job: ExpiryJob::Invite {
                    player: uid(&format!("p{i}")),
                    prompt_id: Uuid::new_v4(),
                },
                due: chrono::Utc::now(),
            })
            .collect(),
        ..Changes::default()
    }
}

async fn each_due_job_is_claimed_by_exactly_one_caller(h: Harness) -> anyhow::Result<()> {
    h.store.commit(&[], "t", &jobs(40)).await?;
    let now = chrono::Utc::now() + chrono::Duration::seconds(1);
    let (a, b) = tokio::join!(
        h.store.claim_due(now, 1000, LEASE),
        h.store.claim_due(now, 1000, LEASE)
    );
    let (a, b) = (a?, b?);
    ensure!(a.len() + b.len() == 40, "{} + {}", a.len(), b.len());
    ensure!(
        a.iter().all(|job| !b.contains(job)),
        "no job handed out twice"
    );
    ensure!(h.store.claim_due(now, 1000, LEASE).await?.is_empty());
    Ok(())
}

async fn an_unfinished_job_is_handed_out_again_after_its_lease(h: Harness) -> anyhow::Result<()> {
    h.store.commit(&[], "t", &jobs(2)).await?;
    let now = chrono::Utc::now() + chrono::Duration::seconds(1);
    let claimed = h.store.claim_due(now, 1000, LEASE).await?;
    ensure!(claimed.len() == 2);
    h.store.finish_job(&claimed[0]).await?;
    let later = now + chrono::Duration::seconds(6);
    let again = h.store.claim_due(later, 1000, LEASE).await?;
    ensure!(again == vec![claimed[1].clone()], "{again:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_going_away_fails_requests_and_they_recover_when_it_returns() -> anyhow::Result<()> {
    let mut h = Harness::start(crate::helpers::Backend::Redis).await?;
    h.talk("alice", &["bob"]);
    let redis = h.redis.as_mut().expect("redis backend");
    redis.kill();
    let down = h.game.connect(&uid("alice")).await;
    ensure!(
        matches!(
            down,
            Err(game_service::game::GameError::Store(
                StoreError::Unavailable(_)
            ))
        ),
        "{down:?}"
    );
    redis.restart()?;
    // The connection manager reconnects by itself; allow it a few attempts.
    let mut outcome = h.game.connect(&uid("alice")).await;
    for _ in 0..20 {
        if outcome.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        outcome = h.game.connect(&uid("alice")).await;
    }
    ensure!(
        outcome?.prompt.is_some(),
        "alice can play again after Redis returns"
    );
    Ok(())
}
