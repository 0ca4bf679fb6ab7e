//! The storm on Redis that fails over mid-storm, with `REDIS_MIN_REPLICAS_ACKED=1`: a master of a Redis Cluster with replicas, or a primary behind Sentinel, SIGKILLed a third of the way through and restarted (it rejoins as a replica); nothing acknowledged is lost and every invariant holds.
//!
//! The groups chat while they play (every conversation and message answered 201 is recorded)
//! and do not flip their presence. A moment before the kill the master's replica falls behind,
//! as one behind a network blip does: frozen (SIGSTOP) and its replication link dropped, so
//! that the master's last writes never reach it (freezing alone would not do: the kernel
//! still takes the stream into the replica's socket). Without replica acknowledgements those
//! writes, acknowledged, die with the master. While no replica acknowledges writes the
//! services answer them 503 `store_unavailable` with `Retry-After`: the game's are retried
//! (retrying is the contract: such a write may or may not have happened), the chat's counted
//! and dropped; afterwards the IM service must take messages again by itself.

use std::{
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use e2e::{failing::Failing, replicated::Role};
use uuid::Uuid;

use super::{
    Config, DEFAULT_ROUNDS,
    acknowledged::Acknowledged,
    chatter::post,
    players::{Member, Stats},
    run::storm,
};
use crate::helpers::{StoreChoice, TestWorld, WorldOptions, eventually};

/// Fewer than the full storm's, to fit the outage in about 90 s on two cores; enough to race.
const PAIRS: usize = 300;
const TRIOS: usize = 20;
/// What both services require of a write before they acknowledge it.
const REPLICAS_ACKED: u32 = 1;
/// The fault strikes once this many of every three groups are done: mid-storm.
const STRIKE_THIRDS: usize = 1;
/// The storm reaches its strike point within this.
const STRIKE_LIMIT: Duration = Duration::from_secs(60);
/// The cut-off replica lags until its master has written this much it lacks...
const LAG_BYTES: u64 = 64 * 1024;
/// ...or for this long at most: less than the services wait for an acknowledgement (500 ms),
/// so that nothing written meanwhile is answered (or read back by a retry) before the kill.
const LAG_LIMIT: Duration = Duration::from_millis(300);
/// Detection (node timeout 1.5 s, Sentinel down-after 1 s), election, promotion.
const FAILOVER_LIMIT: Duration = Duration::from_secs(30);
/// A restarted master is a replica within milliseconds on a cluster; behind Sentinel about
/// 11 s after its restart.
const REJOIN_LIMIT: Duration = Duration::from_secs(40);
/// Once the old node is a replica again, both services take writes again within this: a
/// refusal later fails the storm (and once the storm is over, the IM service takes a message
/// within this).
const RECOVERY_LIMIT: Duration = Duration::from_secs(20);
/// Writes acknowledged this shortly before the kill are the ones a failover without replica
/// acknowledgements would lose.
const AT_RISK: Duration = Duration::from_secs(1);
/// At least this many of them, or the check had nothing at stake.
const MIN_AT_RISK: usize = 20;
/// Game requests answered after the last refusal, at least: the storm played on after it.
const MIN_AFTER: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_with_replicas_a_master_sigkilled_mid_storm_loses_nothing_acknowledged_and_keeps_every_invariant()
-> anyhow::Result<()> {
    storm(failover(
        StoreChoice::ReplicatedCluster,
        Fault::ClusterMaster,
    )?)
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_sentinel_a_primary_sigkilled_mid_storm_loses_nothing_acknowledged_and_keeps_every_invariant()
-> anyhow::Result<()> {
    storm(failover(StoreChoice::Sentinel, Fault::SentinelPrimary)?).await
}

fn failover(store: StoreChoice, fault: Fault) -> anyhow::Result<Config> {
    Ok(Config {
        store,
        flips: false,
        chat: true,
        fault: Some(fault),
        ..Config::from_env(PAIRS, TRIOS, DEFAULT_ROUNDS)?
    })
}

/// What strikes the store mid-storm.
#[derive(Debug, Clone, Copy)]
pub(super) enum Fault {
    /// The master of slot 0 of a [`StoreChoice::ReplicatedCluster`].
    ClusterMaster,
    /// The primary of a [`StoreChoice::Sentinel`] group.
    SentinelPrimary,
    /// Random faults of the store and the services for the soak's minutes (see
    /// [`super::soak`]).
    Chaos,
}

/// What the fault did, and when.
pub(super) struct Struck {
    fault: Fault,
    node: usize,
    killed_at: Instant,
    /// How far the master was ahead of its cut-off replica at the kill, and how long it had
    /// been cut off.
    lag_bytes: u64,
    lagged: Duration,
    /// From the kill until the harness saw the replica take over.
    failed_over: Duration,
    /// From the kill until the restarted node was a replica with its link up.
    rejoined: Duration,
    groups: usize,
    /// Groups done, and game requests sent, at the kill.
    done_at_kill: usize,
    requests_at_kill: usize,
    /// Groups done once the old node was a replica again.
    done_at_rejoin: usize,
}

impl Fault {
    /// Both services wait for a replica to hold each write before acknowledging it.
    pub(super) fn options(self, options: WorldOptions) -> WorldOptions {
        let options = options
            .game_var("REDIS_MIN_REPLICAS_ACKED", REPLICAS_ACKED)
            .im_var("REDIS_MIN_REPLICAS_ACKED", REPLICAS_ACKED);
        match self {
            // A soak's conversations outgrow the 500 messages kept by default: every
            // acknowledged one must still be there to be checked.
            Fault::Chaos => options.im_var("IM_MESSAGES_KEPT", 1_000_000),
            Fault::ClusterMaster | Fault::SentinelPrimary => options,
        }
    }

    /// Once a third of the storm's `groups` are done: the replica frozen and cut off until it
    /// lags, its master SIGKILLed, the replica resumed; then the failover, the old master
    /// restarted, and until it is a replica again.
    pub(super) async fn strike(
        self,
        world: &mut TestWorld,
        stats: &Stats,
        groups: usize,
    ) -> anyhow::Result<Struck> {
        let due = groups * STRIKE_THIRDS / 3;
        eventually(
            "the storm a third of the way through",
            STRIKE_LIMIT,
            || async {
                let done = stats.groups_done.load(Ordering::Relaxed);
                ensure!(done < groups, "the storm was over before the fault struck");
                Ok((done >= due).then_some(()))
            },
        )
        .await?;
        let done_at_kill = stats.groups_done.load(Ordering::Relaxed);
        let requests_at_kill = stats.requests.load(Ordering::Relaxed);
        // The harness blocks while it waits: the storm plays on in its own task meanwhile.
        let mut struck = tokio::task::block_in_place(|| self.kill_and_rejoin(world))?;
        struck.groups = groups;
        struck.done_at_kill = done_at_kill;
        struck.requests_at_kill = requests_at_kill;
        struck.done_at_rejoin = stats.groups_done.load(Ordering::Relaxed);
        stats
            .outages
            .expect_recovery_by(Instant::now() + RECOVERY_LIMIT);
        Ok(struck)
    }

    fn kill_and_rejoin(self, world: &mut TestWorld) -> anyhow::Result<Struck> {
        let mut struck = Struck {
            fault: self,
            node: 0,
            killed_at: Instant::now(),
            lag_bytes: 0,
            lagged: Duration::ZERO,
            failed_over: Duration::ZERO,
            rejoined: Duration::ZERO,
            groups: 0,
            done_at_kill: 0,
            requests_at_kill: 0,
            done_at_rejoin: 0,
        };
        match self {
            Fault::ClusterMaster => {
                let cluster = world.replicated_cluster()?;
                let node = cluster.master_of_slot(0)?;
                let replica = cluster.replica_of(node)?;
                kill_ahead_of(cluster, node, replica, &mut struck)?;
            }
            Fault::SentinelPrimary => {
                let group = world.sentinel()?;
                let (node, replica) = (group.primary()?, group.replica()?);
                kill_ahead_of(group, node, replica, &mut struck)?;
            }
            Fault::Chaos => bail!("the soak's faults are struck by `soak::unleash`"),
        }
        struck.rejoined = struck.killed_at.elapsed();
        Ok(struck)
    }
}

/// Master `node` SIGKILLed while ahead of its `replica` (frozen and cut off until it lags,
/// resumed once its master is dead); then the failover, the old master restarted, and until
/// it is a replica again. Notes each moment in `struck`.
fn kill_ahead_of(
    store: &mut impl Failing,
    node: usize,
    replica: usize,
    struck: &mut Struck,
) -> anyhow::Result<()> {
    store.pause(replica)?;
    store.cut_replicas(node)?;
    let lag = lag_behind(|| store.repl_offset(node));
    struck.killed_at = Instant::now();
    store.kill(node)?;
    store.resume(replica)?;
    (struck.node, (struck.lag_bytes, struck.lagged)) = (node, lag?);
    store.wait_for_failover(node, FAILOVER_LIMIT)?;
    struck.failed_over = struck.killed_at.elapsed();
    store.restart(node)?;
    store.wait_for_role(node, Role::Replica, REJOIN_LIMIT)
}

/// With the replica just cut off: polls the master's replication offset until it has written
/// [`LAG_BYTES`] more (or [`LAG_LIMIT`] passed); how far ahead it got, and in how long.
fn lag_behind(offset: impl Fn() -> anyhow::Result<u64>) -> anyhow::Result<(u64, Duration)> {
    let (start, since) = (offset()?, Instant::now());
    loop {
        let ahead = offset()?.saturating_sub(start);
        if ahead >= LAG_BYTES || since.elapsed() >= LAG_LIMIT {
            return Ok((ahead, since.elapsed()));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

impl Struck {
    /// Conversations, messages and sessions acknowledged in the [`AT_RISK`] before the kill.
    fn at_risk(&self, acknowledged: &Acknowledged) -> (usize, usize, usize) {
        let before = self.killed_at.checked_sub(AT_RISK);
        acknowledged.between(before.unwrap_or(self.killed_at), self.killed_at)
    }

    /// Prints what the fault did and what the services showed of it.
    pub(super) fn print(&self, stats: &Stats, acknowledged: &Acknowledged) {
        let seen = stats.outages.seen();
        let after = |at: Option<Instant>| {
            at.map_or("never".to_owned(), |t| {
                format!("{:.1?}", t.saturating_duration_since(self.killed_at))
            })
        };
        let (conversations, messages, sessions) = self.at_risk(acknowledged);
        let outage = seen.duration();
        eprintln!(
            "failover: {fault:?} (node {node}) SIGKILLed with {done}/{groups} groups done and \
             {requests} game requests sent, {lag_bytes} bytes ahead of its replica (cut off \
             {lagged:.1?} before); the replica took over {failed_over:.1?} after the kill; \
             restarted, the old one was a replica again {rejoined:.1?} after the kill, with \
             {rejoin}/{groups} groups done\n\
             failover: the services refused {game} game requests (503 store_unavailable with \
             Retry-After; retried: {through} went through) and {im} chat writes (not retried, \
             not recorded); after the kill: the first refusal {first}, the last {last}, the last \
             refused request through {back}: writes unavailable for {outage} as the services \
             showed it; {answered} game requests answered since the last refusal; {loosened} \
             answers checked as a retry's\n\
             failover: acknowledged in the {AT_RISK:?} before the kill: {conversations} \
             conversations, {messages} messages, {sessions} active sessions",
            fault = self.fault,
            node = self.node,
            done = self.done_at_kill,
            groups = self.groups,
            requests = self.requests_at_kill,
            lag_bytes = self.lag_bytes,
            lagged = self.lagged,
            failed_over = self.failed_over,
            rejoined = self.rejoined,
            rejoin = self.done_at_rejoin,
            game = seen.game_refused,
            through = seen.retried_through,
            im = seen.im_refused,
            first = after(seen.first_refused),
            last = after(seen.last_refused),
            back = after(seen.last_through),
            outage = outage.map_or("no time".to_owned(), |d| format!("{d:.1?}")),
            answered = seen.answered_since,
            loosened = seen.loosened,
        );
    }

    /// Waits until the IM service takes writes again by itself (see [`chat_again`]).
    pub(super) async fn wait_for_chat(
        &self,
        world: &TestWorld,
        member: &Member,
        conversation: Uuid,
        stats: &Stats,
        acknowledged: &mut Acknowledged,
    ) -> anyhow::Result<Duration> {
        chat_again(world, member, conversation, stats, acknowledged)
            .await
            .with_context(|| {
                format!(
                    "{:.1?} after the old node rejoined as a replica",
                    self.killed_at.elapsed().saturating_sub(self.rejoined)
                )
            })
    }

    /// Requires that the storm noticed the failover, had acknowledged enough just before it,
    /// and played on after it.
    pub(super) fn ensure_enough(
        &self,
        stats: &Stats,
        acknowledged: &Acknowledged,
    ) -> anyhow::Result<()> {
        let seen = stats.outages.seen();
        let (conversations, messages, sessions) = self.at_risk(acknowledged);
        let at_risk = conversations + messages + sessions;
        ensure!(
            seen.game_refused + seen.im_refused > 0,
            "the services refused nothing: the storm never noticed the failover"
        );
        ensure!(
            at_risk >= MIN_AT_RISK,
            "only {at_risk} items acknowledged in the {AT_RISK:?} before the kill: nothing was \
             at stake"
        );
        ensure!(
            seen.answered_since >= MIN_AFTER,
            "only {} game requests answered after the last refusal: the storm hardly played on \
             after the failover",
            seen.answered_since
        );
        Ok(())
    }
}

/// Waits until the IM service takes writes again by itself once the store is whole (the game's
/// were retried until they went through; the chat's were not): a message `member` posts in
/// `conversation` answered 201, recorded as acknowledged. Returns how long it waited.
pub(super) async fn chat_again(
    world: &TestWorld,
    member: &Member,
    conversation: Uuid,
    stats: &Stats,
    acknowledged: &mut Acknowledged,
) -> anyhow::Result<Duration> {
    let (text, since) = (format!("{} after the faults", member.id()), Instant::now());
    let posted = eventually("the IM service taking writes again", RECOVERY_LIMIT, || {
        post(member, conversation, &text, stats)
    })
    .await
    .with_context(|| {
        format!(
            "the IM service still refuses writes: it does not recover by itself; its last \
             lines:\n{}",
            world.im_log_tails()
        )
    })?;
    acknowledged.message(&posted);
    Ok(since.elapsed())
}
