//! The store's own promises: exclusive locks, fenced commits, once-only jobs, recovery.

use std::time::Duration;

use anyhow::{Context, ensure};
use game_service::{
    domain::{
        records::{
            ExpiryJob, Invitation, PlayerRecord, PromptRecord, ScheduledJob, SessionRecord,
            SessionRef,
        },
        tx::Changes,
    },
    store::{Scope, StoreError},
};
use shared_types::{
    UserId,
    game::{PromptKind, Reason},
};
use uuid::Uuid;

use crate::{
    helpers::{Harness, uid},
    on_both_stores,
};

on_both_stores!(
    a_lock_is_exclusive_until_released,
    locking_several_players_is_all_or_none,
    locking_reads_records_and_hosted_sessions,
    a_predicted_lock_set_is_what_the_actors_record_points_at,
    a_lock_frees_itself_when_its_lease_runs_out,
    a_commit_after_losing_the_lease_writes_nothing,
    each_due_job_is_claimed_by_exactly_one_caller,
    an_unfinished_job_is_handed_out_again_after_its_lease,
    jobs_finished_together_are_gone_from_every_shard,
    the_due_count_is_the_jobs_due_and_not_claimed,
);

const LEASE: Duration = Duration::from_secs(5);

/// Whether `token` took the locks of all `players`.
async fn takes(
    h: &Harness,
    players: &[&UserId],
    token: &str,
    lease: Duration,
) -> anyhow::Result<bool> {
    let players: Vec<UserId> = players.iter().map(|p| (*p).clone()).collect();
    Ok(h.store
        .lock(&players, &[], None, token, lease)
        .await?
        .is_some())
}

async fn locking_several_players_is_all_or_none(h: Harness) -> anyhow::Result<()> {
    let (alice, bob, carol) = (uid("alice"), uid("bob"), uid("carol"));
    ensure!(takes(&h, &[&bob], "t1", LEASE).await?);
    ensure!(
        !takes(&h, &[&alice, &bob, &carol], "t2", LEASE).await?,
        "bob is held by t1"
    );
    ensure!(
        takes(&h, &[&alice], "t3", LEASE).await? && takes(&h, &[&carol], "t3", LEASE).await?,
        "a refused lock set holds nothing"
    );
    h.store
        .unlock(&[alice.clone(), carol.clone()], "t3")
        .await?;
    h.store.unlock(std::slice::from_ref(&bob), "t1").await?;
    ensure!(takes(&h, &[&alice, &bob, &carol], "t2", LEASE).await?);
    ensure!(!takes(&h, &[&carol], "t4", LEASE).await?, "all three held");
    Ok(())
}

fn solo_session(host: &UserId) -> SessionRecord {
    SessionRecord::solo(host, Reason::NoPartner, chrono::Utc::now(), "default")
}

