//! Deliveries to the IM service, off every player's path: lobby announcements and players'
//! game activity. Each is a job in the store, scheduled in the commit of the change it tells
//! of (so none is lost with a replica), run by whichever replica claims it, and tried again
//! with backoff while the IM service is unavailable, until its deadline: an announcement
//! while someone can still join from it (the lobby's invitations), an activity report for
//! [`ACTIVITY_DEADLINE`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use shared_types::{
    activity::ActivityReport,
    game::{SessionKind, SessionState},
    im::GameAnnouncement,
};
use uuid::Uuid;

use super::{Game, GameError};
use crate::{
    domain::{
        records::{ExpiryJob, ScheduledJob, SessionRef},
        tx::Changes,
    },
    im_client::{DeliveryError, announcement_text},
    metrics::{self, Delivery, DeliveryOutcome},
};

/// The first retry waits this long; each one after twice as long, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long activity reports are tried: an IM service down for longer misses them (and
/// shows players' activity as it was when it went down, until the next change).
const ACTIVITY_DEADLINE: chrono::Duration = chrono::Duration::hours(1);
/// Most reports in one `PUT /v1/activity`.
const REPORTS_PER_CALL: usize = 256;

impl Game {
    /// Posts (or gives up on) one announcement; `Err` only when the store failed (the job is
    /// then handed out again after its lease).
    pub(super) async fn announce(
        &self,
        lobby: &SessionRef,
        conversation: Uuid,
        attempt: u32,
    ) -> Result<(), GameError> {
        let session = self.store.session(lobby).await?;
        let Some(session) = session
            .filter(|s| s.kind == SessionKind::Multiplayer && s.state != SessionState::Ended)
        else {
            // The lobby ended or turned solo before its announcement went out: nothing to join.
            metrics::delivery(Delivery::Announcement, DeliveryOutcome::Moot, 1);
            return Ok(());
        };
        let game = GameAnnouncement {
            session_id: session.id,
            host: session.host.clone(),
            mode: session.mode.clone(),
            state: session.state,
        };
        let text = announcement_text(&game);
        let delivered = self.im.announce(conversation, &text, &game).await;
        let retry = ExpiryJob::Announce {
            lobby: lobby.clone(),
            conversation,
            attempt: attempt.saturating_add(1),
        };
        // Worth retrying while someone can still join from it: until its invitations expire.
        let deadline = session.created_at + self.engine.invite_ttl;
        self.settle_delivery(
            Delivery::Announcement,
            delivered,
            vec![retry],
            attempt,
            deadline,
            1,
        )
        .await
    }

    /// Reports the players' activity of `jobs` (`ExpiryJob::Activity`, as claimed by one
    /// sweep) in as few calls as fit; `Err` only when the store failed.
    pub async fn report_activity(&self, jobs: &[ExpiryJob]) -> Result<(), GameError> {
        let mut batch: Vec<(&[ActivityReport], u32)> = Vec::new();
        let mut size = 0;
        for job in jobs {
            let ExpiryJob::Activity { reports, attempt } = job else {
                continue;
            };
            if size + reports.len() > REPORTS_PER_CALL && !batch.is_empty() {
                self.report_batch(&batch).await?;
                batch.clear();
                size = 0;
            }
            size += reports.len();
            batch.push((reports, *attempt));
        }
        if !batch.is_empty() {
            self.report_batch(&batch).await?;
        }
        Ok(())
    }

    async fn report_batch(&self, batch: &[(&[ActivityReport], u32)]) -> Result<(), GameError> {
        let reports: Vec<ActivityReport> = batch
            .iter()
            .flat_map(|(reports, _)| reports.iter().cloned())
            .collect();
        let delivered = self.im.report_activity(&newest_per_player(&reports)).await;
        let attempt = batch.iter().map(|(_, a)| *a).max().unwrap_or_default();
        let retries = batch
            .iter()
            .map(|(reports, attempt)| ExpiryJob::Activity {
                reports: reports.to_vec(),
                attempt: attempt.saturating_add(1),
            })
            .collect();
        let oldest = reports
            .iter()
            .map(|r| r.at)
            .min()
            .unwrap_or_else(|| self.now());
        let count = u64::try_from(reports.len()).unwrap_or(u64::MAX);
        self.settle_delivery(
            Delivery::Activity,
            delivered,
            retries,
            attempt,
            oldest + ACTIVITY_DEADLINE,
            count,
        )
        .await
    }

