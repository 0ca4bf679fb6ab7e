//! What only the Redis backend can get wrong about its keys: one entity's hash tag per key, every key expiring, writes refreshing the TTLs they touch, prefixes without braces.

use anyhow::{Context, ensure};
use im_service::store::Store;
use redis::AsyncCommands;
use shared_types::presence::PresenceStatus;
use uuid::Uuid;

use crate::{
    helpers::{LIMITS, RETENTION, RedisFixture, now, user},
    steps::{self, open},
};

/// `who` posts "hi" at `at`, which must be appended.
async fn say(
    store: &dyn Store,
    id: Uuid,
    who: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    let outcome = steps::say(store, id, who, "hi", at).await?;
    steps::appended(outcome)
        .with_context(|| format!("{who} could not post"))
        .map(drop)
}

async fn sorted_keys(fixture: &RedisFixture) -> anyhow::Result<Vec<String>> {
    let mut raw = fixture.raw().await?;
    let mut keys: Vec<String> = raw.keys(format!("{}:*", fixture.prefix)).await?;
    keys.sort();
    Ok(keys)
}

#[tokio::test]
async fn every_key_is_tagged_by_one_entity_and_expires() -> anyhow::Result<()> {
    let fixture = RedisFixture::start("keys")?;
    let store = &fixture.store;
    let created = open(store, &["alice", "bob"], now()).await?;
    let id = created.conversation.id;
    store
        .set_presence(&user("alice")?, PresenceStatus::Available)
        .await?;
    say(store, id, "alice", now()).await?;
    say(store, id, "bob", now()).await?;
    // A game announced in it: the sessions announced there are remembered.
    let game = shared_types::im::GameAnnouncement {
        session_id: Uuid::new_v4(),
        host: user("alice")?,
        mode: "default".into(),
        state: shared_types::game::SessionState::Waiting,
    };
    let record = store.conversation(id).await?.context("the conversation")?;
    steps::appended(
        store
            .announce(&record, &user("game-service")?, "a game", &game, now())
            .await?,
    )?;
    store
        .block(&user("alice")?, &user("mallory")?, now())
        .await?;
    // mallory's conversation with alice: indexed for mallory only.
    let hidden = open(store, &["mallory", "alice"], now()).await?;
    // bob plays a game.
    store
        .apply_activity(&[steps::report("bob", Uuid::new_v4(), true, 1)?])
        .await?;

    let p = &fixture.prefix;
    // alice's presence change went to her feed shard.
    let shard = im_service::domain::feed::shard_of(&user("alice")?, LIMITS.feed_shards);
    let mut expected = vec![
        format!("{p}:{{c.{id}}}:meta"),
        format!("{p}:{{c.{id}}}:msgs"),
        format!("{p}:{{c.{id}}}:games"),
        format!("{p}:{{c.{}}}:meta", hidden.conversation.id),
        format!("{p}:{{u.alice}}:convs"),
        format!("{p}:{{u.alice}}:open"),
        format!("{p}:{{u.alice}}:contacts"),
        format!("{p}:{{u.alice}}:presence"),
        format!("{p}:{{u.alice}}:presence_seq"),
        format!("{p}:{{u.alice}}:blocks"),
        format!("{p}:{{u.bob}}:activity"),
        format!("{p}:{{feed.{shard}}}:changes"),
        format!("{p}:{{feed.{shard}}}:appended"),
        format!("{p}:{{u.bob}}:convs"),
        format!("{p}:{{u.bob}}:open"),
        format!("{p}:{{u.bob}}:contacts"),
        format!("{p}:{{u.mallory}}:convs"),
        format!("{p}:{{u.mallory}}:open"),
        // Event streams and their marks: alice and bob heard of their conversation and its
        // messages, mallory of hers (hidden from alice, who blocks mallory).
        format!("{p}:{{u.alice}}:events"),
        format!("{p}:{{u.alice}}:event_marks"),
        format!("{p}:{{u.bob}}:events"),
        format!("{p}:{{u.bob}}:event_marks"),
        format!("{p}:{{u.mallory}}:events"),
        format!("{p}:{{u.mallory}}:event_marks"),
    ];
    expected.sort();
    let keys = sorted_keys(&fixture).await?;
    assert_eq!(keys, expected);
    let mut raw = fixture.raw().await?;
    for key in &keys {
        // The feed is kept at least a day, whatever the retention.
        let longest = if key.contains("{feed.") {
            i64::try_from(RETENTION.as_millis())?.max(24 * 3600 * 1000)
        } else {
            i64::try_from(RETENTION.as_millis())?
        };
        let ttl: i64 = raw.pttl(key).await?;
        ensure!(
            ttl > 0 && ttl <= longest,
            "{key} has TTL {ttl} ms, expected 0 < ttl <= {longest}"
        );
        // One hash tag per key, naming one entity: never a global tag.
        ensure!(key.matches('{').count() == 1, "{key} has one hash tag");
    }
    // Closing frees the slots: the open sets empty out (and go).
    store.close_conversation(id).await?;
    store.close_conversation(hidden.conversation.id).await?;
    let keys = sorted_keys(&fixture).await?;
    ensure!(
        !keys.iter().any(|k| k.ends_with(":open")),
        "no open-conversation slot left: {keys:?}"
    );
    Ok(())
}

#[tokio::test]
async fn activity_refreshes_the_expiry_of_the_keys_it_touches() -> anyhow::Result<()> {
    let fixture = RedisFixture::start("ttl")?;
    let created = open(&fixture.store, &["alice", "bob"], now()).await?;
    let id = created.conversation.id;
    fixture
        .store
        .block(&user("bob")?, &user("mallory")?, now())
        .await?;
    let p = &fixture.prefix;
    let refreshed = [
        format!("{p}:{{c.{id}}}:meta"),
        format!("{p}:{{u.alice}}:convs"),
        format!("{p}:{{u.alice}}:open"),
        format!("{p}:{{u.bob}}:convs"),
        format!("{p}:{{u.bob}}:blocks"),
    ];
    let mut raw = fixture.raw().await?;
    for key in &refreshed {
        let _: bool = raw.pexpire(key, 5_000).await?;
    }
    say(&fixture.store, id, "alice", now()).await?;
    say(&fixture.store, id, "bob", now()).await?;
    for key in &refreshed {
        let ttl: i64 = raw.pttl(key).await?;
        ensure!(ttl > 5_000, "the appends refreshed {key} (now {ttl} ms)");
    }
    // A block lives as long as its blocker is active: setting a presence refreshes it too.
    let blocks = format!("{p}:{{u.bob}}:blocks");
    let _: bool = raw.pexpire(&blocks, 5_000).await?;
    fixture
        .store
        .set_presence(&user("bob")?, PresenceStatus::Busy)
        .await?;
    let ttl: i64 = raw.pttl(&blocks).await?;
    ensure!(
        ttl > 5_000,
        "setting a presence refreshed the blocks ({ttl} ms)"
    );
    Ok(())
}

#[tokio::test]
async fn a_prefix_with_braces_is_refused() -> anyhow::Result<()> {
    let server = e2e::RedisServer::start()?;
    ensure!(RedisFixture::store_on(&server, "im{x}").is_err());
    Ok(())
}