/// The store widens a lock set by what the actor's record points at (in one
/// script on standalone Redis, mirroring `store::predict`).
async fn a_predicted_lock_set_is_what_the_actors_record_points_at(
    h: Harness,
) -> anyhow::Result<()> {
    let (alice, bob, carol, dave) = (uid("alice"), uid("bob"), uid("carol"), uid("dave"));
    let own = solo_session(&alice);
    let carols_lobby = solo_session(&carol);
    let invite = PromptRecord {
        id: Uuid::new_v4(),
        kind: PromptKind::Invite,
        candidates: vec![bob.clone()],
        lobby: None,
        expires_at: chrono::Utc::now() + chrono::Duration::seconds(60),
        mode: "default".into(),
        via: Vec::new(),
    };
    let alice_record = PlayerRecord {
        prompt: Some(invite.clone()),
        session: Some(own.reference()),
        invitations: vec![Invitation {
            lobby: carols_lobby.reference(),
            expires_at: invite.expires_at,
        }],
        ..PlayerRecord::default()
    };
    let changes = Changes {
        players: vec![(alice.clone(), alice_record.clone())],
        sessions: vec![own.clone(), carols_lobby.clone()],
        ..Changes::default()
    };
    h.store.commit(&[], "t0", &changes).await?;

    // Without the candidates: alice, and carol who hosts the lobby that invited her.
    let extra = [dave.clone()];
    let held = h
        .store
        .lock(&extra, &[], Some((&alice, Scope::Record)), "t1", LEASE)
        .await?
        .context("nobody else holds them")?;
    let players: Vec<&UserId> = held.players.keys().collect();
    ensure!(players == [&alice, &carol, &dave], "{held:?}");
    ensure!(held.players.get(&alice) == Some(&alice_record), "{held:?}");
    ensure!(
        held.sessions.get(&own.id) == Some(&Some(own.clone())),
        "{held:?}"
    );
    ensure!(
        held.sessions.get(&carols_lobby.id) == Some(&Some(carols_lobby.clone())),
        "{held:?}"
    );
    ensure!(held.sessions.len() == 2, "{held:?}");
    h.store
        .unlock(&[alice.clone(), carol.clone(), dave.clone()], "t1")
        .await?;

    // Accepting an invite also needs its candidates; all or none still holds.
    ensure!(takes(&h, &[&bob], "t2", LEASE).await?);
    let refused = h
        .store
        .lock(&[], &[], Some((&alice, Scope::WithCandidates)), "t3", LEASE)
        .await?;
    ensure!(refused.is_none(), "bob is held by t2: {refused:?}");
    ensure!(
        takes(&h, &[&alice, &carol], "t4", LEASE).await?,
        "t3 holds nothing"
    );
    h.store
        .unlock(&[alice.clone(), carol.clone()], "t4")
        .await?;
    h.store.unlock(std::slice::from_ref(&bob), "t2").await?;
    let held = h
        .store
        .lock(&[], &[], Some((&alice, Scope::WithCandidates)), "t5", LEASE)
        .await?
        .context("all free now")?;
    let players: Vec<&UserId> = held.players.keys().collect();
    ensure!(players == [&alice, &bob, &carol], "{held:?}");

    // A player nobody knows yet: just the actor.
    let held = h
        .store
        .lock(&[], &[], Some((&dave, Scope::WithCandidates)), "t6", LEASE)
        .await?
        .context("dave is free")?;
    ensure!(held.players.keys().eq([&dave]), "{held:?}");
    ensure!(held.players.get(&dave) == Some(&PlayerRecord::default()));
    ensure!(held.sessions.is_empty(), "{held:?}");
    Ok(())
}

async fn locking_reads_records_and_hosted_sessions(h: Harness) -> anyhow::Result<()> {
    let (alice, bob) = (uid("alice"), uid("bob"));
    let session = solo_session(&alice);
    let record = PlayerRecord {
        session: Some(session.reference()),
        ..PlayerRecord::default()
    };
    let changes = Changes {
        players: vec![(alice.clone(), record.clone())],
        sessions: vec![session.clone()],
        ..Changes::default()
    };
    h.store.commit(&[], "t0", &changes).await?;
    let gone = SessionRef {
        id: Uuid::new_v4(),
        host: alice.clone(),
    };
    let unlocked_host = SessionRef {
        id: Uuid::new_v4(),
        host: uid("carol"),
    };
    let wanted = [session.reference(), gone.clone(), unlocked_host.clone()];
    let held = h
        .store
        .lock(&[alice.clone(), bob.clone()], &wanted, None, "t1", LEASE)
        .await?
        .context("nobody else holds them")?;
    ensure!(held.players.get(&alice) == Some(&record), "{held:?}");
    ensure!(
        held.players.get(&bob) == Some(&PlayerRecord::default()),
        "{held:?}"
    );
    ensure!(
        held.sessions.get(&session.id) == Some(&Some(session.clone())),
        "{held:?}"
    );
    ensure!(held.sessions.get(&gone.id) == Some(&None), "{held:?}");
    ensure!(
        !held.sessions.contains_key(&unlocked_host.id),
        "a session is read only under its host's lock: {held:?}"
    );
    Ok(())
}

