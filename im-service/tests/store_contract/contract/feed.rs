//! The presence feed: one entry per status change with increasing seqs per user, read through with cursors exactly once, completed by the next update after an interruption.

use std::collections::HashMap;

use anyhow::ensure;
use im_service::{domain::feed::Cursor, store::Store};
use shared_types::presence::PresenceStatus::{self, Available, Away, Busy, Offline};

use crate::{
    helpers::user,
    steps::{fed, feed},
};

/// `who` sets each of `statuses` in turn.
async fn set_each(store: &dyn Store, who: &str, statuses: &[PresenceStatus]) -> anyhow::Result<()> {
    for status in statuses {
        store.set_presence(&user(who)?, *status).await?;
    }
    Ok(())
}

/// Each seq above the one before.
fn increasing(seqs: &[u64]) -> bool {
    seqs.windows(2).all(|pair| pair[0] < pair[1])
}

pub async fn every_status_change_is_fed_once_with_increasing_seqs(
    store: &dyn Store,
) -> anyhow::Result<()> {
    // Setting the status one has is no change; `offline` without a record neither.
    set_each(
        store,
        "alice",
        &[Offline, Busy, Busy, Available, Offline, Offline, Available],
    )
    .await?;
    set_each(store, "bob", &[Away, Away]).await?;
    let alice = fed(store, "alice").await?;
    let statuses: Vec<PresenceStatus> = alice.iter().map(|(status, _)| *status).collect();
    ensure!(
        statuses == [Busy, Available, Offline, Available],
        "one entry per change, in order: {alice:?}"
    );
    let seqs: Vec<u64> = alice.iter().map(|(_, seq)| *seq).collect();
    ensure!(increasing(&seqs), "{seqs:?}");
    // A seq is at least the time of the change in milliseconds.
    let floor = u64::try_from(chrono::Utc::now().timestamp_millis() - 60_000)?;
    ensure!(seqs.iter().all(|seq| *seq > floor), "{seqs:?}");
    ensure!(fed(store, "bob").await?.len() == 1);
    // Each entry says who, what and when.
    let (all, _) = feed(store, 1000).await?;
    ensure!(all.len() == 5);
    let first = &all
        .iter()
        .find(|c| c.user_id.as_str() == "alice")
        .map(|c| (c.status, c.at));
    ensure!(
        first.is_some_and(
            |(status, at)| status == Busy && (chrono::Utc::now() - at).num_seconds() < 60
        ),
        "{first:?}"
    );
    Ok(())
}

pub async fn reading_the_feed_with_cursors_pages_through_every_change_exactly_once(
    store: &dyn Store,
) -> anyhow::Result<()> {
    // Never offline first, never the same twice in a row: every update is a change.
    let cycle = [Available, Busy, Away];
    let mut expected: HashMap<String, usize> = HashMap::new();
    for round in 0..3 {
        for i in 0..7 {
            let who = format!("user{i}");
            store
                .set_presence(&user(&who)?, cycle[(round + i) % cycle.len()])
                .await?;
            *expected.entry(who).or_default() += 1;
        }
    }
    let (everything, end) = feed(store, 1000).await?;
    ensure!(everything.len() == 21, "{}", everything.len());
    for page in [1, 2, 5] {
        let (paged, last) = feed(store, page).await?;
        ensure!(
            paged == everything,
            "pages of {page}: the same changes, once each"
        );
        ensure!(last == end, "the same cursor at the end");
    }
    // Each user's changes in their order.
    let mut seen: HashMap<&str, Vec<u64>> = HashMap::new();
    for change in &everything {
        seen.entry(change.user_id.as_str())
            .or_default()
            .push(change.seq);
    }
    for (who, count) in &expected {
        let seqs = seen.get(who.as_str()).cloned().unwrap_or_default();
        ensure!(seqs.len() == *count && increasing(&seqs), "{who}: {seqs:?}");
    }
    // Reading on from the end: nothing, the same cursor; then only what is new.
    let (none, same) = store.presence_changes(&end, 10).await?;
    ensure!(none.is_empty() && same == end);
    store.set_presence(&user("user0")?, Busy).await?;
    let (new, next) = store.presence_changes(&end, 10).await?;
    ensure!(
        new.len() == 1 && new[0].user_id.as_str() == "user0" && new[0].status == Busy,
        "{new:?}"
    );
    ensure!(next != end);
    // A cursor is as long as the feed has shards.
    ensure!(Cursor::parse(&next.to_string(), store.feed_shards())? == next);
    Ok(())
}

pub async fn an_update_after_an_interrupted_one_appends_the_unfed_change_once(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let alice = user("alice")?;
    // The status changed, but the replica died before the append.
    let recorded = store.record_presence(&alice, Busy).await?;
    ensure!(recorded.presence.status == Busy);
    if recorded.unfed.is_empty() {
        // A standalone Redis appends in the same script: there is no step to be interrupted.
        ensure!(fed(store, "alice").await?.len() == 1, "fed at once");
        return Ok(());
    }
    ensure!(recorded.unfed.len() == 1, "{recorded:?}");
    let marked = recorded.unfed[0].clone();
    ensure!(fed(store, "alice").await?.is_empty(), "not in the feed yet");
    // The client retries: the status does not change, the marked change is appended.
    store.set_presence(&alice, Busy).await?;
    ensure!(
        fed(store, "alice").await? == [(Busy, marked.seq)],
        "appended with its own seq"
    );
    // Nothing is marked any more: the same status again appends nothing.
    let again = store.record_presence(&alice, Busy).await?;
    ensure!(again.unfed.is_empty(), "{again:?}");
    store.set_presence(&alice, Busy).await?;
    // A change appended twice (a lost answer after the append) shows once.
    store
        .feed_presence(&alice, std::slice::from_ref(&marked))
        .await?;
    ensure!(fed(store, "alice").await?.len() == 1);
    // Interrupted again; the next update is another status: both, in order.
    let lost = store.record_presence(&alice, Away).await?.unfed;
    store.set_presence(&alice, Available).await?;
    let now = fed(store, "alice").await?;
    ensure!(now.len() == 3, "{now:?}");
    ensure!(now[1] == (Away, lost[0].seq), "{now:?}");
    ensure!(now[2].0 == Available && now[2].1 > lost[0].seq, "{now:?}");
    Ok(())
}

/// Run with a short retention: the presence record expires between the changes.
pub async fn seqs_keep_increasing_after_the_presence_record_expired(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let alice = user("alice")?;
    store.set_presence(&alice, Busy).await?;
    store.set_presence(&alice, Available).await?;
    let session = uuid::Uuid::new_v4();
    store
        .apply_activity(&[crate::steps::report("alice", session, true, 5)?])
        .await?;
    ensure!(store.presence(&alice).await?.activity.is_some());
    tokio::time::sleep(crate::helpers::SHORT_RETENTION * 2).await;
    let expired = store.presence(&alice).await?;
    ensure!(
        expired.status == Offline && expired.activity.is_none(),
        "both expired: {expired:?}"
    );
    // Its record gone, the next change still has a greater seq.
    store.set_presence(&alice, Available).await?;
    let seqs: Vec<u64> = fed(store, "alice")
        .await?
        .iter()
        .map(|(_, seq)| *seq)
        .collect();
    ensure!(seqs.len() == 3 && increasing(&seqs), "{seqs:?}");
    Ok(())
}
