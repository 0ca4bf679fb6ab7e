//! Idempotency keys on conversation creation: one conversation per (creator, key), the same answer to every repeat, another request under the same key refused, each caller's keys their own.

use anyhow::{bail, ensure};
use chrono::{DateTime, TimeDelta, Utc};
use futures_util::future::join_all;
use im_service::{
    domain::{ConversationRecord, IdempotencyKey},
    store::{CreateOutcome, Store},
};
use shared_types::im::{Conversation, ImEvent};

use super::events::events_of;
use crate::{
    helpers::{LIMITS, SHORT_RETENTION, conversation, now},
    steps::{appended, listed, open, say},
};

pub(super) fn key(raw: &str) -> anyhow::Result<IdempotencyKey> {
    Ok(IdempotencyKey::parse(raw.as_bytes())?)
}

/// `people` (the first opens it) at `at`, a new conversation each call, with `key`.
async fn create(
    store: &dyn Store,
    people: &[&str],
    at: DateTime<Utc>,
    key: &IdempotencyKey,
) -> anyhow::Result<(Conversation, CreateOutcome)> {
    let asked = conversation(people, at)?;
    let outcome = store.create_conversation_keyed(&asked, Some(key)).await?;
    Ok((asked, outcome))
}

fn created(outcome: CreateOutcome) -> anyhow::Result<ConversationRecord> {
    match outcome {
        CreateOutcome::Created(record) => Ok(record),
        other => bail!("expected a conversation, got {other:?}"),
    }
}

/// How many `conversation` events about `id` `who` heard.
async fn heard_of(store: &dyn Store, who: &str, id: uuid::Uuid) -> anyhow::Result<usize> {
    Ok(events_of(store, who)
        .await?
        .iter()
        .filter(|event| matches!(event, ImEvent::Conversation(c) if c.id == id))
        .count())
}

pub async fn a_repeated_creation_key_opens_one_conversation_and_answers_it_as_opened(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let k = key("8e03978e-40d5-43e8-bc93-6894a57f9324")?;
    let t = now();
    let (asked, outcome) = create(store, &["alice", "bob"], t, &k).await?;
    let first = created(outcome)?;
    ensure!(
        first.conversation == asked,
        "the first request opens what it asked"
    );
    // The retry after a lost answer: a new id and a later time, the same participants.
    let (retried, outcome) =
        create(store, &["alice", "bob"], t + TimeDelta::seconds(3), &k).await?;
    let again = created(outcome)?;
    ensure!(
        again.conversation == first.conversation,
        "the same conversation: {again:?} vs {first:?}"
    );
    ensure!(
        store.conversation(retried.id).await?.is_none(),
        "nothing new stored"
    );
    let id = first.conversation.id;
    for who in ["alice", "bob"] {
        ensure!(
            listed(store, who).await? == [id],
            "{who} sees one conversation"
        );
        let heard = heard_of(store, who, id).await?;
        ensure!(heard == 1, "{who} heard of it {heard} times");
    }
    // It took one of alice's slots, not two: as many more as the limit leaves.
    for i in 1..LIMITS.max_open_conversations {
        open(store, &["alice", &format!("friend{i}")], t).await?;
    }
    let (_, refused) = create(store, &["alice", "zed"], t, &key("another")?).await?;
    ensure!(refused == CreateOutcome::Limit, "at the limit: {refused:?}");
    // Talked in and closed since, the repeat still answers it as it was opened, and changes
    // nothing (not even at the limit).
    appended(say(store, id, "alice", "hi", t).await?)?;
    store.close_conversation(id).await?;
    let stored = store.conversation(id).await?;
    let (_, outcome) = create(store, &["alice", "bob"], t + TimeDelta::minutes(1), &k).await?;
    ensure!(created(outcome)?.conversation == first.conversation);
    ensure!(
        store.conversation(id).await? == stored,
        "the repeat changed nothing"
    );
    ensure!(
        heard_of(store, "bob", id).await? == 2,
        "opened and closed, heard once each"
    );
    Ok(())
}

