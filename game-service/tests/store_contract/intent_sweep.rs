//! A commit left half-way whose players never come back: the sweeper finishes it (rolled forward once decided, undone before), exactly once, and its listing goes; a decided commit that lost its lease is finished before it answers.

use anyhow::{Context, ensure};
use chrono::Duration;
use game_service::{
    domain::records::PlayerRecord,
    store::redis::{CrashPoint, RedisStore},
    sweeper::{ORPHANED_AFTER, sweep},
};
use shared_types::game::{GameEvent, PromptKind, SessionState};

use crate::helpers::{Backend, Harness, StateExt, uid};

/// What the store holds about alice and bob, read without locking them.
#[derive(Debug, PartialEq)]
struct Seen {
    alice: PlayerRecord,
    bob: PlayerRecord,
    alice_events: Vec<GameEvent>,
    bob_events: Vec<GameEvent>,
    /// Expiry jobs scheduled (due within a day).
    jobs: u64,
    /// Lobby announcements the IM service took (anyone's).
    announced: usize,
}

async fn seen(h: &Harness, a: &str, b: &str) -> anyhow::Result<Seen> {
    Ok(Seen {
        alice: h.store.player(&uid(a)).await?.unwrap_or_default(),
        bob: h.store.player(&uid(b)).await?.unwrap_or_default(),
        alice_events: h.events(a).await?,
        bob_events: h.events(b).await?,
        jobs: h.store.due_count(h.game.now() + Duration::days(1)).await?,
        announced: h.announced().len(),
    })
}

fn store(h: &Harness) -> anyhow::Result<&RedisStore> {
    h.redis_store.as_deref().context("a Redis backend")
}

/// The accept uninterrupted, by carol and dave, and a sweep: how many events,
/// jobs left and announcements it adds.
async fn reference(h: &Harness) -> anyhow::Result<(usize, usize, u64, usize)> {
    h.talk("carol", &["dave"]);
    let invite = h.connect("carol").await?.prompt()?.id;
    sweep(&h.game, 256).await;
    let before = seen(h, "carol", "dave").await?;
    h.accept("carol", invite).await?;
    sweep(&h.game, 256).await;
    let after = seen(h, "carol", "dave").await?;
    ensure!(
        store(h)?.listed_intents().await? == 0,
        "a finished commit is unlisted by its writer"
    );
    Ok((
        after.alice_events.len() - before.alice_events.len(),
        after.bob_events.len() - before.bob_events.len(),
        after.jobs - before.jobs,
        after.announced - before.announced,
    ))
}

