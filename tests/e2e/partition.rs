//! A game replica cut off from Redis while its clients still reach it: 503s and a failing `/readyz` there, the other replica serving everyone, nothing stale written after the heal.
//!
//! How the partition is made: the cut-off replica runs in a network namespace of the test's
//! own (`ip netns exec`, [`Netns`]), joined to the host by a veth pair; Redis and an IM-service
//! replica also listen on the host end's address, where it reaches them. An nftables table in
//! the namespace drops (never rejects) its packets to and from Redis's port, and nothing else:
//! its clients reach it, and it reaches the IM service. The partition starts on the first
//! packet of a commit (an `EVALSHA` of the commit script, told by the script's SHA at the head
//! of the TCP payload), sent right after that transition took its locks: the commit is in
//! flight through the whole partition, retransmitted by TCP, and reaches Redis only after the
//! heal, long after its locks' 2 s lease ran out and the other replica moved the same players
//! on. Its fence (the lock token it must still hold) refuses it. This needs root (namespaces,
//! veths, nftables); without it the test fails, it never skips. The namespace, the veth pair
//! and the tables are deleted on drop, failure or not.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use futures_util::future::join_all;
use redis::aio::MultiplexedConnection;
use reqwest::{Method, StatusCode};
use shared_types::game::{PromptKind, SessionState};

use crate::helpers::{
    Netns, Placement, RedisCut, Reply, Service, StateExt, StoreChoice, TestWorld, WorldOptions,
    eventually, invariants::check_store, names, snapshot, sorted, spawn_world_with,
};

