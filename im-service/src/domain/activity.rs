//! Game activity reports (`PUT /v1/activity`): what a batch must satisfy, and the seq rule by which a report changes a user's activity, whatever order reports arrive in.

use std::collections::HashMap;

use shared_types::{
    UserId,
    activity::{Activity, ActivityReport},
    im::MAX_MODE_CHARS,
};

use super::clock::to_millis_precision;

/// Most reports in one `PUT /v1/activity`.
pub const MAX_REPORTS: usize = 256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidReports {
    #[error("`reports` holds 1-{MAX_REPORTS} reports, got {0}")]
    Count(usize),
    #[error("report {0}: `mode` is 1-{MAX_MODE_CHARS} characters")]
    Mode(usize),
    #[error("report {0}: `seq` starts at 1")]
    Seq(usize),
}

/// Checks a batch as a whole before anything is applied: a 400 changes nothing.
pub fn validate(reports: &[ActivityReport]) -> Result<(), InvalidReports> {
    if !(1..=MAX_REPORTS).contains(&reports.len()) {
        return Err(InvalidReports::Count(reports.len()));
    }
    for (i, report) in reports.iter().enumerate() {
        if !(1..=MAX_MODE_CHARS).contains(&report.mode.chars().count()) {
            return Err(InvalidReports::Mode(i));
        }
        if report.seq == 0 {
            return Err(InvalidReports::Seq(i));
        }
    }
    Ok(())
}

/// The reports of a batch per user (users in the order they first appear), each user's
/// sorted by `seq` (stable): applied in that order, a batch that carries a user's reports out
/// of order ends as if they had come in order.
pub fn by_user(reports: &[ActivityReport]) -> Vec<(UserId, Vec<ActivityReport>)> {
    let mut order: Vec<UserId> = Vec::new();
    let mut grouped: HashMap<UserId, Vec<ActivityReport>> = HashMap::new();
    for report in reports {
        let entry = grouped.entry(report.user_id.clone()).or_insert_with(|| {
            order.push(report.user_id.clone());
            Vec::new()
        });
        entry.push(report.clone());
    }
    order
        .into_iter()
        .filter_map(|user| {
            let mut reports = grouped.remove(&user)?;
            reports.sort_by_key(|report| report.seq);
            Some((user, reports))
        })
        .collect()
}

/// What a store keeps of a user's game activity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityState {
    pub activity: Option<Activity>,
    /// The `seq` of the newest report applied (0: none yet).
    pub seq: u64,
}

impl ActivityState {
    /// Applies `report` iff its `seq` is newer than the newest applied (an older or equal one,
    /// late or delivered twice, changes nothing): `playing` sets the activity to that session
    /// since `report.at`; not playing clears it, whatever its session (a user plays one session
    /// at a time and `seq` orders their reports, so the newest is the truth: a stop whose own
    /// session's stop was lost, or sent only as the newest of a batch, still clears). Either
    /// way the report's `seq` becomes the newest applied. Returns whether the activity changed.
    pub fn apply(&mut self, report: &ActivityReport) -> bool {
        if report.seq <= self.seq {
            return false;
        }
        self.seq = report.seq;
        let next = if report.playing {
            Some(Activity::InGame {
                session_id: report.session_id,
                mode: report.mode.clone(),
                since: to_millis_precision(report.at),
            })
        } else {
            None
        };
        if next == self.activity {
            return false;
        }
        self.activity = next;
        true
    }
}

#[cfg(test)]
#[expect(clippy::expect_used, reason = "tests")]
mod tests {
    use chrono::{TimeDelta, Utc};
    use uuid::Uuid;

    use super::*;

    fn report(user: &str, session: Uuid, playing: bool, seq: u64) -> ActivityReport {
        ActivityReport {
            user_id: UserId::parse(user).expect("valid id"),
            session_id: session,
            mode: "default".into(),
            playing,
            seq,
            at: Utc::now() + TimeDelta::milliseconds(i64::try_from(seq).unwrap_or_default()),
        }
    }

    #[test]
    fn a_report_applies_only_when_newer_and_the_newest_is_the_truth() {
        let (one, two) = (Uuid::new_v4(), Uuid::new_v4());
        let mut state = ActivityState::default();
        assert!(state.apply(&report("bob", one, true, 1)));
        assert!(!state.apply(&report("bob", one, true, 1)), "twice");
        assert!(!state.apply(&report("bob", one, false, 1)), "equal seq");
        assert!(state.apply(&report("bob", two, true, 4)));
        assert!(!state.apply(&report("bob", one, false, 3)), "an older stop");
        assert_eq!(state.seq, 4);
        assert!(
            matches!(&state.activity, Some(Activity::InGame { session_id, .. }) if *session_id == two)
        );
        assert!(!state.apply(&report("bob", two, false, 2)), "older");
        assert!(state.apply(&report("bob", two, false, 5)));
        assert_eq!(state.activity, None);
        assert!(state.apply(&report("bob", one, true, 6)));
        assert!(
            state.apply(&report("bob", two, false, 7)),
            "a newer stop clears any session"
        );
        assert_eq!(state.activity, None);
    }

    #[test]
    fn a_batch_is_grouped_per_user_in_seq_order_and_checked_whole() {
        let session = Uuid::new_v4();
        let batch = [
            report("bob", session, false, 4),
            report("alice", session, true, 1),
            report("bob", session, true, 2),
        ];
        let grouped = by_user(&batch);
        let seqs: Vec<(&str, Vec<u64>)> = grouped
            .iter()
            .map(|(user, reports)| (user.as_str(), reports.iter().map(|r| r.seq).collect()))
            .collect();
        assert_eq!(seqs, [("bob", vec![2, 4]), ("alice", vec![1])]);
        assert_eq!(validate(&batch), Ok(()));
        assert_eq!(validate(&[]), Err(InvalidReports::Count(0)));
        let mut bad = batch.clone();
        bad[1].mode = String::new();
        assert_eq!(validate(&bad), Err(InvalidReports::Mode(1)));
        bad[1].mode = "m".repeat(33);
        assert_eq!(validate(&bad), Err(InvalidReports::Mode(1)));
        let mut zero = batch.to_vec();
        zero[2].seq = 0;
        assert_eq!(validate(&zero), Err(InvalidReports::Seq(2)));
        let many = vec![report("bob", session, true, 1); MAX_REPORTS + 1];
        assert_eq!(validate(&many), Err(InvalidReports::Count(257)));
    }
}
