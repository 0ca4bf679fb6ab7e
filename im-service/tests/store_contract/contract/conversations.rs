//! Conversations and their messages: created, listed, appended to, paged, trimmed and closed.

use anyhow::{Context, bail, ensure};
use im_service::{
    domain::ConversationRecord,
    store::{AppendOutcome, CreateOutcome, Store},
};
use shared_types::im::Message;
use uuid::Uuid;

use crate::{
    helpers::{LIMITS, conversation, minutes, now, user},
    steps::{appended, listed, open, say},
};

pub async fn a_created_conversation_reads_back_as_written(store: &dyn Store) -> anyhow::Result<()> {
    let created = conversation(&["alice", "bob", "carol"], now())?;
    let CreateOutcome::Created(record) = store.create_conversation(&created).await? else {
        bail!("refused");
    };
    assert_eq!(record.conversation, created);
    assert_eq!(record.conversation.last_activity_at, None, "not activity");
    assert!(record.posters.is_empty() && record.hidden_from.is_empty());
    assert_eq!(store.conversation(created.id).await?, Some(record));
    assert_eq!(store.conversation(Uuid::new_v4()).await?, None);
    Ok(())
}

pub async fn conversations_of_a_user_are_theirs_open_or_closed_newest_first(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let t0 = now() - minutes(30);
    let older = open(store, &["alice", "bob"], t0).await?;
    let newer = open(store, &["carol", "alice"], t0 + minutes(5)).await?;
    let closed = open(store, &["alice", "dave"], t0 + minutes(1)).await?;
    let not_hers = open(store, &["bob", "carol"], t0 + minutes(10)).await?;
    store.close_conversation(closed.conversation.id).await?;
    // A message makes the oldest conversation the newest; without one, creation orders.
    say(store, older.conversation.id, "bob", "hi", t0 + minutes(20)).await?;
    assert_eq!(
        listed(store, "alice").await?,
        [
            older.conversation.id,
            newer.conversation.id,
            closed.conversation.id
        ]
    );
    assert_eq!(
        listed(store, "bob").await?,
        [older.conversation.id, not_hers.conversation.id]
    );
    assert!(listed(store, "nobody").await?.is_empty());
    Ok(())
}

pub async fn appending_numbers_messages_records_posters_and_moves_last_activity(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let t0 = now() - minutes(10);
    let created = open(store, &["alice", "bob"], t0).await?;
    let id = created.conversation.id;
    let first = appended(say(store, id, "alice", "hello", t0 + minutes(1)).await?)?;
    let second = appended(say(store, id, "bob", "héllo 👋", t0 + minutes(2)).await?)?;
    let third = appended(say(store, id, "alice", "again", t0 + minutes(3)).await?)?;
    assert_eq!((first.seq, second.seq, third.seq), (1, 2, 3));
    assert_eq!(second.conversation_id, id);
    assert_eq!(second.sender, user("bob")?);
    assert_eq!(second.text, "héllo 👋");
    assert_eq!(second.sent_at, t0 + minutes(2));
    let stored = store.conversation(id).await?.context("conversation")?;
    assert_eq!(stored.conversation.last_activity_at, Some(t0 + minutes(3)));
    assert_eq!(stored.conversation.created_at, t0);
    assert_eq!(stored.posters, [user("alice")?, user("bob")?]);
    Ok(())
}

pub async fn last_activity_never_moves_backwards(store: &dyn Store) -> anyhow::Result<()> {
    let t0 = now() - minutes(10);
    let created = open(store, &["alice", "bob"], t0).await?;
    let id = created.conversation.id;
    say(store, id, "alice", "late", t0 + minutes(5)).await?;
    // A replica with a slightly slow clock.
    say(store, id, "bob", "early", t0 + minutes(4)).await?;
    let stored = store.conversation(id).await?.context("conversation")?;
    assert_eq!(stored.conversation.last_activity_at, Some(t0 + minutes(5)));
    Ok(())
}

