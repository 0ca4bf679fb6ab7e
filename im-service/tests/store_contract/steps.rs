//! What the tests do through the `Store` trait: open conversations, post, talk, report game activity, and read partners, listings, presence and the presence feed.

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Utc};
use im_service::{
    domain::{ConversationRecord, PartnersRequest, StatusFilter, feed::Cursor},
    store::{AppendOutcome, CreateOutcome, Store},
};
use shared_types::{
    activity::{ActivityReport, PresenceChange},
    im::Message,
    presence::PresenceStatus,
};
use uuid::Uuid;

use crate::helpers::{conversation, minutes, now, user};

/// The message an append stored; anything else is an error.
pub fn appended(outcome: AppendOutcome) -> anyhow::Result<Message> {
    match outcome {
        AppendOutcome::Appended(message) => Ok(message),
        other => bail!("expected an appended message, got {other:?}"),
    }
}

/// Opens a conversation between `people` (the first opens it) at `at`.
pub async fn open(
    store: &dyn Store,
    people: &[&str],
    at: DateTime<Utc>,
) -> anyhow::Result<ConversationRecord> {
    match store
        .create_conversation(&conversation(people, at)?)
        .await?
    {
        CreateOutcome::Created(record) => Ok(record),
        CreateOutcome::Limit => bail!("{people:?}: refused at the conversation limit"),
        CreateOutcome::KeyReused => bail!("{people:?}: refused, a key reused"),
    }
}

/// `who` posts `text` in the conversation (as stored now) at `at`.
pub async fn say(
    store: &dyn Store,
    id: Uuid,
    who: &str,
    text: &str,
    at: DateTime<Utc>,
) -> anyhow::Result<AppendOutcome> {
    let record = store.conversation(id).await?.context("the conversation")?;
    Ok(store.append_message(&record, &user(who)?, text, at).await?)
}

/// Each of `people` posts once, in order, one millisecond apart from `at` on.
pub async fn talk(
    store: &dyn Store,
    id: Uuid,
    people: &[&str],
    at: DateTime<Utc>,
) -> anyhow::Result<DateTime<Utc>> {
    let mut last = at;
    for (i, who) in people.iter().enumerate() {
        last = at + chrono::TimeDelta::milliseconds(i64::try_from(i)?);
        appended(say(store, id, who, &format!("hi from {who}"), last).await?)?;
    }
    Ok(last)
}

/// Opens a conversation between `people` (the first opens it) at `opened`, then each of them
/// posts once, in order, one millisecond apart from `talked` on.
pub async fn open_and_talk(
    store: &dyn Store,
    people: &[&str],
    opened: DateTime<Utc>,
    talked: DateTime<Utc>,
) -> anyhow::Result<ConversationRecord> {
    let record = open(store, people, opened).await?;
    talk(store, record.conversation.id, people, talked).await?;
    Ok(record)
}

/// Each of `people` is available.
pub async fn available(store: &dyn Store, people: &[&str]) -> anyhow::Result<()> {
    for who in people {
        store
            .set_presence(&user(who)?, PresenceStatus::Available)
            .await?;
    }
    Ok(())
}

/// `who`'s partners (default filter) over the last 30 minutes, at most `limit`: names and
/// conversation ids.
pub async fn partners_of(
    store: &dyn Store,
    who: &str,
    limit: usize,
) -> anyhow::Result<Vec<(String, Uuid)>> {
    partners_with(store, who, StatusFilter::default(), limit).await
}

/// As [`partners_of`], with `filter`.
pub async fn partners_with(
    store: &dyn Store,
    who: &str,
    filter: StatusFilter,
    limit: usize,
) -> anyhow::Result<Vec<(String, Uuid)>> {
    let answer = store
        .partners(&PartnersRequest {
            user: user(who)?,
            since: now() - minutes(30),
            filter,
            limit,
        })
        .await?;
    Ok(answer
        .partners
        .into_iter()
        .map(|p| (p.user_id.to_string(), p.conversation_id))
        .collect())
}

/// The names of `who`'s partners (as [`partners_of`], at most 100).
pub async fn names(store: &dyn Store, who: &str) -> anyhow::Result<Vec<String>> {
    Ok(partners_of(store, who, 100)
        .await?
        .into_iter()
        .map(|(name, _)| name)
        .collect())
}

/// Whether `viewer` sees `subject`'s presence.
pub async fn sees_presence(store: &dyn Store, viewer: &str, subject: &str) -> anyhow::Result<bool> {
    Ok(store
        .presence_seen_by(&user(viewer)?, &user(subject)?)
        .await?
        .is_some())
}

/// The ids of the conversations `who` sees, in the order listed.
pub async fn listed(store: &dyn Store, who: &str) -> anyhow::Result<Vec<Uuid>> {
    Ok(store
        .conversations_of(&user(who)?)
        .await?
        .iter()
        .map(|c| c.id)
        .collect())
}

/// A report that `who` began (`playing`) or stopped playing in `session`, numbered `seq`.
pub fn report(who: &str, session: Uuid, playing: bool, seq: u64) -> anyhow::Result<ActivityReport> {
    Ok(ActivityReport {
        user_id: user(who)?,
        session_id: session,
        mode: "default".into(),
        playing,
        seq,
        at: now() - minutes(1) + chrono::TimeDelta::milliseconds(i64::try_from(seq)?),
    })
}

/// Every change the presence feed holds, read from the start `page` changes at a time (each
/// page at most that long, the cursor moving on until nothing is new), and the last cursor.
pub async fn feed(store: &dyn Store, page: usize) -> anyhow::Result<(Vec<PresenceChange>, Cursor)> {
    let mut cursor = Cursor::start(store.feed_shards());
    let mut all = Vec::new();
    loop {
        let (changes, next) = store.presence_changes(&cursor, page).await?;
        ensure!(
            changes.len() <= page,
            "a page of {} for {page}",
            changes.len()
        );
        if changes.is_empty() {
            ensure!(next == cursor, "nothing new: the same cursor");
            return Ok((all, cursor));
        }
        ensure!(next != cursor, "the cursor moves with what it returns");
        all.extend(changes);
        cursor = next;
    }
}

/// `who`'s changes in the feed, in the order read.
pub async fn fed(store: &dyn Store, who: &str) -> anyhow::Result<Vec<(PresenceStatus, u64)>> {
    Ok(feed(store, 1000)
        .await?
        .0
        .into_iter()
        .filter(|change| change.user_id.as_str() == who)
        .map(|change| (change.status, change.seq))
        .collect())
}
