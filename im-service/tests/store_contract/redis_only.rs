//! What only the Redis backend can get wrong: key layout, expiry, sharing a server, outages.

use std::time::Duration;

use anyhow::{Context, ensure};
use im_service::store::{AppendOutcome, Store, StoreError};
use redis::AsyncCommands;
use shared_types::presence::PresenceStatus;

use crate::helpers::{RETENTION, RedisFixture, conversation, minutes, now, user};

/// Longest an operation may take while Redis is down: it must fail, not hang.
const OUTAGE_LIMIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn every_key_is_tagged_by_one_entity_and_expires() -> anyhow::Result<()> {
    let fixture = RedisFixture::start("keys")?;
    let store = &fixture.store;
    let created = conversation(&["alice", "bob"], now())?;
    store.create_conversation(&created).await?;
    store
        .set_presence(&user("alice")?, PresenceStatus::Available)
        .await?;
    store
        .append_message(&created, &user("bob")?, "hi", now())
        .await?;
    store.close_conversation(created.id).await?;

    let mut raw = fixture.raw().await?;
    let keys: Vec<String> = raw.keys(format!("{}:*", fixture.prefix)).await?;
    let conversation_tag = format!("{{c.{}}}", created.id);
    let expected = [
        format!("{}:{conversation_tag}:meta", fixture.prefix),
        format!("{}:{conversation_tag}:msgs", fixture.prefix),
        format!("{}:{{u.alice}}:convs", fixture.prefix),
        format!("{}:{{u.alice}}:contacts", fixture.prefix),
        format!("{}:{{u.alice}}:presence", fixture.prefix),
        format!("{}:{{u.bob}}:convs", fixture.prefix),
        format!("{}:{{u.bob}}:contacts", fixture.prefix),
    ];
    let mut sorted_keys = keys.clone();
    sorted_keys.sort();
    let mut sorted_expected = expected.to_vec();
    sorted_expected.sort();
    assert_eq!(sorted_keys, sorted_expected);
    let retention_ms = i64::try_from(RETENTION.as_millis())?;
    for key in &keys {
        let ttl: i64 = raw.pttl(key).await?;
        ensure!(
            ttl > 0 && ttl <= retention_ms,
            "{key} has TTL {ttl} ms, expected 0 < ttl <= {retention_ms}"
        );
        // One hash tag per key, naming one entity: never a global tag.
        ensure!(key.matches('{').count() == 1, "{key} has one hash tag");
    }
    Ok(())
}

#[tokio::test]
async fn activity_refreshes_the_expiry_of_the_keys_it_touches() -> anyhow::Result<()> {
    let fixture = RedisFixture::start("ttl")?;
    let created = conversation(&["alice", "bob"], now())?;
    fixture.store.create_conversation(&created).await?;
    let meta = format!("{}:{{c.{}}}:meta", fixture.prefix, created.id);
    let mut raw = fixture.raw().await?;
    let _: bool = raw.pexpire(&meta, 5_000).await?;
    fixture
        .store
        .append_message(&created, &user("alice")?, "still here", now())
        .await?;
    let ttl: i64 = raw.pttl(&meta).await?;
    ensure!(ttl > 5_000, "the append refreshed the TTL (now {ttl} ms)");
    Ok(())
}

#[tokio::test]
async fn stores_sharing_a_redis_see_each_others_writes_under_one_prefix_only() -> anyhow::Result<()>
{
    let fixture = RedisFixture::start("shared")?;
    let replica = RedisFixture::store_on(&fixture.server, &fixture.prefix)?;
    let other_deployment = RedisFixture::store_on(&fixture.server, &e2e::unique_prefix("other"))?;
    let created = conversation(&["alice", "bob"], now())?;
    fixture.store.create_conversation(&created).await?;
    let message = replica
        .append_message(&created, &user("bob")?, "from the replica", now())
        .await?;
    ensure!(matches!(message, AppendOutcome::Appended(_)));
    assert_eq!(fixture.store.messages(created.id, 0, 10).await?.len(), 1);
    assert_eq!(other_deployment.conversation(created.id).await?, None);
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
    let t0 = now() - minutes(1);
    let gone = conversation(&["alice", "bob"], t0)?;
    let kept = conversation(&["alice", "carol"], t0)?;
    fixture.store.create_conversation(&gone).await?;
    fixture.store.create_conversation(&kept).await?;
    let mut raw = fixture.raw().await?;
    let _: usize = raw
        .del(format!("{}:{{c.{}}}:meta", fixture.prefix, gone.id))
        .await?;
    let alice = user("alice")?;
    let listed: Vec<_> = fixture
        .store
        .conversations_of(&alice)
        .await?
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(listed, [kept.id]);
    let open: Vec<_> = fixture
        .store
        .open_conversations_since(&alice, t0 - minutes(1))
        .await?
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(open, [kept.id]);
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
    let down = tokio::time::timeout(OUTAGE_LIMIT, fixture.store.ping())
        .await
        .context("ping hung while Redis was down")?;
    ensure!(down.is_err());

    fixture.server.restart()?;
    // The same store, not rebuilt: the restarted server is empty (no persistence).
    fixture.store.ping().await?;
    assert_eq!(
        fixture.store.presence(&alice).await?,
        PresenceStatus::Offline
    );
    fixture
        .store
        .set_presence(&alice, PresenceStatus::Busy)
        .await?;
    assert_eq!(fixture.store.presence(&alice).await?, PresenceStatus::Busy);
    fixture.store.create_conversation(&created).await?;
    assert_eq!(fixture.store.conversation(created.id).await?, Some(created));
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
    assert_eq!(fixture.store.presence(&alice).await?, PresenceStatus::Busy);
    Ok(())
}

#[tokio::test]
async fn a_prefix_with_braces_is_refused() -> anyhow::Result<()> {
    let server = e2e::RedisServer::start()?;
    ensure!(RedisFixture::store_on(&server, "im{x}").is_err());
    Ok(())
}
