//! What only the Redis backend can get wrong about idempotency keys: their records' slots and TTLs, and a repeat finishing the steps an interrupted first request left undone.

use anyhow::{Context, bail, ensure};
use im_service::{
    domain::IdempotencyKey,
    store::{AppendOutcome, CreateOutcome, Store},
};
use redis::AsyncCommands;
use shared_types::im::ImEvent;
use uuid::Uuid;

use crate::{
    helpers::{RETENTION, RedisFixture, conversation, now, user},
    steps::{self, appended, listed, open, sees_presence},
};

fn key(raw: &str) -> anyhow::Result<IdempotencyKey> {
    Ok(IdempotencyKey::parse(raw.as_bytes())?)
}

/// alice opens a conversation with bob, with `key`.
async fn open_keyed(store: &dyn Store, key: &IdempotencyKey) -> anyhow::Result<Uuid> {
    let asked = conversation(&["alice", "bob"], now())?;
    match store.create_conversation_keyed(&asked, Some(key)).await? {
        CreateOutcome::Created(record) => Ok(record.conversation.id),
        other => bail!("not created: {other:?}"),
    }
}

/// `who` says `text` in `id`, with `key`.
async fn say_keyed(
    store: &dyn Store,
    id: Uuid,
    who: &str,
    text: &str,
    key: &IdempotencyKey,
) -> anyhow::Result<AppendOutcome> {
    let record = store.conversation(id).await?.context("the conversation")?;
    Ok(store
        .append_message_keyed(&record, &user(who)?, text, now(), Some(key))
        .await?)
}

#[tokio::test]
async fn key_records_live_in_the_slot_they_guard_and_expire_once_their_window_ends()
-> anyhow::Result<()> {
    let fixture = RedisFixture::start("idem-keys")?;
    let store = &fixture.store;
    // Braces and a percent sign in a client's key: escaped, the name keeps one hash tag.
    let k = key("{k}%1")?;
    let id = open_keyed(store, &k).await?;
    appended(say_keyed(store, id, "bob", "hi", &k).await?)?;
    let p = &fixture.prefix;
    let records = [
        format!("{p}:{{u.alice}}:idem.conv:%7Bk%7D%251"),
        format!("{p}:{{c.{id}}}:idem.msg.bob:%7Bk%7D%251"),
    ];
    let mut raw = fixture.raw().await?;
    let mut found: Vec<String> = raw.keys(format!("{p}:*idem*")).await?;
    found.sort();
    let mut expected = records.to_vec();
    expected.sort();
    ensure!(found == expected, "{found:?}");
    let window = i64::try_from(RETENTION.as_millis())?.min(24 * 3600 * 1000);
    for record in &records {
        ensure!(record.matches('{').count() == 1, "{record}: one hash tag");
        let ttl: i64 = raw.pttl(record).await?;
        ensure!(ttl > 0 && ttl <= window, "{record}: TTL {ttl} ms");
        // A repeat does not extend the window: it counts from the first request.
        let _: bool = raw.pexpire(record, 5_000).await?;
    }
    open_keyed(store, &k).await?;
    appended(say_keyed(store, id, "bob", "hi", &k).await?)?;
    for record in &records {
        let ttl: i64 = raw.pttl(record).await?;
        ensure!(ttl > 0 && ttl <= 5_000, "{record}: refreshed to {ttl} ms");
    }
    // Each beside what its script writes: the creator's slot, the conversation's.
    let tag = |k: &str| {
        k.split_once('{')
            .and_then(|(_, rest)| rest.split_once('}'))
            .map(|(tag, _)| tag.to_owned())
    };
    ensure!(tag(&records[0]) == tag(&format!("{p}:{{u.alice}}:open")));
    ensure!(tag(&records[1]) == tag(&format!("{p}:{{c.{id}}}:meta")));
    Ok(())
}

/// `who`'s kept events, oldest first.
async fn events_of(store: &dyn Store, who: &str) -> anyhow::Result<Vec<ImEvent>> {
    Ok(store
        .events_after(&user(who)?, Some("0"), usize::MAX)
        .await?
        .into_iter()
        .map(|stored| stored.event)
        .collect())
}

