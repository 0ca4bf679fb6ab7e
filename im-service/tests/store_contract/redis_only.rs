//! What only the Redis backend can get wrong: sharing a server, expired conversations, outages,
//! steps an interruption left half done, and how much a partners query reads.

use std::time::Duration;

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Utc};
use im_service::store::{CreateOutcome, Store, StoreError};
use redis::AsyncCommands;
use shared_types::presence::PresenceStatus;
use uuid::Uuid;

use crate::{
    helpers::{LIMITS, RedisFixture, conversation, minutes, now, user},
    steps::{self, available, names as partner_names, open},
};

/// Longest an operation may take while Redis is down: it must fail, not hang.
const OUTAGE_LIMIT: Duration = Duration::from_secs(10);

/// `who` posts "hi" at `at`, which must be appended.
async fn say(store: &dyn Store, id: Uuid, who: &str, at: DateTime<Utc>) -> anyhow::Result<()> {
    let outcome = steps::say(store, id, who, "hi", at).await?;
    steps::appended(outcome)
        .with_context(|| format!("{who} could not post"))
        .map(drop)
}

#[tokio::test]
async fn stores_sharing_a_redis_see_each_others_writes_under_one_prefix_only() -> anyhow::Result<()>
{
    let fixture = RedisFixture::start("shared")?;
    let replica = RedisFixture::store_on(&fixture.server, &fixture.prefix)?;
    let other_deployment = RedisFixture::store_on(&fixture.server, &e2e::unique_prefix("other"))?;
    let created = open(&fixture.store, &["alice", "bob"], now()).await?;
    let id = created.conversation.id;
    say(&replica, id, "bob", now()).await?;
    assert_eq!(fixture.store.messages(id, 0, 10).await?.len(), 1);
    assert_eq!(other_deployment.conversation(id).await?, None);
    assert!(
        other_deployment
            .conversations_of(&user("alice")?)
            .await?
            .is_empty()
    );
    Ok(())
}

#[tokio::test]
async fn a_conversation_whose_keys_expired_disappears_from_every_listing() -> anyhow::Result<()> {
    let fixture = RedisFixture::start("expired")?;
    let store = &fixture.store;
    available(store, &["alice", "bob", "carol"]).await?;
    let t0 = now() - minutes(1);
    let gone = open(store, &["alice", "bob"], t0).await?;
    let kept = open(store, &["alice", "carol"], t0).await?;
    for (record, other) in [(&gone, "bob"), (&kept, "carol")] {
        say(store, record.conversation.id, "alice", t0).await?;
        say(store, record.conversation.id, other, t0).await?;
    }
    let mut raw = fixture.raw().await?;
    let _: usize = raw
        .del(format!(
            "{}:{{c.{}}}:meta",
            fixture.prefix, gone.conversation.id
        ))
        .await?;
    let listed = steps::listed(store, "alice").await?;
    assert_eq!(listed, [kept.conversation.id]);
    assert_eq!(partner_names(store, "alice").await?, ["carol"]);
    Ok(())
}

#[tokio::test]
async fn a_slot_left_by_an_interrupted_close_or_creation_is_reclaimed_at_the_limit()
-> anyhow::Result<()> {
    let fixture = RedisFixture::start("reclaim")?;
    let store = &fixture.store;
    let max = LIMITS.max_open_conversations;
    let mut opened = Vec::new();
    for i in 0..max {
        opened.push(open(store, &["alice", &format!("friend{i}")], now()).await?);
    }
    let p = &fixture.prefix;
    let mut raw = fixture.raw().await?;
    // A close that stopped after closing the conversation, before freeing the slots.
    let _: usize = raw
        .hset(
            format!("{p}:{{c.{}}}:meta", opened[0].conversation.id),
            "closed",
            "1",
        )
        .await?;
    let reclaimed = open(store, &["alice", "zed"], now()).await?;
    // A creation that stopped after taking the slot (a minute ago), before writing the
    // conversation: the slot is reclaimed once it is older than a creation in flight.
    let ghost = Uuid::new_v4();
    let _: usize = raw
        .zrem(
            format!("{p}:{{u.alice}}:open"),
            opened[1].conversation.id.to_string(),
        )
        .await?;
    let _: usize = raw
        .zadd(
            format!("{p}:{{u.alice}}:open"),
            ghost.to_string(),
            (now() - minutes(2)).timestamp_millis(),
        )
        .await?;
    let after_ghost = open(store, &["alice", "yan"], now()).await?;
    // Slots of live conversations are not reclaimed.
    assert_eq!(
        store
            .create_conversation(&conversation(&["alice", "xia"], now())?)
            .await?,
        CreateOutcome::Limit
    );
    let open_set: Vec<String> = raw.zrange(format!("{p}:{{u.alice}}:open"), 0, -1).await?;
    ensure!(open_set.len() == max, "{open_set:?}");
    ensure!(open_set.contains(&reclaimed.conversation.id.to_string()));
    ensure!(open_set.contains(&after_ghost.conversation.id.to_string()));
    ensure!(!open_set.contains(&ghost.to_string()));
    Ok(())
}

#[tokio::test]
async fn a_contact_update_an_interruption_lost_is_restored_by_the_next_message()
-> anyhow::Result<()> {
    let fixture = RedisFixture::start("contacts")?;
    let store = &fixture.store;
    let created = open(store, &["alice", "bob"], now()).await?;
    let id = created.conversation.id;
    say(store, id, "alice", now()).await?;
    say(store, id, "bob", now()).await?;
    let (alice, bob) = (user("alice")?, user("bob")?);
    ensure!(store.presence_seen_by(&alice, &bob).await?.is_some());
    // The step after bob's first message never happened.
    let mut raw = fixture.raw().await?;
    let p = &fixture.prefix;
    let _: usize = raw
        .del(&[
            format!("{p}:{{u.alice}}:contacts"),
            format!("{p}:{{u.bob}}:contacts"),
        ])
        .await?;
    ensure!(store.presence_seen_by(&alice, &bob).await?.is_none());
    say(store, id, "alice", now()).await?;
    ensure!(store.presence_seen_by(&alice, &bob).await?.is_some());
    ensure!(store.presence_seen_by(&bob, &alice).await?.is_some());
    Ok(())
}

