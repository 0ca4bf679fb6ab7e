//! `REDIS_MIN_REPLICAS_ACKED`: with a replica required, what both services acknowledge is on the replica when they answer; with the replica frozen, writes answer 503 (and are counted) while reads go on, and the services recover by themselves once it is back.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use e2e::RedisServer;
use reqwest::Method;
use shared_types::im::Conversation;

use crate::helpers::{
    Reply, Service, StateExt, StoreChoice, TestWorld, WorldOptions, eventually, spawn_world_with,
};

/// `REDIS_REPLICA_ACK_TIMEOUT_MS` for these worlds: short, so a refused write answers soon.
const ACK_TIMEOUT_MS: u64 = 300;
/// Beyond the ack timeout: a debug build on a loaded machine.
const ANSWER_LIMIT: Duration = Duration::from_secs(3);
const RECOVERY_LIMIT: Duration = Duration::from_secs(15);

/// A replica of the world's Redis, with its link up.
async fn attach_replica(world: &mut TestWorld) -> anyhow::Result<RedisServer> {
    let master = world.redis()?.port();
    let replica = tokio::task::spawn_blocking(RedisServer::start)
        .await
        .context("joining the replica's start-up")??;
    let client = redis::Client::open(replica.url())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(master)
        .exec_async(&mut conn)
        .await
        .context("REPLICAOF")?;
    eventually("the replica's link to its master", RECOVERY_LIMIT, || {
        let mut conn = conn.clone();
        async move {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query_async(&mut conn)
                .await?;
            Ok(info.contains("master_link_status:up").then_some(()))
        }
    })
    .await?;
    Ok(replica)
}

/// The keys under `prefix` that `node` holds.
async fn keys_on(node: &RedisServer, prefix: &str) -> anyhow::Result<Vec<String>> {
    let client = redis::Client::open(node.url())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await?;
    Ok(keys)
}

/// A 503 `store_unavailable` with `Retry-After`, answered soon after the ack timeout.
fn refused_for_replicas(reply: &Reply) -> anyhow::Result<()> {
    reply.store_unavailable_within(ANSWER_LIMIT)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_replica_required_acknowledged_writes_are_on_it_and_a_frozen_replica_means_503_until_it_is_back()
-> anyhow::Result<()> {
    let options = WorldOptions {
        store: StoreChoice::PrivateRedis,
        ..WorldOptions::default()
    }
    .game_var("REDIS_MIN_REPLICAS_ACKED", 1)
    .game_var("REDIS_REPLICA_ACK_TIMEOUT_MS", ACK_TIMEOUT_MS)
    .im_var("REDIS_MIN_REPLICAS_ACKED", 1)
    .im_var("REDIS_REPLICA_ACK_TIMEOUT_MS", ACK_TIMEOUT_MS);
    let mut world = spawn_world_with(options).await?;
    let replica = attach_replica(&mut world).await?;
    let (alice, bob, carol) = (
        world.player("alice")?,
        world.player("bob")?,
        world.player("carol")?,
    );

    // Acknowledged means on the replica, the moment the answer arrives.
    let conversation = world.chatting(&[&alice, &bob]).await?;
    let on_replica = keys_on(&replica, &world.im_key_prefix()).await?;
    ensure!(
        on_replica
            .iter()
            .any(|k| k.contains(&conversation.to_string())),
        "conversation {conversation} was acknowledged but the replica holds none of its keys: {on_replica:?}"
    );
    let invite = alice.connect().await?.open_prompt()?.clone();
    let game_keys = keys_on(&replica, &world.game_key_prefix()).await?;
    ensure!(
        game_keys.iter().any(|k| k.contains("alice")),
        "alice's prompt {} was acknowledged but the replica holds no key of hers: {game_keys:?}",
        invite.id
    );

    // The replica freezes: every write is refused, reads go on.
    replica.pause()?;
    let body = serde_json::json!({ "participants": [carol.id.as_str()] }).to_string();
    let open = alice
        .raw(Service::Im, Method::POST, "/v1/conversations", Some(&body))
        .await?;
    refused_for_replicas(&open)?;
    let connect = bob
        .raw(Service::Game, Method::POST, "/v1/connect", None)
        .await?;
    refused_for_replicas(&connect)?;
    let read = alice.me().await?;
    ensure!(
        read.prompt.as_ref().map(|p| p.id) == Some(invite.id),
        "reads go on while the replica is frozen: {read:?}"
    );
    let messages = alice
        .raw(
            Service::Im,
            Method::GET,
            &format!("/v1/conversations/{conversation}/messages"),
            None,
        )
        .await?;
    ensure!(messages.status == 200, "reading messages: {messages:?}");
    for service in [Service::Im, Service::Game] {
        let refused = world
            .metric_of(service, "redis_replica_ack_timeouts_total")
            .await?;
        ensure!(
            refused >= 1.0,
            "{service:?} counted {refused} refused writes"
        );
    }

    // Back: writes are acknowledged again without anybody restarting anything.
    replica.resume()?;
    let start = Instant::now();
    let opened: Conversation = eventually("a conversation opened again", RECOVERY_LIMIT, || {
        let (alice, body) = (&alice, &body);
        async move {
            let reply = alice
                .raw(Service::Im, Method::POST, "/v1/conversations", Some(body))
                .await?;
            (reply.status == 201).then(|| reply.json()).transpose()
        }
    })
    .await?;
    let state = bob.connect().await?;
    ensure!(
        state.prompt.is_some() || state.session.is_some(),
        "bob's connect after the replica came back leads somewhere: {state:?}"
    );
    eprintln!(
        "writes acknowledged again {:?} after the replica resumed (conversation {})",
        start.elapsed(),
        opened.id
    );
    Ok(())
}
