//! Partners: who talks with whom right now (both posted, recently, in an open conversation), and the facts read about candidates.

use im_service::{
    domain::{PartnersRequest, StatusFilter},
    store::Store,
};
use shared_types::presence::PresenceStatus;

use crate::{
    helpers::{minutes, now, user},
    steps::{
        available, names, open, open_and_talk, partners_of, partners_with, sees_presence, talk,
    },
};

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
            .await?
            .map(|presence| presence.status),
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
    open_and_talk(
        store,
        &["alice", "bob"],
        now - minutes(41),
        now - minutes(40),
    )
    .await?;
    let revived = open_and_talk(
        store,
        &["alice", "carol"],
        now - minutes(41),
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
    // alice talks with bob directly, with carol and bob in a group, with dave, with erin (then
    // closed); bob and carol talk without her.
    open_and_talk(store, &["alice", "bob"], t, t).await?;
    let group = open_and_talk(store, &["carol", "alice", "bob"], t, t + minutes(5)).await?;
    let with_dave = open_and_talk(store, &["dave", "alice"], t, t + minutes(2)).await?;
    let closed = open_and_talk(store, &["alice", "erin"], t, t + minutes(9)).await?;
    store.close_conversation(closed.conversation.id).await?;
    open_and_talk(store, &["bob", "carol"], t, t + minutes(10)).await?;
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
    let group = open_and_talk(store, &everyone, t, t).await?;
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