pub async fn a_closed_conversation_takes_no_messages(store: &dyn Store) -> anyhow::Result<()> {
    let t0 = now() - minutes(10);
    let created = open(store, &["alice", "bob"], t0).await?;
    let id = created.conversation.id;
    say(store, id, "alice", "bye", t0 + minutes(1)).await?;
    store.close_conversation(id).await?;
    assert_eq!(
        say(store, id, "bob", "wait", t0 + minutes(2)).await?,
        AppendOutcome::Closed
    );
    assert_eq!(store.messages(id, 0, 50).await?.len(), 1);
    let stored = store.conversation(id).await?.context("conversation")?;
    assert_eq!(stored.conversation.last_activity_at, Some(t0 + minutes(1)));
    assert_eq!(stored.posters, [user("alice")?], "bob's refused message");
    Ok(())
}

pub async fn appending_to_a_missing_conversation_reports_it_missing(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let never_stored = ConversationRecord::new(conversation(&["alice", "bob"], now())?);
    let outcome = store
        .append_message(&never_stored, &user("alice")?, "anyone?", now())
        .await?;
    assert_eq!(outcome, AppendOutcome::Missing);
    let id = never_stored.conversation.id;
    assert_eq!(store.conversation(id).await?, None);
    assert!(store.messages(id, 0, 50).await?.is_empty());
    Ok(())
}

pub async fn messages_page_oldest_first_after_a_seq(store: &dyn Store) -> anyhow::Result<()> {
    let t0 = now() - minutes(60);
    let created = open(store, &["alice", "bob"], t0).await?;
    let id = created.conversation.id;
    for i in 1..=7 {
        say(store, id, "alice", &format!("m{i}"), t0 + minutes(i)).await?;
    }
    let texts = |page: Vec<Message>| {
        page.into_iter()
            .map(|m| (m.seq, m.text))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        texts(store.messages(id, 0, 3).await?),
        [(1, "m1".into()), (2, "m2".into()), (3, "m3".into())]
    );
    assert_eq!(
        texts(store.messages(id, 5, 50).await?),
        [(6, "m6".into()), (7, "m7".into())]
    );
    assert!(store.messages(id, 7, 50).await?.is_empty());
    assert!(store.messages(id, u64::MAX, 50).await?.is_empty());
    let page = store.messages(id, 2, 1).await?;
    ensure!(page.len() == 1 && page[0].seq == 3 && page[0].sent_at == t0 + minutes(3));
    Ok(())
}

pub async fn messages_beyond_the_kept_count_are_dropped_oldest_first(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let kept = LIMITS.messages_kept;
    let t0 = now() - minutes(60);
    let created = open(store, &["alice", "bob"], t0).await?;
    let id = created.conversation.id;
    let total = kept + 3;
    for i in 1..=total {
        let message = appended(
            say(
                store,
                id,
                "alice",
                &format!("m{i}"),
                t0 + minutes(i64::try_from(i)?),
            )
            .await?,
        )?;
        assert_eq!(message.seq, u64::try_from(i)?, "seq keeps counting");
    }
    let all = store.messages(id, 0, 200).await?;
    let seqs: Vec<u64> = all.iter().map(|m| m.seq).collect();
    let first_kept = u64::try_from(total - kept + 1)?;
    assert_eq!(
        seqs,
        (first_kept..=u64::try_from(total)?).collect::<Vec<_>>()
    );
    assert_eq!(all[0].text, format!("m{first_kept}"));
    // Paging still works from any seq, trimmed or not.
    assert_eq!(store.messages(id, 1, 2).await?[0].seq, first_kept);
    assert_eq!(
        store
            .messages(id, first_kept + 1, 2)
            .await?
            .iter()
            .map(|m| m.seq)
            .collect::<Vec<_>>(),
        [first_kept + 2, first_kept + 3]
    );
    Ok(())
}

pub async fn closing_is_idempotent_and_keeps_the_conversation(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let created = open(store, &["alice", "bob"], now()).await?;
    let id = created.conversation.id;
    let closed = store.close_conversation(id).await?.context("closed")?;
    assert!(closed.closed);
    assert_eq!(closed.participants, created.conversation.participants);
    assert_eq!(closed.last_activity_at, None);
    assert_eq!(store.close_conversation(id).await?, Some(closed.clone()));
    assert_eq!(
        store.conversation(id).await?.map(|r| r.conversation),
        Some(closed)
    );
    assert_eq!(store.close_conversation(Uuid::new_v4()).await?, None);
    Ok(())
}