/// The game service's commit script as it sends it (`with_append_event`: the shared
/// `append_event` definition, a newline, `commit.lua`); the test tells its calls by its SHA.
const COMMIT_SCRIPT: &str = concat!(
    include_str!("../../service-kit/src/events/lua/append_event.lua"),
    "\n",
    include_str!("../../game-service/src/store/redis/lua/commit.lua")
);
/// The store client's response timeout (`service_kit::redis_conn`).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Beyond it: a reconnection attempt (1 s connect timeout), a debug build, a loaded machine.
const MARGIN: Duration = Duration::from_secs(3);
/// The game service's lock lease (`game::LOCK_LEASE`), and a little more.
const LEASE_LIMIT: Duration = Duration::from_secs(4);
/// TCP retransmits an unacknowledged segment with a doubling timeout (from 200 ms): the next
/// try after the heal comes within about as long again as the partition lasted.
const DELIVERY_LIMIT: Duration = Duration::from_secs(30);
/// For the healed replica to reconnect and answer `/readyz` 200.
const RECOVERY_LIMIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_cut_off_from_redis_answers_503_fails_readyz_writes_nothing_stale_after_the_heal_and_the_other_serves_everyone()
-> anyhow::Result<()> {
    // Declared first, dropped last: after the processes in it.
    let net = Netns::create()?;
    // Redis learns another address: a server of its own, even when the suite runs on a cluster.
    let mut world = spawn_world_with(WorldOptions {
        store: StoreChoice::PrivateRedis,
        ..WorldOptions::default()
    })
    .await?;
    let redis = world.redis()?;
    redis.listen_also_on(net.host_ip())?;
    let (redis_port, redis_url) = (redis.port(), redis.url());
    let im = world
        .spawn_im_replica_at(&Placement {
            ip: net.host_ip().to_owned(),
            ..Placement::default()
        })
        .await?;
    let cut = world
        .spawn_game_replica_at(&Placement {
            wrapper: net.exec_prefix(),
            ip: net.ns_ip().to_owned(),
            env: vec![
                (
                    "REDIS_URL".into(),
                    format!("redis://{}:{redis_port}", net.host_ip()),
                ),
                ("IM_URL".into(), im.base_url().to_owned()),
            ],
        })
        .await?;
    let mut conn = redis::Client::open(redis_url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let [alice, bob, carol, dave] = ["alice", "bob", "carol", "dave"].map(|n| world.player(n));
    let (alice, bob, carol, dave) = (alice?, bob?, carol?, dave?);
    world.chatting(&[&alice, &bob]).await?;
    world.chatting(&[&carol, &dave]).await?;

    // The commit script's calls, told by its SHA, are counted from now on.
    let sha: String = redis::cmd("EVAL")
        .arg("return redis.sha1hex(ARGV[1])")
        .arg(0)
        .arg(COMMIT_SCRIPT)
        .query_async(&mut conn)
        .await?;
    let mut cut_off = RedisCut::new(&net, net.host_ip(), redis_port, &sha)?;

    // Before the partition: alice holds an invite prompt, made through the cut-off replica.
    let invite = alice.via(&cut).connect().await?.open_prompt()?.clone();
    ensure!(invite.kind == PromptKind::Invite, "{invite:#?}");
    let known: Vec<i64> = redis::cmd("SCRIPT")
        .arg("EXISTS")
        .arg(&sha)
        .query_async(&mut conn)
        .await?;
    ensure!(
        known == [1] && cut_off.sent()? > 0,
        "the replica's commits are not told apart by the script's SHA {sha} (known to Redis: \
         {known:?}; is the commit script still `append_event` + `commit.lua`?):\n{}",
        cut_off.describe()
    );

    // The partition: it starts with the next commit's first packet.
    cut_off.arm()?;
    let stale = {
        let (alice, path) = (alice.via(&cut), format!("/v1/prompts/{}/accept", invite.id));
        tokio::spawn(async move { alice.raw(Service::Game, Method::POST, &path, None).await })
    };
    eventually(
        "the commit of alice's accept dropped",
        Duration::from_secs(5),
        || async { Ok((cut_off.dropped()? > 0).then_some(())) },
    )
    .await?;
    cut_off.everything()?;
    let partitioned = Instant::now();

    // (a) The cut-off replica answers promptly: 503 `store_unavailable` with `Retry-After`,
    // `/readyz` 503 naming the store, `/healthz` 200.
    let stale = stale.await.context("joining alice's accept")??;
    assert_store_unavailable(&stale).context("the accept whose commit is in flight")?;
    let probes = [
        (carol.via(&cut), Method::GET, "/v1/me"),
        (carol.via(&cut), Method::POST, "/v1/connect"),
        (dave.via(&cut), Method::POST, "/v1/connect"),
        (dave.via(&cut), Method::GET, "/readyz"),
        (dave.via(&cut), Method::GET, "/healthz"),
    ];
    let replies: Vec<Reply> = join_all(
        probes
            .iter()
            .map(|(player, method, path)| player.raw(Service::Game, method.clone(), path, None)),
    )
    .await
    .into_iter()
    .collect::<anyhow::Result<_>>()?;
    let [me, connect, other_connect, ready, health] = <[Reply; 5]>::try_from(replies)
        .map_err(|_| anyhow::anyhow!("five probes, five replies"))?;
    for reply in [&me, &connect, &other_connect] {
        assert_store_unavailable(reply).context("during the partition")?;
    }
    ensure!(
        ready.status == StatusCode::SERVICE_UNAVAILABLE
            && ready.elapsed < RESPONSE_TIMEOUT + MARGIN,
        "/readyz of the cut-off replica: {ready:?}"
    );
    let report: serde_json::Value = ready.json()?;
    ensure!(
        report["checks"]["store"] == "unavailable",
        "/readyz names the store: {report}"
    );
    ensure!(
        health.status == StatusCode::OK && health.elapsed < Duration::from_secs(1),
        "the cut-off replica is alive and reachable: {health:?}"
    );

    // (b) The other replica serves everyone meanwhile, alice (whose accept is in flight on the
    // cut-off replica) first.
    let lobby = alice.accept(invite.id, None).await?.live_session()?.clone();
    let join = bob.connect().await?.open_prompt()?.clone();
    ensure!(join.session_id == Some(lobby.id), "{join:#?}");
    let together = bob.accept(join.id, None).await?;
    ensure!(
        together.live_session()?.state == SessionState::Active,
        "{together:#?}"
    );
    let opening = carol.connect().await?.open_prompt()?.clone();
    carol.accept(opening.id, None).await?;
    let joining = dave.connect().await?.open_prompt()?.clone();
    let other_session = dave.accept(joining.id, None).await?.live_session()?.clone();
    ensure!(
        other_session.state == SessionState::Active,
        "{other_session:#?}"
    );
    let served = partitioned.elapsed();

    // (c) The in-flight commit's locks are gone (their lease ran out, the other replica took
    // and released them); what the other replica left is recorded, then the partition heals.
    let prefix = world.game_key_prefix();
    eventually("alice's and bob's locks gone", LEASE_LIMIT, || async {
        let locks = snapshot(
            std::slice::from_ref(&redis_url),
            &format!("{prefix}:{{p.*}}:lock"),
        )
        .await?;
        Ok((!locks
            .iter()
            .any(|k| k.name.contains("{p.alice}") || k.name.contains("{p.bob}")))
        .then_some(()))
    })
    .await?;
    let before = records(&world, &mut conn).await?;
    let (refused_before, sent_before) = (lease_lost(&mut conn).await?, cut_off.sent()?);
    let dropped = cut_off.heal();
    let healed = Instant::now();
    let partition = partitioned.elapsed();
    eventually(
        "the in-flight commit retransmitted after the heal",
        DELIVERY_LIMIT,
        || async { Ok((cut_off.sent()? > sent_before).then_some(())) },
    )
    .await
    .with_context(|| format!("what the partition dropped:\n{dropped}"))?;
    let delivered = healed.elapsed();
    eventually(
        "Redis answering the late commit",
        Duration::from_secs(5),
        || async {
            let refused = lease_lost(&mut conn.clone()).await? > refused_before;
            Ok((refused || records(&world, &mut conn.clone()).await? != before).then_some(()))
        },
    )
    .await?;
    let after = records(&world, &mut conn).await?;
    if after != before {
        let changed: Vec<String> = after
            .iter()
            .filter(|(name, value)| before.get(*name) != Some(value))
            .map(|(name, value)| format!("{} = {value}", name.trim_start_matches(&prefix)))
            .collect();
        bail!(
            "the cut-off replica's late commit wrote over what the other replica did: {changed:#?}"
        );
    }
    ensure!(
        lease_lost(&mut conn).await? > refused_before,
        "the late commit was not refused by its fence (no LEASE_LOST)"
    );
    for (player, view) in [(&alice, alice.me().await?), (&bob, bob.me().await?)] {
        let session = view.live_session()?;
        ensure!(
            session.id == lobby.id
                && session.state == SessionState::Active
                && sorted(&session.players) == names(&[&alice, &bob]),
            "{} after the heal: {view:#?}",
            player.id
        );
    }
    let hosted: Vec<String> = after
        .keys()
        .filter(|name| name.contains("{p.alice}:session:") || name.contains("{p.bob}:session:"))
        .cloned()
        .collect();
    ensure!(
        hosted == [format!("{prefix}:{{p.alice}}:session:{}", lobby.id)],
        "alice and bob host only the lobby the other replica made: {hosted:?}"
    );

    // (d) Healed, the replica serves again by itself.
    let probe = dave.via(&cut);
    eventually("/readyz of the healed replica", RECOVERY_LIMIT, || async {
        let ready = probe
            .raw(Service::Game, Method::GET, "/readyz", None)
            .await?;
        Ok((ready.status == StatusCode::OK).then_some(()))
    })
    .await?;
    let ready_again = healed.elapsed();
    let seen = alice.via(&cut).me().await?;
    ensure!(seen.live_session()?.id == lobby.id, "{seen:#?}");
    let left = dave.via(&cut).leave(other_session.id).await?;
    ensure!(
        left.session.is_none(),
        "dave left through the healed replica: {left:#?}"
    );
    check_store(&world).await?;
    ensure!(
        world.panics() == 0 && world.all_running(),
        "a service panicked or died:\n{}",
        world.game_log_tails()
    );
    eprintln!(
        "partition: the stale accept answered {} in {:.1?}; during the partition {} in {:.1?}, \
         {} in {:.1?}, {} in {:.1?}, /readyz {} in {:.1?}; the other replica served all four \
         {served:.1?} into it; healed after {partition:.1?}; the late commit reached Redis \
         {delivered:.1?} after the heal and its fence refused it; /readyz 200 again {:.1?} \
         after the heal",
        stale.status,
        stale.elapsed,
        me.status,
        me.elapsed,
        connect.status,
        connect.elapsed,
        other_connect.status,
        other_connect.elapsed,
        ready.status,
        ready.elapsed,
        ready_again,
    );
    Ok(())
}

/// A 503 problem+json `store_unavailable` with `Retry-After`, within the store client's
/// response timeout and a margin.
fn assert_store_unavailable(reply: &Reply) -> anyhow::Result<()> {
    reply.store_unavailable_within(RESPONSE_TIMEOUT + MARGIN)
}

/// What alice and bob hold (records, the sessions they host, their event streams' lengths) and
/// every session's host pointer: what a stale commit of theirs would write. Locks aside.
async fn records(
    world: &TestWorld,
    conn: &mut MultiplexedConnection,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut held = BTreeMap::new();
    for key in world.stored_keys().await? {
        let theirs = ["{p.alice}", "{p.bob}", "{s."]
            .iter()
            .any(|tag| key.name.contains(tag));
        if !theirs || key.name.ends_with(":lock") || !key.name.starts_with(&world.game_key_prefix())
        {
            continue;
        }
        let value = match (key.kind.as_str(), key.value) {
            ("stream", _) => {
                let length: u64 = redis::cmd("XLEN").arg(&key.name).query_async(conn).await?;
                format!("a stream of {length}")
            }
            (_, Some(value)) => value,
            (kind, None) => format!("a {kind}"),
        };
        held.insert(key.name, value);
    }
    Ok(held)
}

/// How many commands Redis refused with `LEASE_LOST` (a commit whose fence failed).
async fn lease_lost(conn: &mut MultiplexedConnection) -> anyhow::Result<u64> {
    let info: String = redis::cmd("INFO")
        .arg("errorstats")
        .query_async(conn)
        .await?;
    Ok(info
        .lines()
        .find_map(|line| line.strip_prefix("errorstat_LEASE_LOST:count="))
        .map(|count| count.trim().parse())
        .transpose()?
        .unwrap_or(0))
}