/// Alice's accept, interrupted at `point`; then only sweeps run.
async fn interrupted(backend: Backend, point: CrashPoint) -> anyhow::Result<()> {
    let h = Harness::start(backend).await?;
    let (alice_adds, bob_adds, jobs_add, announces) = reference(&h).await?;
    h.talk("alice", &["bob"]);
    let invite = h.connect("alice").await?.prompt()?.id;
    // Jobs due now run (as they do after the accept below): the counts stay put.
    sweep(&h.game, 256).await;
    let before = seen(&h, "alice", "bob").await?;
    store(&h)?.crash_next_commit_at(point);
    ensure!(
        h.accept("alice", invite).await.is_err(),
        "{point:?}: the simulated crash fails the request"
    );
    let half = seen(&h, "alice", "bob").await?;
    ensure!(store(&h)?.listed_intents().await? == 1, "{point:?}: listed");

    // Not orphaned yet: its writer's lease might still run. (Only the sweep
    // of orphans: the jobs it scheduled may run, an announcement then finding
    // no lobby yet.)
    let early = h
        .store
        .finish_orphaned_intents(h.game.now() - Duration::from_std(ORPHANED_AFTER)?, 1000)
        .await?;
    ensure!(
        early.rolled_forward + early.aborted + early.cleared == 0,
        "{point:?}: {early:?}"
    );
    ensure!(
        seen(&h, "alice", "bob").await? == half,
        "{point:?}: too early"
    );
    ensure!(store(&h)?.listed_intents().await? == 1, "{point:?}");

    // Past the deadline (with room for this test's own time: the listing is
    // stamped by the wall clock, the sweep by the harness's).
    h.advance(i64::try_from(ORPHANED_AFTER.as_secs())? + 20);
    sweep(&h.game, 256).await;
    let after = seen(&h, "alice", "bob").await?;
    if let CrashPoint::AfterPrepared(_) = point {
        ensure!(after == before, "{point:?}: undone entirely\n{after:#?}");
    } else {
        let adds = (alice_adds, bob_adds, jobs_add, announces);
        ensure_accepted_once(&h, &before, &after, adds)
            .await
            .with_context(|| format!("{point:?}"))?;
    }
    ensure!(
        store(&h)?.listed_intents().await? == 0,
        "{point:?}: unlisted"
    );

    // A second sweep finds nothing, even much later.
    let again = h
        .store
        .finish_orphaned_intents(h.game.now() + Duration::days(1), 1000)
        .await?;
    ensure!(
        again.rolled_forward + again.aborted + again.cleared + again.deferred == 0
            && again.failed.is_empty(),
        "{point:?}: {again:?}"
    );
    sweep(&h.game, 256).await;
    ensure!(seen(&h, "alice", "bob").await? == after, "{point:?}");

    // And the players carry on: alice's lobby fills, or her accept is retried.
    if let CrashPoint::AfterPrepared(_) = point {
        let lobby = h.accept("alice", invite).await?;
        ensure!(lobby.session()?.state == SessionState::Waiting);
    } else {
        let join = h.connect("bob").await?.prompt()?.clone();
        ensure!(join.kind == PromptKind::Join);
        ensure!(h.accept("bob", join.id).await?.session()?.state == SessionState::Active);
    }
    Ok(())
}

/// Alice's accept applied in full, once: her lobby waits for bob, with as many events, jobs
/// and announcements as `adds` (the uninterrupted accept's, from [`reference`]).
async fn ensure_accepted_once(
    h: &Harness,
    before: &Seen,
    after: &Seen,
    (alice_adds, bob_adds, jobs_add, announces): (usize, usize, u64, usize),
) -> anyhow::Result<()> {
    let lobby = after.alice.session.clone().context("alice hosts a lobby")?;
    ensure!(after.alice.prompt.is_none(), "{after:#?}");
    ensure!(
        after.bob.invitations.iter().any(|i| i.lobby == lobby),
        "bob is invited: {after:#?}"
    );
    let session = h.store.session(&lobby).await?.context("the lobby")?;
    ensure!(session.state == SessionState::Waiting && session.host == uid("alice"));
    ensure!(session.pending.iter().any(|p| p.player == uid("bob")));
    ensure!(h.store.session_host(lobby.id).await? == Some(uid("alice")));
    ensure!(
        after.alice_events.len() == before.alice_events.len() + alice_adds
            && after.bob_events.len() == before.bob_events.len() + bob_adds
            && after.jobs == before.jobs + jobs_add
            && after.announced == before.announced + announces,
        "adds {alice_adds} {bob_adds} {jobs_add} {announces}: {before:#?}\n{after:#?}"
    );
    Ok(())
}

