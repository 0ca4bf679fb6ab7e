//! The behaviour every store must have. Each function is run against both backends by `main.rs`.

use anyhow::{Context, ensure};
use im_service::store::{AppendOutcome, Store};
use shared_types::{im::Message, presence::PresenceStatus};
use uuid::Uuid;

use crate::helpers::{conversation, minutes, now, user};

fn appended(outcome: AppendOutcome) -> anyhow::Result<Message> {
    match outcome {
        AppendOutcome::Appended(message) => Ok(message),
        other => anyhow::bail!("expected an appended message, got {other:?}"),
    }
}

pub async fn presence_is_offline_until_set_then_what_was_set(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let alice = user("alice")?;
    assert_eq!(store.presence(&alice).await?, PresenceStatus::Offline);
    store.set_presence(&alice, PresenceStatus::Busy).await?;
    assert_eq!(store.presence(&alice).await?, PresenceStatus::Busy);
    store
        .set_presence(&alice, PresenceStatus::Available)
        .await?;
    assert_eq!(store.presence(&alice).await?, PresenceStatus::Available);
    Ok(())
}

pub async fn presences_answer_for_every_user_asked(store: &dyn Store) -> anyhow::Result<()> {
    let (alice, bob, carol) = (user("alice")?, user("bob")?, user("carol")?);
    store.set_presence(&alice, PresenceStatus::Away).await?;
    store.set_presence(&bob, PresenceStatus::Available).await?;
    let found = store
        .presences(&[alice.clone(), bob.clone(), carol.clone()])
        .await?;
    assert_eq!(found.len(), 3);
    assert_eq!(found[&alice], PresenceStatus::Away);
    assert_eq!(found[&bob], PresenceStatus::Available);
    assert_eq!(found[&carol], PresenceStatus::Offline);
    assert!(store.presences(&[]).await?.is_empty());
    Ok(())
}

pub async fn a_created_conversation_reads_back_as_written(store: &dyn Store) -> anyhow::Result<()> {
    let created = conversation(&["alice", "bob", "carol"], now())?;
    store.create_conversation(&created).await?;
    assert_eq!(store.conversation(created.id).await?, Some(created));
    assert_eq!(store.conversation(Uuid::new_v4()).await?, None);
    Ok(())
}

pub async fn conversations_of_a_user_are_theirs_open_or_closed_newest_first(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let t0 = now() - minutes(30);
    let older = conversation(&["alice", "bob"], t0)?;
    let newer = conversation(&["carol", "alice"], t0 + minutes(5))?;
    let closed = conversation(&["alice", "dave"], t0 + minutes(1))?;
    let not_hers = conversation(&["bob", "carol"], t0 + minutes(10))?;
    for c in [&older, &newer, &closed, &not_hers] {
        store.create_conversation(c).await?;
    }
    store.close_conversation(closed.id).await?;
    // A message makes the oldest conversation the newest.
    store
        .append_message(&older, &user("bob")?, "hi", t0 + minutes(20))
        .await?;
    let ids: Vec<Uuid> = store
        .conversations_of(&user("alice")?)
        .await?
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, [older.id, newer.id, closed.id]);
    assert!(store.conversations_of(&user("nobody")?).await?.is_empty());
    Ok(())
}

pub async fn appending_numbers_messages_and_moves_last_activity(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let t0 = now() - minutes(10);
    let created = conversation(&["alice", "bob"], t0)?;
    store.create_conversation(&created).await?;
    let first = appended(
        store
            .append_message(&created, &user("alice")?, "hello", t0 + minutes(1))
            .await?,
    )?;
    let second = appended(
        store
            .append_message(&created, &user("bob")?, "héllo 👋", t0 + minutes(2))
            .await?,
    )?;
    assert_eq!((first.seq, second.seq), (1, 2));
    assert_eq!(second.conversation_id, created.id);
    assert_eq!(second.sender, user("bob")?);
    assert_eq!(second.text, "héllo 👋");
    assert_eq!(second.sent_at, t0 + minutes(2));
    let stored = store
        .conversation(created.id)
        .await?
        .context("conversation")?;
    assert_eq!(stored.last_activity_at, t0 + minutes(2));
    assert_eq!(stored.created_at, t0);
    Ok(())
}

pub async fn last_activity_never_moves_backwards(store: &dyn Store) -> anyhow::Result<()> {
    let t0 = now() - minutes(10);
    let created = conversation(&["alice", "bob"], t0)?;
    store.create_conversation(&created).await?;
    store
        .append_message(&created, &user("alice")?, "late", t0 + minutes(5))
        .await?;
    // A replica with a slightly slow clock.
    store
        .append_message(&created, &user("bob")?, "early", t0 + minutes(4))
        .await?;
    let stored = store
        .conversation(created.id)
        .await?
        .context("conversation")?;
    assert_eq!(stored.last_activity_at, t0 + minutes(5));
    Ok(())
}

