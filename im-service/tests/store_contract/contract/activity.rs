//! Game activity: the seq rule (late, repeated and out-of-order reports), what presence answers and partner entries show, and who hears of a change.

use anyhow::ensure;
use im_service::store::Store;
use shared_types::{
    activity::{Activity, ActivityReport},
    im::ImEvent,
    presence::PresenceStatus,
};
use uuid::Uuid;

use super::events::events_of;
use crate::{
    helpers::{minutes, now, user},
    steps::{available, open, open_and_talk, report},
};

/// The session `who` plays in, as a presence read shows it.
async fn playing_in(store: &dyn Store, who: &str) -> anyhow::Result<Option<Uuid>> {
    Ok(store
        .presence(&user(who)?)
        .await?
        .activity
        .map(|Activity::InGame { session_id, .. }| session_id))
}

/// The activities `who` heard of from `about`'s presence events, oldest first.
async fn heard(
    store: &dyn Store,
    who: &str,
    about: &str,
) -> anyhow::Result<Vec<(PresenceStatus, Option<Uuid>)>> {
    Ok(events_of(store, who)
        .await?
        .into_iter()
        .filter_map(|event| match event {
            ImEvent::Presence(p) if p.user_id.as_str() == about => Some((
                p.status,
                p.activity
                    .map(|Activity::InGame { session_id, .. }| session_id),
            )),
            _ => None,
        })
        .collect())
}

pub async fn an_activity_report_applies_only_when_newer_and_the_newest_is_the_truth(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let (one, two) = (Uuid::new_v4(), Uuid::new_v4());
    ensure!(playing_in(store, "bob").await?.is_none(), "nothing yet");
    let started = report("bob", one, true, 1)?;
    store.apply_activity(std::slice::from_ref(&started)).await?;
    let read = store.presence(&user("bob")?).await?;
    ensure!(
        read.activity
            == Some(Activity::InGame {
                session_id: one,
                mode: "default".into(),
                since: started.at,
            }),
        "set, since the report's time: {read:?}"
    );
    ensure!(
        read.status == PresenceStatus::Offline,
        "the status is its own"
    );
    // The same report again, and an equal seq saying the contrary: nothing.
    store.apply_activity(std::slice::from_ref(&started)).await?;
    store
        .apply_activity(&[report("bob", one, false, 1)?])
        .await?;
    ensure!(
        playing_in(store, "bob").await? == Some(one),
        "equal seq ignored"
    );
    // A newer session, then a late stop of the first one (older): the newer stands.
    store
        .apply_activity(&[report("bob", two, true, 4)?])
        .await?;
    store
        .apply_activity(&[report("bob", one, false, 3)?])
        .await?;
    ensure!(
        playing_in(store, "bob").await? == Some(two),
        "an older stop is ignored"
    );
    // Older than the newest applied (4): ignored, even for the right session.
    store
        .apply_activity(&[report("bob", two, false, 2)?])
        .await?;
    ensure!(
        playing_in(store, "bob").await? == Some(two),
        "older ignored"
    );
    store
        .apply_activity(&[report("bob", two, false, 5)?])
        .await?;
    ensure!(playing_in(store, "bob").await?.is_none(), "cleared");
    // And once stopped, the start it followed does not come back.
    store
        .apply_activity(&[report("bob", two, true, 4)?])
        .await?;
    ensure!(
        playing_in(store, "bob").await?.is_none(),
        "a late start ignored"
    );
    // The newest report is the truth (one session at a time): a newer stop clears whatever
    // session is shown, even one whose own stop was never delivered (or was sent only as
    // the newest of a batch).
    store
        .apply_activity(&[report("bob", one, true, 6)?])
        .await?;
    store
        .apply_activity(&[report("bob", two, false, 7)?])
        .await?;
    ensure!(
        playing_in(store, "bob").await?.is_none(),
        "a newer stop clears the activity"
    );
    Ok(())
}