pub async fn a_creation_key_reused_for_other_participants_is_refused_and_changes_nothing(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let k = key("k-1")?;
    let first = created(create(store, &["alice", "bob"], now(), &k).await?.1)?;
    for people in [
        &["alice", "carol"][..],
        &["alice", "bob", "carol"],
        &["alice", "carol", "bob"],
    ] {
        let (asked, outcome) = create(store, people, now(), &k).await?;
        ensure!(
            outcome == CreateOutcome::KeyReused,
            "{people:?}: {outcome:?}"
        );
        ensure!(
            store.conversation(asked.id).await?.is_none(),
            "{people:?}: nothing stored"
        );
    }
    ensure!(listed(store, "alice").await? == [first.conversation.id]);
    ensure!(
        listed(store, "carol").await?.is_empty(),
        "carol never hears of it"
    );
    ensure!(events_of(store, "carol").await?.is_empty());
    // The key still answers its own request, and other keys (or none) open as usual.
    let again = created(create(store, &["alice", "bob"], now(), &k).await?.1)?;
    ensure!(again.conversation == first.conversation);
    created(
        create(store, &["alice", "carol"], now(), &key("k-2")?)
            .await?
            .1,
    )?;
    open(store, &["alice", "carol"], now()).await?;
    ensure!(listed(store, "carol").await?.len() == 2);
    Ok(())
}

pub async fn creation_keys_are_each_callers_own(store: &dyn Store) -> anyhow::Result<()> {
    let k = key("same-key")?;
    let alices = created(create(store, &["alice", "bob"], now(), &k).await?.1)?;
    // bob's identical key, even for the same people: his own conversation.
    let bobs = created(create(store, &["bob", "alice"], now(), &k).await?.1)?;
    ensure!(bobs.conversation.id != alices.conversation.id);
    let carols = created(create(store, &["carol", "dave"], now(), &k).await?.1)?;
    ensure!(carols.conversation.id != alices.conversation.id);
    let mut listed_alice = listed(store, "alice").await?;
    listed_alice.sort();
    let mut expected = vec![alices.conversation.id, bobs.conversation.id];
    expected.sort();
    ensure!(listed_alice == expected, "two conversations for alice");
    // And each key still answers its own caller's.
    ensure!(created(create(store, &["bob", "alice"], now(), &k).await?.1)? == bobs);
    Ok(())
}

pub async fn racing_creations_with_one_key_open_one_conversation(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let k = key("race")?;
    let asked: Vec<Conversation> = (0..8)
        .map(|_| conversation(&["alice", "bob", "carol"], now()))
        .collect::<anyhow::Result<_>>()?;
    let outcomes = join_all(
        asked
            .iter()
            .map(|conversation| store.create_conversation_keyed(conversation, Some(&k))),
    )
    .await;
    let mut answers = Vec::new();
    for outcome in outcomes {
        answers.push(created(outcome?)?.conversation);
    }
    let first = &answers[0];
    ensure!(
        answers.iter().all(|a| a == first),
        "one answer for all: {answers:?}"
    );
    let mut stored = 0;
    for conversation in &asked {
        stored += usize::from(store.conversation(conversation.id).await?.is_some());
    }
    ensure!(stored == 1, "{stored} conversations stored");
    for who in ["alice", "bob", "carol"] {
        ensure!(listed(store, who).await? == [first.id], "{who}");
        ensure!(
            heard_of(store, who, first.id).await? == 1,
            "{who} heard once"
        );
    }
    Ok(())
}

/// On a store whose retention is [`SHORT_RETENTION`] (shorter than a day, so the window).
pub async fn a_creation_key_is_forgotten_after_its_window(store: &dyn Store) -> anyhow::Result<()> {
    let k = key("short-lived")?;
    let first = created(create(store, &["alice", "bob"], now(), &k).await?.1)?;
    tokio::time::sleep(SHORT_RETENTION + std::time::Duration::from_millis(300)).await;
    let later = created(create(store, &["alice", "bob"], now(), &k).await?.1)?;
    ensure!(
        later.conversation.id != first.conversation.id,
        "past the window the key is new again"
    );
    Ok(())
}
