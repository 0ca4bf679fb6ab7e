//! The chaos soak (`scripts/soak.sh --minutes N`, not part of the suite): the failover storm's mix of flows (groups racing through the game while they chat) on a Redis Cluster with replicas and two game replicas, `REDIS_MIN_REPLICAS_ACKED=1`, for N minutes, while random faults strike every few seconds: a master SIGKILLed (its replica takes over, it rejoins as a replica), a replica SIGKILLed and restarted, a game replica or the IM service SIGKILLed and restarted. Afterwards every invariant and every acknowledged conversation, message and session is checked, as after any storm.
//!
//! While a fault lasts the services refuse writes (503 `store_unavailable`) or do not answer
//! at all (a killed process): game requests are retried (the contract: such a request may or
//! may not have happened), chat writes are counted and not recorded.

use std::{
    collections::BTreeMap,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use e2e::replicated::Role;
use rand::{Rng, SeedableRng, rngs::StdRng};

use super::{Config, failover::Fault, players::Stats, run::storm};
use crate::helpers::{Replica, StoreChoice, TestWorld};

/// Groups that all play at once for the whole soak (the storm plays this many concurrently).
const PAIRS: usize = 54;
const TRIOS: usize = 10;
/// More rounds than any soak plays: the clock ends it.
const ROUNDS: usize = 1_000_000;
/// Between the end of one fault and the next, a random pause within this.
const GAP_MS: std::ops::Range<u64> = 3_000..12_000;
/// How long a killed replica stays down before its restart.
const DOWN_MS: std::ops::Range<u64> = 500..4_000;
/// A failover, and a restarted node becoming a replica again (as in the failover storm).
const FAILOVER_LIMIT: Duration = Duration::from_secs(30);
const REJOIN_LIMIT: Duration = Duration::from_secs(40);
/// The soak's last stretch has no faults: a killed game replica's claimed jobs (lobby
/// announcements, activity reports) are handed out again after their 30 s lease, and the
/// checks that follow want them delivered.
const QUIET_END: Duration = Duration::from_secs(35);
/// Room left for a fault before the quiet end: a failover and a rejoin take ~3-6 s here.
const FAULT_BUDGET: Duration = Duration::from_secs(10);
/// Once the last fault is over, the services take writes again within this.
const RECOVERY_LIMIT: Duration = Duration::from_secs(20);
/// The slots whose masters the faults pick from: one in each master's initial range.
const SLOTS: [u16; 3] = [0, 8_000, 16_000];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes long: run by scripts/soak.sh"]
async fn soak_on_a_cluster_with_replicas_under_random_faults_loses_nothing_acknowledged()
-> anyhow::Result<()> {
    let minutes: f64 = match std::env::var("SOAK_MINUTES") {
        Ok(minutes) => minutes.parse().context("SOAK_MINUTES must be a number")?,
        Err(_) => 10.0,
    };
    ensure!(minutes > 0.0, "SOAK_MINUTES must be positive");
    storm(Config {
        store: StoreChoice::ReplicatedCluster,
        flips: false,
        chat: true,
        fault: Some(Fault::Chaos),
        play_for: Some(Duration::from_secs_f64(minutes * 60.0)),
        ..Config::from_env(PAIRS, TRIOS, ROUNDS)?
    })
    .await
}

/// A fault the soak injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// A master SIGKILLed: its replica takes over; restarted, it rejoins as a replica.
    Master,
    /// A replica SIGKILLed, restarted a moment later (it syncs again from scratch).
    Replica,
    /// A game-service replica SIGKILLed and started again on its port.
    GameReplica,
    /// The IM service SIGKILLed and started again on its port.
    ImService,
}

const KINDS: [Kind; 4] = [
    Kind::Master,
    Kind::Replica,
    Kind::GameReplica,
    Kind::ImService,
];

/// The kinds of fault to inject: `SOAK_FAULTS` (comma-separated `master`, `replica`, `game`,
/// `im`), every kind by default.
fn kinds_from_env() -> anyhow::Result<Vec<Kind>> {
    let Ok(names) = std::env::var("SOAK_FAULTS") else {
        return Ok(KINDS.to_vec());
    };
    names
        .split(',')
        .map(|name| match name.trim() {
            "master" => Ok(Kind::Master),
            "replica" => Ok(Kind::Replica),
            "game" => Ok(Kind::GameReplica),
            "im" => Ok(Kind::ImService),
            other => bail!("SOAK_FAULTS: unknown fault {other:?} (master, replica, game, im)"),
        })
        .collect()
}