/// A commit whose locks' lease runs out once it is decided (a commit slowed by a failover)
/// still answers success, so it must be applied before it answers: a read right after it,
/// with no sweep and no lock, sees all of it.
async fn decided_then_lease_lost(backend: Backend) -> anyhow::Result<()> {
    let h = Harness::start(backend).await?;
    let adds = reference(&h).await?;
    h.talk("alice", &["bob"]);
    let invite = h.connect("alice").await?.prompt()?.id;
    sweep(&h.game, 256).await;
    let before = seen(&h, "alice", "bob").await?;
    store(&h)?.crash_next_commit_at(CrashPoint::LeaseExpiresWhenDecided);
    let answered = h.accept("alice", invite).await?;
    ensure!(
        answered.session()?.state == SessionState::Waiting,
        "{answered:#?}"
    );
    let at_once = seen(&h, "alice", "bob").await?;
    ensure!(
        at_once.alice.session.is_some() && at_once.alice.prompt.is_none(),
        "the answer said alice hosts a lobby, but the store does not have it yet: {at_once:#?}"
    );
    // The jobs it scheduled run, as after the reference's accept (a listing is not an orphan
    // this early: a sweep would not finish it).
    sweep(&h.game, 256).await;
    let after = seen(&h, "alice", "bob").await?;
    ensure_accepted_once(&h, &before, &after, adds).await?;
    ensure!(store(&h)?.listed_intents().await? == 0, "unlisted");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decided_commit_that_lost_its_lease_is_applied_before_it_answers() -> anyhow::Result<()> {
    decided_then_lease_lost(Backend::RedisTwoPhase).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_a_decided_commit_that_lost_its_lease_is_applied_before_it_answers()
-> anyhow::Result<()> {
    decided_then_lease_lost(Backend::RedisCluster).await
}

/// Alice's accept of her invite prompt, committed slot by slot: one or more
/// job shards and the session index, then alice's and bob's slots, the two
/// holding its intent.
const POINTS: &[CrashPoint] = &[
    // Only alice's slot prepared: undone.
    CrashPoint::AfterPrepared(1),
    // Decided: rolled forward, from nothing applied to every group.
    CrashPoint::AfterApplied(0),
    CrashPoint::AfterApplied(1),
    CrashPoint::AppliedAllBut(2),
    CrashPoint::AppliedAllBut(1),
    // Only the listing left.
    CrashPoint::AppliedAllBut(0),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphaned_commits_are_swept_slot_by_slot() -> anyhow::Result<()> {
    for point in POINTS {
        interrupted(Backend::RedisTwoPhase, *point).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphaned_commits_are_swept_on_a_cluster() -> anyhow::Result<()> {
    for point in POINTS {
        interrupted(Backend::RedisCluster, *point).await?;
    }
    Ok(())
}

/// Scripts a sweeper pass runs when nothing is due or orphaned, and the
/// commands Redis processed for it (a script's own commands included).
async fn quiet_pass(backend: Backend) -> anyhow::Result<(u64, u64)> {
    let h = Harness::start(backend).await?;
    let server = h.redis.as_ref().context("a private redis-server")?;
    let client = redis::Client::open(server.url())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let stat = |info: &str, prefix: &str, field: &str| -> anyhow::Result<u64> {
        let line = info
            .lines()
            .find_map(|line| line.strip_prefix(prefix))
            .with_context(|| format!("INFO without {prefix}"))?;
        let value = match field {
            "" => line,
            _ => line
                .split(',')
                .find_map(|kv| kv.strip_prefix(field))
                .with_context(|| format!("{prefix} without {field}"))?,
        };
        value
            .trim()
            .parse()
            .with_context(|| format!("{prefix}{field}"))
    };
    let read = |info: String| -> anyhow::Result<(u64, u64)> {
        Ok((
            stat(&info, "cmdstat_evalsha:", "calls=")?,
            stat(&info, "total_commands_processed:", "")?,
        ))
    };
    // The first pass loads the scripts.
    sweep(&h.game, 256).await;
    let before: String = redis::cmd("INFO").arg("all").query_async(&mut conn).await?;
    sweep(&h.game, 256).await;
    let after: String = redis::cmd("INFO").arg("all").query_async(&mut conn).await?;
    let ((scripts_before, before), (scripts_after, after)) = (read(before)?, read(after)?);
    // Less the first INFO, which the second counts.
    Ok((scripts_after - scripts_before, after - before - 1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_sweep_costs_one_read_per_job_shard_for_orphans() -> anyhow::Result<()> {
    // 16 job shards: one claim script each for jobs (its one ZRANGEBYSCORE
    // counted too) and, slot by slot only, one ZRANGEBYSCORE each for
    // orphaned commits; nothing else.
    let standalone = quiet_pass(Backend::Redis).await?;
    ensure!(standalone == (16, 32), "{standalone:?}");
    let slot_by_slot = quiet_pass(Backend::RedisTwoPhase).await?;
    ensure!(slot_by_slot == (16, 48), "{slot_by_slot:?}");
    Ok(())
}