pub async fn a_closed_conversation_takes_no_messages(store: &dyn Store) -> anyhow::Result<()> {
    let t0 = now() - minutes(10);
    let created = conversation(&["alice", "bob"], t0)?;
    store.create_conversation(&created).await?;
    store
        .append_message(&created, &user("alice")?, "bye", t0 + minutes(1))
        .await?;
    store.close_conversation(created.id).await?;
    let outcome = store
        .append_message(&created, &user("bob")?, "wait", t0 + minutes(2))
        .await?;
    assert_eq!(outcome, AppendOutcome::Closed);
    assert_eq!(store.messages(created.id, 0, 50).await?.len(), 1);
    let stored = store
        .conversation(created.id)
        .await?
        .context("conversation")?;
    assert_eq!(stored.last_activity_at, t0 + minutes(1));
    Ok(())
}

pub async fn appending_to_a_missing_conversation_reports_it_missing(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let never_stored = conversation(&["alice", "bob"], now())?;
    let outcome = store
        .append_message(&never_stored, &user("alice")?, "anyone?", now())
        .await?;
    assert_eq!(outcome, AppendOutcome::Missing);
    assert_eq!(store.conversation(never_stored.id).await?, None);
    assert!(store.messages(never_stored.id, 0, 50).await?.is_empty());
    Ok(())
}

pub async fn messages_page_oldest_first_after_a_seq(store: &dyn Store) -> anyhow::Result<()> {
    let t0 = now() - minutes(60);
    let created = conversation(&["alice", "bob"], t0)?;
    store.create_conversation(&created).await?;
    for i in 1..=7 {
        store
            .append_message(&created, &user("alice")?, &format!("m{i}"), t0 + minutes(i))
            .await?;
    }
    let texts = |page: Vec<Message>| {
        page.into_iter()
            .map(|m| (m.seq, m.text))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        texts(store.messages(created.id, 0, 3).await?),
        [(1, "m1".into()), (2, "m2".into()), (3, "m3".into())]
    );
    assert_eq!(
        texts(store.messages(created.id, 5, 50).await?),
        [(6, "m6".into()), (7, "m7".into())]
    );
    assert!(store.messages(created.id, 7, 50).await?.is_empty());
    assert!(store.messages(created.id, u64::MAX, 50).await?.is_empty());
    let page = store.messages(created.id, 2, 1).await?;
    ensure!(page.len() == 1 && page[0].seq == 3 && page[0].sent_at == t0 + minutes(3));
    Ok(())
}

pub async fn closing_is_idempotent_and_keeps_the_conversation(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let created = conversation(&["alice", "bob"], now())?;
    store.create_conversation(&created).await?;
    let closed = store
        .close_conversation(created.id)
        .await?
        .context("closed")?;
    assert!(closed.closed);
    assert_eq!(closed.participants, created.participants);
    assert_eq!(closed.last_activity_at, created.last_activity_at);
    assert_eq!(
        store.close_conversation(created.id).await?,
        Some(closed.clone())
    );
    assert_eq!(store.conversation(created.id).await?, Some(closed));
    assert_eq!(store.close_conversation(Uuid::new_v4()).await?, None);
    Ok(())
}

pub async fn open_conversations_since_leave_out_closed_stale_and_foreign_ones(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let now = now();
    let since = now - minutes(30);
    let fresh = conversation(&["alice", "bob"], now - minutes(5))?;
    let revived = conversation(&["alice", "carol"], now - minutes(90))?;
    let stale = conversation(&["alice", "dave"], now - minutes(31))?;
    let closed = conversation(&["alice", "erin"], now - minutes(1))?;
    let foreign = conversation(&["bob", "carol"], now - minutes(1))?;
    let on_the_edge = conversation(&["alice", "frank"], since)?;
    for c in [&fresh, &revived, &stale, &closed, &foreign, &on_the_edge] {
        store.create_conversation(c).await?;
    }
    store.close_conversation(closed.id).await?;
    store
        .append_message(&revived, &user("carol")?, "back", now - minutes(2))
        .await?;
    let ids: Vec<Uuid> = store
        .open_conversations_since(&user("alice")?, since)
        .await?
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, [revived.id, fresh.id, on_the_edge.id]);
    Ok(())
}

pub async fn sharing_a_conversation_open_or_closed_makes_users_contacts(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let (alice, bob, carol, dave) = (user("alice")?, user("bob")?, user("carol")?, user("dave")?);
    let open = conversation(&["alice", "bob"], now())?;
    let closed = conversation(&["carol", "alice"], now())?;
    store.create_conversation(&open).await?;
    store.create_conversation(&closed).await?;
    store.close_conversation(closed.id).await?;
    assert!(store.share_conversation(&alice, &bob).await?);
    assert!(store.share_conversation(&bob, &alice).await?);
    assert!(store.share_conversation(&alice, &carol).await?);
    assert!(store.share_conversation(&carol, &alice).await?);
    assert!(!store.share_conversation(&bob, &carol).await?);
    assert!(!store.share_conversation(&alice, &dave).await?);
    Ok(())
}

pub async fn ping_answers(store: &dyn Store) -> anyhow::Result<()> {
    store.ping().await?;
    Ok(())
}
