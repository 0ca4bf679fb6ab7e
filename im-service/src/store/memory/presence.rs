//! The memory store's presence and game activity: records that expire after the retention as Redis keys do, the two steps of a presence change (record, then feed), activity reports.

use std::time::Instant;

use chrono::Utc;
use shared_types::{
    UserId,
    activity::{Activity, ActivityReport, PresenceChange},
    im::ImEvent,
    presence::{Presence, PresenceStatus},
};

use super::{MemoryStore, state::State};
use crate::{
    domain::{
        ActivityState, Relationship,
        activity::by_user,
        clock::to_millis_precision,
        feed::{MAX_UNFED, next_seq},
    },
    store::PresenceRecorded,
};

/// A user's presence: the status, the `seq` of its newest change, and the changes not yet
/// known to be in the feed.
#[derive(Debug, Clone)]
pub(super) struct PresenceRecord {
    pub(super) status: PresenceStatus,
    pub(super) seq: u64,
    /// Oldest first, at most [`MAX_UNFED`].
    pub(super) unfed: Vec<PresenceChange>,
    pub(super) touched: Instant,
}

/// A user's game activity and the `seq` of the newest report applied.
#[derive(Debug, Clone)]
pub(super) struct ActivityRecord {
    pub(super) state: ActivityState,
    pub(super) touched: Instant,
}

impl State {
    fn live_presence(&self, user: &UserId, at: Instant) -> Option<&PresenceRecord> {
        self.presence
            .get(user)
            .filter(|record| at.duration_since(record.touched) <= self.retention)
    }

    fn live_activity(&self, user: &UserId, at: Instant) -> Option<&ActivityRecord> {
        self.activity
            .get(user)
            .filter(|record| at.duration_since(record.touched) <= self.retention)
    }

    /// `user`'s status; `offline` without a (live) record.
    pub(super) fn status_of(&self, user: &UserId) -> PresenceStatus {
        self.live_presence(user, Instant::now())
            .map(|record| record.status)
            .unwrap_or_default()
    }

    pub(super) fn activity_of(&self, user: &UserId) -> Option<Activity> {
        self.live_activity(user, Instant::now())
            .and_then(|record| record.state.activity.clone())
    }

    pub(super) fn presence_of(&self, user: &UserId) -> Presence {
        Presence {
            user_id: user.clone(),
            status: self.status_of(user),
            activity: self.activity_of(user),
        }
    }

    /// [`crate::store::Store::relationship`].
    pub(super) fn relationship(
        &self,
        viewer: &UserId,
        subject: &UserId,
    ) -> (Relationship, Presence) {
        let relationship = Relationship {
            talked: self
                .contacts
                .get(viewer)
                .is_some_and(|contacts| contacts.contains(subject)),
            viewer_blocks: self.blocks(viewer, subject),
            subject_blocks: self.blocks(subject, viewer),
        };
        (relationship, self.presence_of(subject))
    }

    /// Every so often, drops the records that expired.
    fn purge_records(&mut self, at: Instant) {
        if !Self::purge_due(self.records_purged, at) {
            return;
        }
        let retention = self.retention;
        self.presence
            .retain(|_, record| at.duration_since(record.touched) <= retention);
        self.activity
            .retain(|_, record| at.duration_since(record.touched) <= retention);
        self.records_purged = Some(at);
    }

    /// Tells `user`'s contacts their presence is now `presence`.
    fn tell_contacts(&mut self, store: &MemoryStore, presence: Presence) {
        let watchers = self.presence_watchers(&presence.user_id);
        self.notify(&store.feed, &watchers, &ImEvent::Presence(presence));
    }
}

fn now_ms() -> u64 {
    u64::try_from(Utc::now().timestamp_millis()).unwrap_or_default()
}

impl MemoryStore {
    /// [`crate::store::Store::record_presence`]: all under the one mutex.
    pub(super) fn record(&self, user: &UserId, status: PresenceStatus) -> PresenceRecorded {
        let mut state = self.state();
        let at = Instant::now();
        let mut record = state
            .live_presence(user, at)
            .cloned()
            .unwrap_or(PresenceRecord {
                status: PresenceStatus::Offline,
                seq: 0,
                unfed: Vec::new(),
                touched: at,
            });
        let changed = record.status != status;
        record.status = status;
        record.touched = at;
        if changed {
            let when = to_millis_precision(Utc::now());
            record.seq = next_seq(record.seq, now_ms());
            record.unfed.push(PresenceChange {
                user_id: user.clone(),
                status,
                seq: record.seq,
                at: when,
            });
            let excess = record.unfed.len().saturating_sub(MAX_UNFED);
            record.unfed.drain(..excess);
        }
        let unfed = record.unfed.clone();
        state.presence.insert(user.clone(), record);
        let presence = state.presence_of(user);
        if changed {
            state.tell_contacts(self, presence.clone());
        }
        state.purge_records(at);
        PresenceRecorded { presence, unfed }
    }

    /// [`crate::store::Store::feed_presence`].
    pub(super) fn feed_changes(&self, user: &UserId, changes: &[PresenceChange]) {
        let mut state = self.state();
        let now = now_ms();
        for change in changes {
            state.changes.append(change, now);
        }
        if let Some(record) = state.presence.get_mut(user) {
            record
                .unfed
                .retain(|unfed| !changes.iter().any(|fed| fed.seq == unfed.seq));
        }
    }

    /// [`crate::store::Store::apply_activity`]: each user's reports in `seq` order.
    pub(super) fn apply(&self, reports: &[ActivityReport]) {
        let mut state = self.state();
        for (user, reports) in by_user(reports) {
            let at = Instant::now();
            let mut record = state
                .live_activity(&user, at)
                .cloned()
                .unwrap_or(ActivityRecord {
                    state: ActivityState::default(),
                    touched: at,
                });
            let before = record.state.clone();
            let mut changes = Vec::new();
            for report in &reports {
                if record.state.apply(report) {
                    changes.push(record.state.activity.clone());
                }
            }
            // A report applied moved the seq at least: written, and its lifetime refreshed.
            if record.state != before {
                record.touched = at;
                state.activity.insert(user.clone(), record);
            }
            let status = state.status_of(&user);
            for activity in changes {
                let presence = Presence {
                    user_id: user.clone(),
                    status,
                    activity,
                };
                state.tell_contacts(self, presence);
            }
            state.purge_records(at);
        }
    }
}