/// Calls of `command` the server has answered since its statistics were last reset.
async fn calls(raw: &mut redis::aio::MultiplexedConnection, command: &str) -> anyhow::Result<u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(raw)
        .await?;
    Ok(info
        .lines()
        .find_map(|line| line.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0))
}

#[tokio::test]
async fn a_partners_query_reads_only_the_open_recent_conversations_whatever_the_history()
-> anyhow::Result<()> {
    let fixture = RedisFixture::start("bounded")?;
    let store = &fixture.store;
    store
        .set_presence(&user("alice")?, PresenceStatus::Available)
        .await?;
    // A long history: many conversations talked in and closed, more than the limit.
    for i in 0..3 * LIMITS.max_open_conversations {
        let who = format!("old{i}");
        let record = open(store, &["alice", &who], now() - minutes(10)).await?;
        say(store, record.conversation.id, "alice", now() - minutes(10)).await?;
        say(store, record.conversation.id, &who, now() - minutes(10)).await?;
        store.close_conversation(record.conversation.id).await?;
    }
    // Still open but stale, and two live ones.
    let stale = open(store, &["alice", "stale"], now() - minutes(50)).await?;
    say(store, stale.conversation.id, "alice", now() - minutes(50)).await?;
    say(store, stale.conversation.id, "stale", now() - minutes(50)).await?;
    let t = now() - minutes(5);
    for (i, who) in (0..).zip(["bob", "carol"]) {
        store
            .set_presence(&user(who)?, PresenceStatus::Available)
            .await?;
        let record = open(store, &[who, "alice"], t).await?;
        say(store, record.conversation.id, who, t + minutes(i)).await?;
        say(store, record.conversation.id, "alice", t + minutes(i + 1)).await?;
    }
    let mut raw = fixture.raw().await?;
    redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .exec_async(&mut raw)
        .await?;
    // carol's conversation is the newest (alice answered it last).
    assert_eq!(partner_names(store, "alice").await?, ["carol", "bob"]);
    ensure!(
        calls(&mut raw, "hgetall").await? == 2,
        "only the two live conversations were read ({} reads)",
        calls(&mut raw, "hgetall").await?
    );
    // Two reads per candidate (presence, their blocks) and one for the user's blocks.
    ensure!(
        calls(&mut raw, "get").await? == 3,
        "the user's and two candidates' presence"
    );
    ensure!(calls(&mut raw, "zmscore").await? == 1);
    Ok(())
}

#[tokio::test]
async fn operations_fail_while_redis_is_down_and_work_again_after_it_restarts() -> anyhow::Result<()>
{
    let mut fixture = RedisFixture::start("outage")?;
    let alice = user("alice")?;
    fixture
        .store
        .set_presence(&alice, PresenceStatus::Available)
        .await?;
    fixture.store.ping().await?;

    fixture.server.kill();
    let down = tokio::time::timeout(OUTAGE_LIMIT, fixture.store.presence(&alice))
        .await
        .context("an operation hung while Redis was down")?;
    ensure!(
        matches!(down, Err(StoreError::Unavailable(_))),
        "expected Unavailable while down, got {down:?}"
    );
    let created = conversation(&["alice", "bob"], now())?;
    let down = tokio::time::timeout(OUTAGE_LIMIT, fixture.store.create_conversation(&created))
        .await
        .context("a write hung while Redis was down")?;
    ensure!(matches!(down, Err(StoreError::Unavailable(_))), "{down:?}");
    let down = tokio::time::timeout(
        OUTAGE_LIMIT,
        fixture.store.block(&alice, &user("bob")?, now()),
    )
    .await
    .context("a block hung while Redis was down")?;
    ensure!(matches!(down, Err(StoreError::Unavailable(_))), "{down:?}");
    let down = tokio::time::timeout(OUTAGE_LIMIT, fixture.store.ping())
        .await
        .context("ping hung while Redis was down")?;
    ensure!(down.is_err());

    fixture.server.restart()?;
    // The same store, not rebuilt: the restarted server is empty (no persistence).
    fixture.store.ping().await?;
    assert_eq!(
        fixture.store.presence(&alice).await?.status,
        PresenceStatus::Offline
    );
    fixture
        .store
        .set_presence(&alice, PresenceStatus::Busy)
        .await?;
    assert_eq!(
        fixture.store.presence(&alice).await?.status,
        PresenceStatus::Busy
    );
    let CreateOutcome::Created(record) = fixture.store.create_conversation(&created).await? else {
        bail!("refused");
    };
    assert_eq!(fixture.store.conversation(created.id).await?, Some(record));
    Ok(())
}

#[tokio::test]
async fn the_first_command_after_a_silent_restart_succeeds() -> anyhow::Result<()> {
    // The connection manager only learns of the restart when a command fails on the old
    // connection: the store retries that command once on the new connection.
    let mut fixture = RedisFixture::start("restart")?;
    let alice = user("alice")?;
    fixture
        .store
        .set_presence(&alice, PresenceStatus::Away)
        .await?;
    fixture.server.restart()?;
    fixture
        .store
        .set_presence(&alice, PresenceStatus::Busy)
        .await?;
    assert_eq!(
        fixture.store.presence(&alice).await?.status,
        PresenceStatus::Busy
    );
    Ok(())
}