pub async fn activity_delivered_out_of_order_or_twice_ends_in_the_newest_state(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let (one, two) = (Uuid::new_v4(), Uuid::new_v4());
    // In order: plays one, stops, plays two. The newest state: in two.
    let history = |who: &str| -> anyhow::Result<Vec<ActivityReport>> {
        Ok(vec![
            report(who, one, true, 1)?,
            report(who, one, false, 2)?,
            report(who, two, true, 3)?,
        ])
    };
    let orders: [&[usize]; 6] = [
        &[0, 1, 2],
        &[2, 1, 0],
        &[1, 2, 0],
        &[2, 0, 1, 2, 0],
        &[0, 2, 1, 1],
        &[1, 0, 2],
    ];
    for (i, order) in orders.iter().enumerate() {
        // One report a call for some players, the whole delivery in one batch for others.
        let (single, batched) = (format!("single{i}"), format!("batched{i}"));
        let (single_history, batched_history) = (history(&single)?, history(&batched)?);
        for &at in *order {
            store.apply_activity(&[single_history[at].clone()]).await?;
        }
        let batch: Vec<ActivityReport> = order
            .iter()
            .map(|&at| batched_history[at].clone())
            .collect();
        store.apply_activity(&batch).await?;
        for who in [&single, &batched] {
            ensure!(
                playing_in(store, who).await? == Some(two),
                "{who} ({order:?}) ends in the newest session"
            );
        }
    }
    // Several players in one batch, each applied on its own.
    store
        .apply_activity(&[
            report("alice", one, true, 7)?,
            report("carol", two, true, 1)?,
            report("alice", one, false, 8)?,
        ])
        .await?;
    ensure!(playing_in(store, "alice").await?.is_none());
    ensure!(playing_in(store, "carol").await? == Some(two));
    Ok(())
}

pub async fn an_activity_change_is_heard_once_by_contacts_and_shows_in_presence_and_partners(
    store: &dyn Store,
) -> anyhow::Result<()> {
    // alice talked with bob and carol (carol blocks her), only opened one with dave.
    available(store, &["alice", "bob", "carol"]).await?;
    let t = now() - minutes(1);
    open_and_talk(store, &["bob", "alice"], t, t).await?;
    open_and_talk(store, &["carol", "alice"], t, t).await?;
    open(store, &["alice", "dave"], t).await?;
    store.block(&user("carol")?, &user("alice")?, now()).await?;
    let session = Uuid::new_v4();

    store
        .apply_activity(&[report("alice", session, true, 1)?])
        .await?;
    // Ignored reports: a repeat, and one no newer than the newest applied.
    store
        .apply_activity(&[
            report("alice", session, true, 1)?,
            report("alice", session, false, 1)?,
        ])
        .await?;
    let while_playing = heard(store, "bob", "alice").await?;
    ensure!(
        while_playing.last() == Some(&(PresenceStatus::Available, Some(session))),
        "bob hears alice is in game, her status with it: {while_playing:?}"
    );
    // What bob reads: alice's presence, and her partner entry.
    let seen = store
        .presence_seen_by(&user("bob")?, &user("alice")?)
        .await?
        .map(|p| p.activity);
    ensure!(
        matches!(&seen, Some(Some(Activity::InGame { session_id, .. })) if *session_id == session),
        "{seen:?}"
    );
    let partners = store
        .partners(&im_service::domain::PartnersRequest {
            user: user("bob")?,
            since: now() - minutes(30),
            filter: im_service::domain::StatusFilter::default(),
            limit: 10,
        })
        .await?;
    ensure!(
        partners.partners.len() == 1
            && matches!(&partners.partners[0].activity, Some(Activity::InGame { session_id, .. }) if *session_id == session),
        "{partners:?}"
    );
    store
        .apply_activity(&[report("alice", session, false, 3)?])
        .await?;
    let all = heard(store, "bob", "alice").await?;
    ensure!(
        all.len() == while_playing.len() + 1
            && all.last() == Some(&(PresenceStatus::Available, None)),
        "one event per change, the ignored ones none: {all:?}"
    );
    let in_game = all
        .iter()
        .filter(|(_, activity)| activity.is_some())
        .count();
    ensure!(in_game == 1, "one event for the start: {all:?}");
    ensure!(playing_in(store, "alice").await?.is_none());
    let partners = store
        .partners(&im_service::domain::PartnersRequest {
            user: user("bob")?,
            since: now() - minutes(30),
            filter: im_service::domain::StatusFilter::default(),
            limit: 10,
        })
        .await?;
    ensure!(
        partners
            .partners
            .first()
            .is_some_and(|p| p.activity.is_none()),
        "{partners:?}"
    );
    for (who, why) in [
        ("carol", "carol blocks alice"),
        ("dave", "dave never talked with alice"),
        ("alice", "alice hears nothing of her own"),
    ] {
        ensure!(heard(store, who, "alice").await?.is_empty(), "{why}");
    }
    // A status change tells the activity too.
    store
        .apply_activity(&[report("alice", session, true, 4)?])
        .await?;
    store
        .set_presence(&user("alice")?, PresenceStatus::Busy)
        .await?;
    let last = heard(store, "bob", "alice").await?.last().copied();
    ensure!(
        last == Some((PresenceStatus::Busy, Some(session))),
        "{last:?}"
    );
    Ok(())
}