async fn a_lock_is_exclusive_until_released(h: Harness) -> anyhow::Result<()> {
    let alice = uid("alice");
    ensure!(takes(&h, &[&alice], "t1", LEASE).await?);
    ensure!(!takes(&h, &[&alice], "t2", LEASE).await?);
    h.store.unlock(std::slice::from_ref(&alice), "t2").await?;
    ensure!(
        !takes(&h, &[&alice], "t2", LEASE).await?,
        "only the owner unlocks"
    );
    h.store.unlock(std::slice::from_ref(&alice), "t1").await?;
    ensure!(takes(&h, &[&alice], "t2", LEASE).await?);
    Ok(())
}

async fn a_lock_frees_itself_when_its_lease_runs_out(h: Harness) -> anyhow::Result<()> {
    let alice = uid("alice");
    ensure!(takes(&h, &[&alice], "t1", Duration::from_millis(50)).await?);
    tokio::time::sleep(Duration::from_millis(120)).await;
    ensure!(takes(&h, &[&alice], "t2", LEASE).await?);
    Ok(())
}

async fn a_commit_after_losing_the_lease_writes_nothing(h: Harness) -> anyhow::Result<()> {
    let alice = uid("alice");
    ensure!(takes(&h, &[&alice], "t1", Duration::from_millis(50)).await?);
    tokio::time::sleep(Duration::from_millis(120)).await;
    ensure!(takes(&h, &[&alice], "t2", LEASE).await?);
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
        takes(&h, &[&alice], "t3", LEASE).await?,
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

async fn jobs_finished_together_are_gone_from_every_shard(h: Harness) -> anyhow::Result<()> {
    // Forty jobs land in most of the sixteen shards.
    h.store.commit(&[], "t", &jobs(40)).await?;
    let now = chrono::Utc::now() + chrono::Duration::seconds(1);
    let claimed = h.store.claim_due(now, 1000, LEASE).await?;
    ensure!(claimed.len() == 40);
    h.store.finish_jobs(&claimed[..39]).await?;
    let later = now + chrono::Duration::seconds(6);
    let again = h.store.claim_due(later, 1000, LEASE).await?;
    ensure!(
        again == claimed[39..],
        "only the unfinished one is handed out again: {again:?}"
    );
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

/// The expiry backlog the sweeper reports: due jobs, across every job shard,
/// not those leased to a caller, nor those not due yet.
async fn the_due_count_is_the_jobs_due_and_not_claimed(h: Harness) -> anyhow::Result<()> {
    let now = chrono::Utc::now() + chrono::Duration::seconds(1);
    ensure!(h.store.due_count(now).await? == 0, "nothing scheduled");
    h.store.commit(&[], "t1", &jobs(40)).await?;
    let mut later = jobs(3);
    for scheduled in &mut later.jobs {
        scheduled.due = now + chrono::Duration::hours(1);
    }
    // Another transaction (its own token: a commit's slots are applied once per token).
    h.store.commit(&[], "t2", &later).await?;
    let due = h.store.due_count(now).await?;
    ensure!(due == 40, "40 due now, 3 in an hour: {due}");
    let claimed = h.store.claim_due(now, 15, LEASE).await?;
    ensure!(claimed.len() == 15);
    let due = h.store.due_count(now).await?;
    ensure!(due == 25, "claimed jobs are leased, not due: {due}");
    for job in &claimed[..5] {
        h.store.finish_job(job).await?;
    }
    let after_lease = now + chrono::Duration::seconds(6);
    let due = h.store.due_count(after_lease).await?;
    ensure!(
        due == 35,
        "unfinished claims are due again after their lease: {due}"
    );
    let due = h.store.due_count(now + chrono::Duration::hours(2)).await?;
    ensure!(due == 38, "and the later ones once their time comes: {due}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_going_away_fails_requests_and_they_recover_when_it_returns() -> anyhow::Result<()> {
    let mut h = Harness::start(crate::helpers::Backend::Redis).await?;
    h.talk("alice", &["bob"]);
    let redis = h.redis.as_mut().expect("redis backend");
    redis.kill();
    let down = h.game.connect(&uid("alice"), None).await;
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
    let mut outcome = h.game.connect(&uid("alice"), None).await;
    for _ in 0..20 {
        if outcome.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        outcome = h.game.connect(&uid("alice"), None).await;
    }
    ensure!(
        outcome?.prompt.is_some(),
        "alice can play again after Redis returns"
    );
    Ok(())
}
