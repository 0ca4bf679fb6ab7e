//! A Redis primary SIGKILLed and replaced by its replica, behind Sentinel and on a Redis Cluster with replicas, with `REDIS_MIN_REPLICAS_ACKED=1`: what was acknowledged before is all there afterwards, and both services carry on by themselves.

use std::time::Duration;

use anyhow::{Context, ensure};
use shared_types::game::{PlayerState, SessionState};
use uuid::Uuid;

use crate::helpers::{
    Player, StateExt, StoreChoice, TestWorld, WorldOptions, eventually, mutual_accept_round,
    spawn_world_with,
};

/// A failover takes a few seconds (detection, election, promotion); the services then follow.
const FAILOVER_LIMIT: Duration = Duration::from_secs(30);
const RECOVERY_LIMIT: Duration = Duration::from_secs(30);

fn replicated(store: StoreChoice) -> WorldOptions {
    WorldOptions {
        store,
        ..WorldOptions::default()
    }
    .game_var("REDIS_MIN_REPLICAS_ACKED", 1)
    .im_var("REDIS_MIN_REPLICAS_ACKED", 1)
}

/// What alice and bob were told before the failover: their conversation and its messages, and
/// the session both accepted into.
struct Acknowledged {
    conversation: Uuid,
    messages: usize,
    session: Uuid,
}

async fn acknowledged_before(
    world: &TestWorld,
    alice: &Player,
    bob: &Player,
) -> anyhow::Result<Acknowledged> {
    let (alice_state, bob_state) = mutual_accept_round(world, alice, bob, 0).await?;
    let session = alice_state.live_session()?.id;
    ensure!(
        bob_state.live_session()?.id == session,
        "both accepted: one session"
    );
    let conversation = world.chatting(&[alice, bob]).await?;
    Ok(Acknowledged {
        conversation,
        messages: alice.messages(conversation).await?.len(),
        session,
    })
}

/// Once the services follow the new primary: everything acknowledged is there, and (once the
/// old primary is back as a replica, acknowledging writes) a new flow works.
async fn all_there_and_serving(
    world: &TestWorld,
    before: &Acknowledged,
    alice: &Player,
    bob: &Player,
) -> anyhow::Result<()> {
    let state: PlayerState = eventually("alice's state read again", RECOVERY_LIMIT, || async {
        Ok(alice.me().await.ok())
    })
    .await?;
    let session = state.live_session()?;
    ensure!(
        session.id == before.session && session.state == SessionState::Active,
        "the acknowledged session is alice's after the failover: {state:?}"
    );
    let kept = eventually("the conversation read again", RECOVERY_LIMIT, || async {
        Ok(bob.messages(before.conversation).await.ok())
    })
    .await?;
    ensure!(
        kept.len() == before.messages,
        "{} messages acknowledged, {} kept",
        before.messages,
        kept.len()
    );
    let (carol, dave) = (world.player("carol")?, world.player("dave")?);
    eventually("a new pairing after the failover", RECOVERY_LIMIT, || {
        let (carol, dave) = (&carol, &dave);
        async move { Ok(mutual_accept_round(world, carol, dave, 1).await.ok()) }
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_sentinel_a_sigkilled_primary_loses_nothing_acknowledged_and_the_services_follow_the_new_one()
-> anyhow::Result<()> {
    let mut world = spawn_world_with(replicated(StoreChoice::Sentinel)).await?;
    let (alice, bob) = (world.player("alice")?, world.player("bob")?);
    let before = acknowledged_before(&world, &alice, &bob).await?;

    let group = world.sentinel()?;
    let old = group.kill_primary()?;
    group.wait_for_failover(old, FAILOVER_LIMIT)?;
    // The new primary has no replica left to acknowledge writes until the old one rejoins.
    group.restart(old)?;

    all_there_and_serving(&world, &before, &alice, &bob).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_with_replicas_a_sigkilled_master_loses_nothing_acknowledged_and_the_services_carry_on()
-> anyhow::Result<()> {
    let mut world = spawn_world_with(replicated(StoreChoice::ReplicatedCluster)).await?;
    let (alice, bob) = (world.player("alice")?, world.player("bob")?);
    let before = acknowledged_before(&world, &alice, &bob).await?;

    // The master holding alice's record.
    let keys = world.stored_keys().await?;
    let alices = keys
        .iter()
        .find(|k| k.name.contains("alice"))
        .context("no key of alice's in the cluster")?
        .name
        .clone();
    let cluster = world.replicated_cluster()?;
    let master = cluster.master_for_key(&alices)?;
    cluster.kill(master)?;
    cluster.wait_for_failover(master, FAILOVER_LIMIT)?;
    // The promoted replica has no replica of its own until the old master rejoins as one.
    cluster.restart(master)?;

    all_there_and_serving(&world, &before, &alice, &bob).await
}
