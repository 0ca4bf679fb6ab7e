//! Follows the IM service's presence feed: the replica holding the feed's lease reads the
//! changes after the stored cursor, applies each (once: a change no newer than the last one
//! applied to a player does nothing), and only then moves the cursor. A change is applied at
//! least once, however often it is read again (a replica dying between applying and moving
//! the cursor), and none is lost while either service is down: the feed keeps them and the
//! cursor waits.

use std::{sync::Arc, time::Duration};

use uuid::Uuid;

use crate::{game::Game, im_client::DeliveryError, metrics};

/// Changes read per poll; a longer backlog is read on at once.
const PAGE: usize = 256;
/// Longer than a poll's work, so the holder keeps it while it lives.
const LEASE: Duration = Duration::from_secs(5);

/// Polls the feed every `every` for as long as the replica runs.
pub async fn follow_presence(game: Arc<Game>, every: Duration) {
    let holder = Uuid::new_v4().to_string();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        poll(&game, &holder).await;
    }
}

/// One poll: while this replica holds the lease, reads pages and applies them until the
/// feed has nothing newer (or something fails: the next poll starts from the cursor).
pub async fn poll(game: &Game, holder: &str) {
    let store = game.store();
    loop {
        match store.hold_feed(holder, LEASE).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(err) => {
                metrics::count_store_failure(&err);
                return;
            }
        }
        let cursor = match store.feed_cursor().await {
            Ok(cursor) => cursor,
            Err(err) => {
                metrics::count_store_failure(&err);
                return;
            }
        };
        let page = match game.im().presence_changes(cursor.as_deref(), PAGE).await {
            Ok(page) => page,
            // A cursor the IM service no longer understands (its feed was resharded): read
            // again from the oldest change it keeps. Applying a change twice is harmless.
            Err(DeliveryError::Refused(why)) if cursor.is_some() => {
                tracing::warn!(%why, "the presence feed refused our cursor; reading from its start");
                match game.im().presence_changes(None, PAGE).await {
                    Ok(page) => page,
                    Err(err) => {
                        tracing::debug!(%err, "cannot read the presence feed now");
                        return;
                    }
                }
            }
            Err(err) => {
                tracing::debug!(%err, "cannot read the presence feed now");
                return;
            }
        };
        for change in &page.changes {
            if let Err(err) = game.presence_changed(change).await {
                metrics::count_failure(&err);
                tracing::warn!(%err, user = %change.user_id, "applying a presence change failed; read again next poll");
                return;
            }
        }
        if page.changes.is_empty() || cursor.as_deref() == Some(page.next.as_str()) {
            return;
        }
        match store.save_feed_cursor(holder, &page.next).await {
            Ok(true) => {}
            // The lease moved on: the new holder reads on from the cursor it finds.
            Ok(false) => return,
            Err(err) => {
                metrics::count_store_failure(&err);
                return;
            }
        }
        if page.changes.len() < PAGE {
            return;
        }
    }
}