/// What the soak injected.
pub(super) struct Chaos {
    /// Faults by kind: how many, and the longest from the kill until the harness saw the
    /// node or the service back in its role.
    injected: BTreeMap<Kind, (usize, Duration)>,
    started: Instant,
    ended: Instant,
}

/// Strikes faults at random (chosen by `seed`) until [`QUIET_END`] before `until`, each waited
/// out before the next; from then on the services must take writes again within
/// [`RECOVERY_LIMIT`].
pub(super) async fn unleash(
    world: &mut TestWorld,
    other: &Replica,
    stats: &Stats,
    until: Instant,
    seed: u64,
) -> anyhow::Result<Chaos> {
    let kinds = kinds_from_env()?;
    let mut rng = StdRng::seed_from_u64(seed.rotate_left(41));
    let mut chaos = Chaos {
        injected: BTreeMap::new(),
        started: Instant::now(),
        ended: Instant::now(),
    };
    let quiet_from = until.checked_sub(QUIET_END).unwrap_or(until);
    loop {
        let gap = Duration::from_millis(rng.random_range(GAP_MS));
        let left = quiet_from.saturating_duration_since(Instant::now());
        if gap + FAULT_BUDGET >= left {
            break;
        }
        tokio::time::sleep(gap).await;
        let kind = kinds[rng.random_range(0..kinds.len())];
        let struck = Instant::now();
        strike(kind, world, other, &mut rng)
            .await
            .with_context(|| {
                format!(
                    "injecting {kind:?}, {:.1?} into the soak",
                    chaos.started.elapsed()
                )
            })?;
        let entry = chaos.injected.entry(kind).or_default();
        entry.0 += 1;
        entry.1 = entry.1.max(struck.elapsed());
    }
    chaos.ended = Instant::now();
    stats
        .outages
        .expect_recovery_by(chaos.ended + RECOVERY_LIMIT);
    Ok(chaos)
}

async fn strike(
    kind: Kind,
    world: &mut TestWorld,
    other: &Replica,
    rng: &mut StdRng,
) -> anyhow::Result<()> {
    let slot = SLOTS[rng.random_range(0..SLOTS.len())];
    let down = Duration::from_millis(rng.random_range(DOWN_MS));
    match kind {
        // The harness blocks while it waits: the storm plays on in its own task meanwhile.
        Kind::Master => tokio::task::block_in_place(|| {
            let cluster = world.replicated_cluster()?;
            let node = cluster.master_of_slot(slot)?;
            cluster.kill(node)?;
            cluster.wait_for_failover(node, FAILOVER_LIMIT)?;
            cluster.restart(node)?;
            cluster.wait_for_role(node, Role::Replica, REJOIN_LIMIT)
        }),
        Kind::Replica => tokio::task::block_in_place(|| {
            let cluster = world.replicated_cluster()?;
            let node = cluster.replica_of(cluster.master_of_slot(slot)?)?;
            cluster.kill(node)?;
            std::thread::sleep(down);
            cluster.restart(node)?;
            cluster.wait_for_role(node, Role::Replica, REJOIN_LIMIT)
        }),
        Kind::GameReplica if rng.random_bool(0.5) => world.restart_game().await,
        Kind::GameReplica => world.restart_replica(other).await,
        Kind::ImService => world.restart_im().await,
    }
}

impl Chaos {
    /// Prints what was injected and what the services showed of it.
    pub(super) fn print(&self, stats: &Stats) {
        let seen = stats.outages.seen();
        let faults: usize = self.injected.values().map(|(n, _)| n).sum();
        let kinds: Vec<String> = self
            .injected
            .iter()
            .map(|(kind, (n, longest))| format!("{kind:?} {n} (back within {longest:.1?})"))
            .collect();
        eprintln!(
            "soak: {faults} faults in {:.1?}: {}\n\
             soak: {} game requests sent; {} tries refused (503 store_unavailable, or no \
             answer), {} requests went through on a retry, {} answers checked loosely as a \
             retry's; {} chat writes refused (not retried, not recorded); {} tries got no \
             answer from a killed service; {} rounds played by {} groups",
            self.ended.saturating_duration_since(self.started),
            kinds.join(", "),
            stats.requests.load(Ordering::Relaxed),
            seen.game_refused,
            seen.retried_through,
            seen.loosened,
            seen.im_refused,
            seen.unanswered,
            stats.rounds_played.load(Ordering::Relaxed),
            stats.groups_done.load(Ordering::Relaxed),
        );
    }

    /// Requires that something was injected: a soak without faults proves nothing.
    pub(super) fn ensure_enough(&self) -> anyhow::Result<()> {
        ensure!(
            !self.injected.is_empty(),
            "no fault was injected: the soak was shorter than the pause before the first"
        );
        Ok(())
    }
}