    /// Counts a delivery's outcome; one the IM service could not take now is scheduled again
    /// (`retries`, after the backoff of `attempt`) unless that would pass `deadline`.
    async fn settle_delivery(
        &self,
        kind: Delivery,
        delivered: Result<(), DeliveryError>,
        retries: Vec<ExpiryJob>,
        attempt: u32,
        deadline: DateTime<Utc>,
        count: u64,
    ) -> Result<(), GameError> {
        let why = match delivered {
            Ok(()) => {
                metrics::delivery(kind, DeliveryOutcome::Posted, count);
                return Ok(());
            }
            Err(DeliveryError::Refused(why)) => {
                tracing::warn!(%why, ?kind, "the IM service refused a delivery; dropped");
                metrics::delivery(kind, DeliveryOutcome::Dropped, count);
                return Ok(());
            }
            Err(DeliveryError::Unavailable(why)) => why,
        };
        let next = self.now() + chrono::Duration::from_std(backoff(attempt)).unwrap_or_default();
        if next >= deadline {
            tracing::warn!(%why, ?kind, attempts = attempt + 1, "delivery dropped: the IM service stayed unavailable until its deadline");
            metrics::delivery(kind, DeliveryOutcome::Dropped, count);
            return Ok(());
        }
        tracing::debug!(%why, ?kind, attempt, "delivery deferred");
        let retry = Changes {
            jobs: retries
                .into_iter()
                .map(|job| ScheduledJob { job, due: next })
                .collect(),
            ..Changes::default()
        };
        // No player is locked: the commit only schedules the next try.
        let token = Uuid::new_v4().to_string();
        self.store.commit(&[], &token, &retry).await?;
        metrics::delivery(kind, DeliveryOutcome::Retried, count);
        Ok(())
    }
}

/// Each player's newest report: the IM service, applying reports in `seq` order, ends in the
/// state of the newest one (a player is in one session at a time), so the older ones of one
/// batch (began and stopped playing within one sweep) need not be sent.
fn newest_per_player(reports: &[ActivityReport]) -> Vec<ActivityReport> {
    let mut newest: std::collections::BTreeMap<&str, &ActivityReport> = Default::default();
    for report in reports {
        let slot = newest.entry(report.user_id.as_str()).or_insert(report);
        if report.seq > slot.seq {
            *slot = report;
        }
    }
    newest.into_values().cloned().collect()
}

/// The wait before try `attempt + 1`: 250 ms, 500 ms, 1 s, … up to 5 s.
fn backoff(attempt: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(2u32.saturating_pow(attempt.min(16)))
        .min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_each_players_newest_report_is_sent() {
        let report = |user: &str, seq: u64, playing: bool| ActivityReport {
            user_id: shared_types::UserId::parse(user).unwrap_or_else(|_| unreachable!()),
            session_id: Uuid::nil(),
            mode: "default".into(),
            playing,
            seq,
            at: Utc::now(),
        };
        let sent = newest_per_player(&[
            report("bob", 1, true),
            report("alice", 4, true),
            report("bob", 2, false),
            report("alice", 3, false),
        ]);
        let sent: Vec<(String, u64, bool)> = sent
            .into_iter()
            .map(|r| (r.user_id.to_string(), r.seq, r.playing))
            .collect();
        assert_eq!(sent, [("alice".into(), 4, true), ("bob".into(), 2, false)]);
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let waits: Vec<u128> = (0..7).map(|a| backoff(a).as_millis()).collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 4000, 5000, 5000]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