#[tokio::test]
async fn a_repeat_finishes_a_creation_interrupted_after_the_creators_slot() -> anyhow::Result<()> {
    let fixture = RedisFixture::start("idem-finish-create")?;
    let store = &fixture.store;
    let k = key("create-once")?;
    let asked = conversation(&["alice", "bob"], now() - chrono::TimeDelta::seconds(5))?;
    let CreateOutcome::Created(first) = store.create_conversation_keyed(&asked, Some(&k)).await?
    else {
        bail!("not created");
    };
    let id = first.conversation.id;
    // As if the first request had stopped after taking alice's slot (a 503: the replicas did
    // not acknowledge in time): no conversation, nothing in bob's index, nobody told.
    let p = &fixture.prefix;
    let mut raw = fixture.raw().await?;
    let _: usize = raw
        .del(&[
            format!("{p}:{{c.{id}}}:meta"),
            format!("{p}:{{u.bob}}:convs"),
            format!("{p}:{{u.alice}}:events"),
            format!("{p}:{{u.alice}}:event_marks"),
            format!("{p}:{{u.bob}}:events"),
            format!("{p}:{{u.bob}}:event_marks"),
        ])
        .await?;
    ensure!(store.conversation(id).await?.is_none());
    let retried = conversation(&["alice", "bob"], now())?;
    let again = store.create_conversation_keyed(&retried, Some(&k)).await?;
    ensure!(again == CreateOutcome::Created(first.clone()), "{again:?}");
    let stored = store
        .conversation(id)
        .await?
        .context("created by the repeat")?;
    ensure!(stored.conversation == asked, "as first asked: {stored:?}");
    ensure!(store.conversation(retried.id).await?.is_none());
    for who in ["alice", "bob"] {
        ensure!(listed(store, who).await? == [id], "{who} lists it");
        let heard = events_of(store, who).await?;
        let opened = heard
            .iter()
            .filter(|e| matches!(e, ImEvent::Conversation(c) if c.id == id))
            .count();
        ensure!(opened == 1, "{who} heard of it {opened} times");
    }
    // A third request finds it whole: nothing more happens.
    let third = store.create_conversation_keyed(&retried, Some(&k)).await?;
    ensure!(third == CreateOutcome::Created(first));
    ensure!(events_of(store, "bob").await?.len() == 1);
    Ok(())
}

#[tokio::test]
async fn a_repeat_finishes_a_post_interrupted_after_the_append() -> anyhow::Result<()> {
    let fixture = RedisFixture::start("idem-finish-post")?;
    let store = &fixture.store;
    let id = open(store, &["alice", "bob"], now()).await?.conversation.id;
    appended(steps::say(store, id, "alice", "hi bob", now()).await?)?;
    let k = key("post-once")?;
    let first = appended(say_keyed(store, id, "bob", "hi alice", &k).await?)?;
    // As if the request had stopped right after the append: neither the contacts it made nor
    // the events about it were written.
    let p = &fixture.prefix;
    let mut raw = fixture.raw().await?;
    let _: usize = raw
        .del(&[
            format!("{p}:{{u.alice}}:contacts"),
            format!("{p}:{{u.bob}}:contacts"),
            format!("{p}:{{u.alice}}:events"),
            format!("{p}:{{u.alice}}:event_marks"),
        ])
        .await?;
    ensure!(!sees_presence(store, "alice", "bob").await?);
    let again = appended(say_keyed(store, id, "bob", "hi alice", &k).await?)?;
    ensure!(again == first);
    ensure!(
        store.messages(id, 0, 10).await?.len() == 2,
        "nothing appended"
    );
    ensure!(
        sees_presence(store, "alice", "bob").await?,
        "contacts restored"
    );
    ensure!(sees_presence(store, "bob", "alice").await?);
    let told = events_of(store, "alice").await?;
    ensure!(
        told == [ImEvent::Message(first)],
        "alice hears of it, once: {told:?}"
    );
    Ok(())
}
