//! The behaviour every store must have. Each function is run against every backend by `main.rs`
//! and `cluster.rs`.

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Utc};
use im_service::{
    domain::{ConversationRecord, PartnersRequest, StatusFilter},
    store::{AppendOutcome, BlockOutcome, CreateOutcome, Store},
};
use shared_types::{im::Message, presence::PresenceStatus};
use uuid::Uuid;

use crate::helpers::{LIMITS, conversation, minutes, now, user};

fn appended(outcome: AppendOutcome) -> anyhow::Result<Message> {
    match outcome {
        AppendOutcome::Appended(message) => Ok(message),
        other => bail!("expected an appended message, got {other:?}"),
    }
}

/// Opens a conversation between `people` (the first opens it) at `at`.
async fn open(
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
    }
}

/// `who` posts `text` in the conversation (as stored now) at `at`.
async fn say(
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
async fn talk(
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

async fn available(store: &dyn Store, people: &[&str]) -> anyhow::Result<()> {
    for who in people {
        store
            .set_presence(&user(who)?, PresenceStatus::Available)
            .await?;
    }
    Ok(())
}

/// `who`'s partners (default filter) over the last 30 minutes, at most `limit`: names and
/// conversation ids.
async fn partners_of(
    store: &dyn Store,
    who: &str,
    limit: usize,
) -> anyhow::Result<Vec<(String, Uuid)>> {
    partners_with(store, who, StatusFilter::default(), limit).await
}

async fn partners_with(
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

async fn names(store: &dyn Store, who: &str) -> anyhow::Result<Vec<String>> {
    Ok(partners_of(store, who, 100)
        .await?
        .into_iter()
        .map(|(name, _)| name)
        .collect())
}

async fn sees_presence(store: &dyn Store, viewer: &str, subject: &str) -> anyhow::Result<bool> {
    Ok(store
        .presence_seen_by(&user(viewer)?, &user(subject)?)
        .await?
        .is_some())
}

async fn listed(store: &dyn Store, who: &str) -> anyhow::Result<Vec<Uuid>> {
    Ok(store
        .conversations_of(&user(who)?)
        .await?
        .iter()
        .map(|c| c.id)
        .collect())
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

pub async fn candidate_facts_answer_for_every_candidate_asked(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let (alice, bob, carol, dave) = (user("alice")?, user("bob")?, user("carol")?, user("dave")?);
    store.set_presence(&bob, PresenceStatus::Away).await?;
    store
        .set_presence(&carol, PresenceStatus::Available)
        .await?;
    store.block(&carol, &alice, now()).await?;
    store.block(&alice, &dave, now()).await?;
    let facts = store
        .candidate_facts(&alice, &[bob.clone(), carol.clone(), dave.clone()])
        .await?;
    let seen: Vec<(PresenceStatus, bool, bool)> = facts
        .iter()
        .map(|f| (f.status, f.blocks_user, f.blocked_by_user))
        .collect();
    assert_eq!(
        seen,
        [
            (PresenceStatus::Away, false, false),
            (PresenceStatus::Available, true, false),
            (PresenceStatus::Offline, false, true),
        ]
    );
    assert!(store.candidate_facts(&alice, &[]).await?.is_empty());
    Ok(())
}

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

pub async fn one_sided_conversations_make_no_partner_and_reveal_no_presence(
    store: &dyn Store,
) -> anyhow::Result<()> {
    available(store, &["alice", "bob", "carol"]).await?;
    let t = now() - minutes(5);
    // Opened, never answered: bob posted nothing; carol's conversation has no message at all.
    let with_bob = open(store, &["alice", "bob"], t).await?;
    talk(store, with_bob.conversation.id, &["alice"], t).await?;
    open(store, &["carol", "alice"], t).await?;
    for (who, other) in [("alice", "bob"), ("alice", "carol")] {
        assert!(names(store, who).await?.is_empty(), "{who}");
        assert!(names(store, other).await?.is_empty(), "{other}");
        assert!(
            !sees_presence(store, who, other).await?,
            "{who} sees {other}"
        );
        assert!(
            !sees_presence(store, other, who).await?,
            "{other} sees {who}"
        );
    }
    // alice writing more changes nothing: it takes two.
    talk(store, with_bob.conversation.id, &["alice", "alice"], t).await?;
    assert!(names(store, "alice").await?.is_empty());
    assert!(!sees_presence(store, "bob", "alice").await?);
    Ok(())
}

pub async fn once_both_posted_they_are_partners_and_see_each_others_presence(
    store: &dyn Store,
) -> anyhow::Result<()> {
    available(store, &["alice", "bob"]).await?;
    let t = now() - minutes(5);
    let record = open(store, &["alice", "bob"], t).await?;
    let id = record.conversation.id;
    talk(store, id, &["alice"], t).await?;
    assert!(names(store, "alice").await?.is_empty());
    let last = talk(store, id, &["bob"], t + minutes(1)).await?;
    assert_eq!(partners_of(store, "alice", 10).await?, [("bob".into(), id)]);
    assert_eq!(partners_of(store, "bob", 10).await?, [("alice".into(), id)]);
    let answer = store
        .partners(&PartnersRequest {
            user: user("alice")?,
            since: now() - minutes(30),
            filter: StatusFilter::default(),
            limit: 10,
        })
        .await?;
    assert_eq!(answer.status, PresenceStatus::Available);
    assert_eq!(answer.partners[0].last_activity_at, last);
    assert_eq!(answer.partners[0].status, PresenceStatus::Available);
    assert!(sees_presence(store, "alice", "bob").await?);
    assert!(sees_presence(store, "bob", "alice").await?);
    assert_eq!(
        store
            .presence_seen_by(&user("alice")?, &user("bob")?)
            .await?,
        Some(PresenceStatus::Available)
    );
    // Closed: no longer partners, but they still see each other's presence.
    store.close_conversation(id).await?;
    assert!(names(store, "alice").await?.is_empty());
    assert!(sees_presence(store, "alice", "bob").await?);
    Ok(())
}

pub async fn in_a_group_each_pair_counts_once_both_have_posted(
    store: &dyn Store,
) -> anyhow::Result<()> {
    available(store, &["alice", "bob", "carol", "dave"]).await?;
    let t = now() - minutes(5);
    let group = open(store, &["alice", "bob", "carol", "dave"], t).await?;
    let id = group.conversation.id;
    talk(store, id, &["alice", "bob"], t).await?;
    assert_eq!(names(store, "alice").await?, ["bob"]);
    assert_eq!(names(store, "bob").await?, ["alice"]);
    assert!(
        names(store, "carol").await?.is_empty(),
        "carol never posted"
    );
    assert!(!sees_presence(store, "carol", "alice").await?);
    assert!(!sees_presence(store, "alice", "carol").await?);
    talk(store, id, &["carol"], t + minutes(1)).await?;
    assert_eq!(names(store, "alice").await?, ["bob", "carol"]);
    assert_eq!(names(store, "carol").await?, ["alice", "bob"]);
    assert!(sees_presence(store, "carol", "bob").await?);
    assert!(names(store, "dave").await?.is_empty());
    assert!(!sees_presence(store, "dave", "alice").await?);
    Ok(())
}

pub async fn the_window_counts_from_messages_only(store: &dyn Store) -> anyhow::Result<()> {
    available(store, &["alice", "bob", "carol"]).await?;
    let now = now();
    // Two conversations last talked in 40 minutes ago: outside the 30-minute window.
    let stale = open(store, &["alice", "bob"], now - minutes(41)).await?;
    talk(
        store,
        stale.conversation.id,
        &["alice", "bob"],
        now - minutes(40),
    )
    .await?;
    let revived = open(store, &["alice", "carol"], now - minutes(41)).await?;
    talk(
        store,
        revived.conversation.id,
        &["alice", "carol"],
        now - minutes(40),
    )
    .await?;
    // A fresh conversation with bob, nobody posted: opening is not activity.
    open(store, &["bob", "alice"], now - minutes(1)).await?;
    assert!(names(store, "alice").await?.is_empty());
    assert!(names(store, "bob").await?.is_empty());
    // One message, by either side, revives a conversation in which both had posted.
    talk(store, revived.conversation.id, &["carol"], now - minutes(1)).await?;
    assert_eq!(
        partners_of(store, "alice", 10).await?,
        [("carol".into(), revived.conversation.id)]
    );
    Ok(())
}

pub async fn partners_are_the_newest_talks_first_each_once_and_closed_ones_do_not_count(
    store: &dyn Store,
) -> anyhow::Result<()> {
    available(store, &["alice", "bob", "carol", "dave", "erin"]).await?;
    let t = now() - minutes(20);
    let with_bob = open(store, &["alice", "bob"], t).await?;
    talk(store, with_bob.conversation.id, &["alice", "bob"], t).await?;
    let group = open(store, &["carol", "alice", "bob"], t).await?;
    talk(
        store,
        group.conversation.id,
        &["carol", "alice", "bob"],
        t + minutes(5),
    )
    .await?;
    let with_dave = open(store, &["dave", "alice"], t).await?;
    talk(
        store,
        with_dave.conversation.id,
        &["dave", "alice"],
        t + minutes(2),
    )
    .await?;
    let closed = open(store, &["alice", "erin"], t).await?;
    talk(
        store,
        closed.conversation.id,
        &["alice", "erin"],
        t + minutes(9),
    )
    .await?;
    store.close_conversation(closed.conversation.id).await?;
    let foreign = open(store, &["bob", "carol"], t).await?;
    talk(
        store,
        foreign.conversation.id,
        &["bob", "carol"],
        t + minutes(10),
    )
    .await?;
    // The group is the newest: bob and carol through it (bob's direct one is older), then dave.
    assert_eq!(
        partners_of(store, "alice", 10).await?,
        [
            ("bob".into(), group.conversation.id),
            ("carol".into(), group.conversation.id),
            ("dave".into(), with_dave.conversation.id),
        ]
    );
    // The status filter.
    store
        .set_presence(&user("dave")?, PresenceStatus::Busy)
        .await?;
    assert_eq!(names(store, "alice").await?, ["bob", "carol"]);
    let busy = StatusFilter::parse("busy")?;
    assert_eq!(
        partners_with(store, "alice", busy, 10).await?,
        [("dave".into(), with_dave.conversation.id)]
    );
    // An offline user talks to nobody.
    store
        .set_presence(&user("alice")?, PresenceStatus::Offline)
        .await?;
    let everyone = StatusFilter::parse("available,busy,away,offline")?;
    assert!(
        partners_with(store, "alice", everyone, 10)
            .await?
            .is_empty()
    );
    Ok(())
}

pub async fn partners_stop_at_the_limit_newest_first(store: &dyn Store) -> anyhow::Result<()> {
    let people: Vec<String> = (0..13).map(|i| format!("p{i:02}")).collect();
    let mut everyone: Vec<&str> = vec!["alice"];
    everyone.extend(people.iter().map(String::as_str));
    available(store, &everyone).await?;
    let t = now() - minutes(10);
    // One group, every member posts in turn; then a direct conversation with the first two.
    let group = open(store, &everyone, t).await?;
    talk(store, group.conversation.id, &everyone, t).await?;
    let direct = open(store, &["alice", "p00", "p01"], t).await?;
    talk(
        store,
        direct.conversation.id,
        &["p01", "p00", "alice"],
        t + minutes(1),
    )
    .await?;
    let limited = partners_of(store, "alice", 3).await?;
    assert_eq!(
        limited,
        [
            ("p00".into(), direct.conversation.id),
            ("p01".into(), direct.conversation.id),
            ("p02".into(), group.conversation.id),
        ],
        "the newest first, cut at the limit"
    );
    assert_eq!(partners_of(store, "alice", 1).await?.len(), 1);
    assert_eq!(partners_of(store, "alice", 100).await?.len(), 13);
    // Candidates left out (busy, blocking) do not take a place: the next ones fill it, also
    // beyond the first batch looked up.
    for busy in &people[..10] {
        store
            .set_presence(&user(busy)?, PresenceStatus::Busy)
            .await?;
    }
    store.block(&user("p11")?, &user("alice")?, now()).await?;
    assert_eq!(
        partners_of(store, "alice", 2).await?,
        [
            ("p10".into(), group.conversation.id),
            ("p12".into(), group.conversation.id),
        ]
    );
    Ok(())
}

pub async fn talking_in_a_conversation_open_or_closed_lets_both_see_presence_for_good(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let t = now() - minutes(5);
    let open_one = open(store, &["alice", "bob"], t).await?;
    talk(store, open_one.conversation.id, &["bob", "alice"], t).await?;
    let closed = open(store, &["carol", "alice"], t).await?;
    talk(store, closed.conversation.id, &["carol", "alice"], t).await?;
    store.close_conversation(closed.conversation.id).await?;
    for (viewer, subject) in [
        ("alice", "bob"),
        ("bob", "alice"),
        ("alice", "carol"),
        ("carol", "alice"),
    ] {
        assert!(
            sees_presence(store, viewer, subject).await?,
            "{viewer} → {subject}"
        );
    }
    for (viewer, subject) in [("bob", "carol"), ("alice", "dave"), ("dave", "alice")] {
        assert!(
            !sees_presence(store, viewer, subject).await?,
            "{viewer} → {subject}"
        );
    }
    Ok(())
}

pub async fn blocks_are_idempotent_listed_newest_first_and_limited(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let alice = user("alice")?;
    let t0 = now() - minutes(10);
    assert!(store.blocks(&alice).await?.is_empty());
    assert_eq!(
        store.block(&alice, &user("bob")?, t0).await?,
        BlockOutcome::Blocked
    );
    assert_eq!(
        store.block(&alice, &user("bob")?, t0 + minutes(5)).await?,
        BlockOutcome::AlreadyBlocked
    );
    for (i, who) in ["carol", "dave", "erin"].iter().enumerate() {
        let at = t0 + minutes(i64::try_from(i)? + 1);
        assert_eq!(
            store.block(&alice, &user(who)?, at).await?,
            BlockOutcome::Blocked
        );
    }
    let listed = |blocks: Vec<shared_types::im::Block>| {
        blocks
            .into_iter()
            .map(|b| (b.user_id.to_string(), b.blocked_at))
            .collect::<Vec<_>>()
    };
    let before = listed(store.blocks(&alice).await?);
    assert_eq!(
        before,
        [
            ("erin".to_owned(), t0 + minutes(3)),
            ("dave".to_owned(), t0 + minutes(2)),
            ("carol".to_owned(), t0 + minutes(1)),
            ("bob".to_owned(), t0),
        ],
        "newest first; blocking bob again kept his first time"
    );
    // At the limit: refused, nothing changes; blocking someone already blocked still works.
    assert_eq!(LIMITS.max_blocks, 4);
    assert_eq!(
        store.block(&alice, &user("frank")?, now()).await?,
        BlockOutcome::Limit
    );
    assert_eq!(
        store.block(&alice, &user("carol")?, now()).await?,
        BlockOutcome::AlreadyBlocked
    );
    assert_eq!(listed(store.blocks(&alice).await?), before);
    // Unblocking frees a place, and is idempotent.
    store.unblock(&alice, &user("dave")?).await?;
    store.unblock(&alice, &user("dave")?).await?;
    store.unblock(&alice, &user("nobody")?).await?;
    assert_eq!(
        store.block(&alice, &user("frank")?, now()).await?,
        BlockOutcome::Blocked
    );
    let names: Vec<String> = listed(store.blocks(&alice).await?)
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(names, ["frank", "erin", "carol", "bob"]);
    assert!(
        store.blocks(&user("bob")?).await?.is_empty(),
        "bob blocks nobody"
    );
    Ok(())
}

pub async fn a_block_either_way_unmakes_partners_and_hides_presence_until_lifted(
    store: &dyn Store,
) -> anyhow::Result<()> {
    available(store, &["alice", "bob", "carol"]).await?;
    let t = now() - minutes(5);
    let with_bob = open(store, &["alice", "bob"], t).await?;
    talk(store, with_bob.conversation.id, &["alice", "bob"], t).await?;
    let group = open(store, &["carol", "alice", "bob"], t).await?;
    talk(
        store,
        group.conversation.id,
        &["carol", "alice", "bob"],
        t + minutes(1),
    )
    .await?;
    assert_eq!(names(store, "alice").await?, ["bob", "carol"]);

    // bob blocks alice: neither is the other's partner, neither sees the other's presence,
    // through any conversation; carol is unaffected.
    store.block(&user("bob")?, &user("alice")?, now()).await?;
    assert_eq!(names(store, "alice").await?, ["carol"]);
    assert_eq!(names(store, "bob").await?, ["carol"]);
    assert_eq!(names(store, "carol").await?, ["alice", "bob"]);
    assert!(
        !sees_presence(store, "alice", "bob").await?,
        "the blocked user"
    );
    assert!(!sees_presence(store, "bob", "alice").await?, "the blocker");
    assert!(sees_presence(store, "alice", "carol").await?);
    assert!(sees_presence(store, "bob", "carol").await?);
    // New messages change nothing while the block stands.
    talk(store, with_bob.conversation.id, &["alice", "bob"], now()).await?;
    assert_eq!(names(store, "alice").await?, ["carol"]);

    store.unblock(&user("bob")?, &user("alice")?).await?;
    assert_eq!(names(store, "alice").await?, ["bob", "carol"]);
    assert!(sees_presence(store, "alice", "bob").await?);
    assert!(sees_presence(store, "bob", "alice").await?);

    // The other way round: alice blocks bob.
    store.block(&user("alice")?, &user("bob")?, now()).await?;
    assert_eq!(names(store, "alice").await?, ["carol"]);
    assert_eq!(names(store, "bob").await?, ["carol"]);
    assert!(!sees_presence(store, "bob", "alice").await?);
    assert!(!sees_presence(store, "alice", "bob").await?);
    Ok(())
}

pub async fn a_conversation_a_blocked_user_opens_is_hidden_from_the_blocker_only(
    store: &dyn Store,
) -> anyhow::Result<()> {
    available(store, &["alice", "mallory", "carol"]).await?;
    let (alice, mallory) = (user("alice")?, user("mallory")?);
    store.block(&alice, &mallory, now()).await?;
    let t = now() - minutes(5);
    // mallory opens a conversation with alice, and a group with alice and carol: created as
    // usual for mallory, who sees exactly what they asked for.
    let direct = conversation(&["mallory", "alice"], t)?;
    let CreateOutcome::Created(record) = store.create_conversation(&direct).await? else {
        bail!("refused");
    };
    assert_eq!(record.conversation, direct, "nothing tells mallory");
    assert_eq!(record.hidden_from, std::slice::from_ref(&alice));
    let group = open(store, &["mallory", "alice", "carol"], t).await?;
    assert_eq!(group.hidden_from, std::slice::from_ref(&alice));
    assert_eq!(
        listed(store, "mallory").await?.len(),
        2,
        "mallory sees both"
    );
    assert!(
        listed(store, "alice").await?.is_empty(),
        "alice sees neither"
    );
    assert_eq!(listed(store, "carol").await?, [group.conversation.id]);
    let stored = store
        .conversation(direct.id)
        .await?
        .context("the conversation")?;
    assert!(!stored.visible_to(&alice) && stored.visible_to(&mallory));

    // mallory posts; the group talks between mallory and carol; nothing counts for alice.
    talk(store, direct.id, &["mallory"], t).await?;
    talk(store, group.conversation.id, &["mallory", "carol"], t).await?;
    assert!(names(store, "alice").await?.is_empty());
    assert_eq!(names(store, "mallory").await?, ["carol"]);
    assert_eq!(names(store, "carol").await?, ["mallory"]);
    assert!(!sees_presence(store, "mallory", "alice").await?);
    // Neither conversation takes one of alice's open-conversation slots.
    for i in 0..LIMITS.max_open_conversations {
        open(store, &["alice", &format!("friend{i}")], t).await?;
    }

    // Unblocking does not reveal what was opened while blocked.
    store.unblock(&alice, &mallory).await?;
    let stored = store
        .conversation(direct.id)
        .await?
        .context("the conversation")?;
    assert!(!stored.visible_to(&alice));
    assert!(!listed(store, "alice").await?.contains(&direct.id));
    // But a conversation mallory opens now is an ordinary one.
    let later = open(store, &["carol", "mallory"], t).await?;
    assert!(later.hidden_from.is_empty());
    Ok(())
}

pub async fn the_open_conversation_limit_refuses_the_creator_and_changes_nothing(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let max = LIMITS.max_open_conversations;
    let t = now() - minutes(5);
    let mut opened = Vec::new();
    for i in 0..max {
        opened.push(open(store, &["alice", &format!("friend{i}")], t).await?);
    }
    let before = listed(store, "alice").await?;
    let refused = conversation(&["alice", "zed"], t)?;
    assert_eq!(
        store.create_conversation(&refused).await?,
        CreateOutcome::Limit
    );
    assert_eq!(store.conversation(refused.id).await?, None);
    assert_eq!(listed(store, "alice").await?, before);
    assert!(listed(store, "zed").await?.is_empty());
    // Others opening conversations with alice are not refused: they count for their creators.
    let invited = open(store, &["zed", "alice"], t).await?;
    assert!(
        listed(store, "alice")
            .await?
            .contains(&invited.conversation.id)
    );
    // Closing one frees a slot, for its creator as for every other participant.
    store.close_conversation(opened[0].conversation.id).await?;
    open(store, &["alice", "yan"], t).await?;
    assert_eq!(
        store
            .create_conversation(&conversation(&["alice", "xia"], t)?)
            .await?,
        CreateOutcome::Limit
    );
    Ok(())
}

pub async fn answering_a_conversation_counts_it_and_is_refused_at_the_limit(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let max = LIMITS.max_open_conversations;
    let t = now() - minutes(5);
    available(store, &["bob", "carol"]).await?;
    // bob answers max - 1 conversations others opened, and opens one himself.
    let mut answered = Vec::new();
    for i in 0..max - 1 {
        let record = open(store, &[&format!("friend{i}"), "bob"], t).await?;
        talk(store, record.conversation.id, &["bob"], t).await?;
        answered.push(record.conversation.id);
    }
    open(store, &["bob", "dave"], t).await?;
    // Unanswered invitations do not count: bob is invited to more.
    let unanswered = open(store, &["carol", "bob"], t).await?;
    talk(store, unanswered.conversation.id, &["carol"], t).await?;
    // Answering one more is refused and stores nothing.
    let before = store.messages(unanswered.conversation.id, 0, 50).await?;
    assert_eq!(
        say(
            store,
            unanswered.conversation.id,
            "bob",
            "hi",
            t + minutes(1)
        )
        .await?,
        AppendOutcome::Limit
    );
    assert_eq!(
        store.messages(unanswered.conversation.id, 0, 50).await?,
        before
    );
    let stored = store
        .conversation(unanswered.conversation.id)
        .await?
        .context("the conversation")?;
    assert_eq!(stored.posters, [user("carol")?]);
    assert!(names(store, "carol").await?.is_empty());
    assert!(!sees_presence(store, "carol", "bob").await?);
    // bob opening one more is refused too; posting where he already counts is fine.
    assert_eq!(
        store
            .create_conversation(&conversation(&["bob", "erin"], t)?)
            .await?,
        CreateOutcome::Limit
    );
    // Once bob closes one he answered, he may answer carol.
    store.close_conversation(answered[0]).await?;
    appended(
        say(
            store,
            unanswered.conversation.id,
            "bob",
            "hi",
            t + minutes(2),
        )
        .await?,
    )?;
    assert_eq!(names(store, "carol").await?, ["bob"]);
    Ok(())
}

pub async fn ping_answers(store: &dyn Store) -> anyhow::Result<()> {
    store.ping().await?;
    Ok(())
}
