//! Who counts as a partner: the "who is this user talking to right now?" rule (docs/CONTRACT.md, "Partners").

use std::{collections::HashSet, time::Duration};

use chrono::{DateTime, TimeDelta, Utc};
use shared_types::{UserId, activity::Activity, presence::PresenceStatus};
use uuid::Uuid;

use super::ConversationRecord;

/// Longest accepted `active_within_secs`: a year. Conversations expire long before (retention),
/// so a larger window would mean nothing more; the bound keeps date arithmetic in range.
pub const MAX_ACTIVE_WINDOW_SECS: u64 = 365 * 24 * 3600;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidPartnersQuery {
    #[error("unknown presence status {0:?} in `status`: expected available, busy, away or offline")]
    UnknownStatus(String),
    #[error("`active_within_secs` is at most {MAX_ACTIVE_WINDOW_SECS}, got {0}")]
    WindowTooLong(u64),
    #[error("`limit` is 1-{max}, got {got}")]
    LimitOutOfRange { got: usize, max: usize },
}

/// The presence statuses a partner may have to count; `available` unless the caller says otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusFilter(Vec<PresenceStatus>);

impl Default for StatusFilter {
    fn default() -> Self {
        Self(vec![PresenceStatus::Available])
    }
}

impl StatusFilter {
    /// A comma-separated list such as `available,busy`; every item must be a known status.
    pub fn parse(raw: &str) -> Result<Self, InvalidPartnersQuery> {
        let mut statuses = Vec::new();
        for item in raw.split(',') {
            let status = item
                .trim()
                .parse::<PresenceStatus>()
                .map_err(|_| InvalidPartnersQuery::UnknownStatus(item.to_owned()))?;
            if !statuses.contains(&status) {
                statuses.push(status);
            }
        }
        Ok(Self(statuses))
    }

    pub fn admits(&self, status: PresenceStatus) -> bool {
        self.0.contains(&status)
    }
}

/// How recent a conversation's last activity must be for it to count as talking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveWindow(Duration);

impl ActiveWindow {
    pub fn from_secs(secs: u64) -> Result<Self, InvalidPartnersQuery> {
        if secs > MAX_ACTIVE_WINDOW_SECS {
            return Err(InvalidPartnersQuery::WindowTooLong(secs));
        }
        Ok(Self(Duration::from_secs(secs)))
    }

    /// The oldest last activity that still counts at `now`.
    pub fn since(self, now: DateTime<Utc>) -> DateTime<Utc> {
        TimeDelta::from_std(self.0)
            .ok()
            .and_then(|window| now.checked_sub_signed(window))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}

/// Someone `user` talks with through one of their open recent conversations, before the
/// presence filter and the blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerCandidate {
    pub user_id: UserId,
    pub conversation_id: Uuid,
    pub last_activity_at: DateTime<Utc>,
}

/// The people `user` talks with in their open conversations whose newest message is at or after
/// `since` (both have posted: talking takes two), each once with the most recent such
/// conversation, newest activity first (ties broken by user id, so answers are stable).
pub fn latest_per_partner(
    user: &UserId,
    conversations: &[ConversationRecord],
    since: DateTime<Utc>,
) -> Vec<PartnerCandidate> {
    let mut live: Vec<(&ConversationRecord, DateTime<Utc>)> = conversations
        .iter()
        .filter(|c| !c.conversation.closed && c.visible_to(user))
        .filter_map(|c| {
            let at = c.conversation.last_activity_at?;
            (at >= since).then_some((c, at))
        })
        .collect();
    live.sort_by(|(a, a_at), (b, b_at)| {
        b_at.cmp(a_at)
            .then(a.conversation.id.cmp(&b.conversation.id))
    });
    let mut seen = HashSet::new();
    let mut candidates = Vec::new();
    for (record, at) in live {
        for other in record.talking_with(user) {
            if seen.insert(other) {
                candidates.push(PartnerCandidate {
                    user_id: other.clone(),
                    conversation_id: record.conversation.id,
                    last_activity_at: at,
                });
            }
        }
    }
    candidates.sort_by(|a, b| {
        b.last_activity_at
            .cmp(&a.last_activity_at)
            .then(a.user_id.cmp(&b.user_id))
    });
    candidates
}

/// What the store knows about a candidate, read in the candidate's own slot (and the user's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidateFacts {
    pub status: PresenceStatus,
    /// What they are doing in the game, shown in their partner entry.
    pub activity: Option<Activity>,
    /// The candidate blocked the user.
    pub blocks_user: bool,
    /// The user blocked the candidate.
    pub blocked_by_user: bool,
}

impl CandidateFacts {
    /// A block, either way, unmakes partners; then the presence must pass the filter.
    pub fn admitted_by(&self, filter: &StatusFilter) -> bool {
        !self.blocks_user && !self.blocked_by_user && filter.admits(self.status)
    }
}

/// What decides whether a player sees another user's presence (besides being that user).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Relationship {
    /// They share a conversation (open or closed) in which both have posted.
    pub talked: bool,
    /// The viewer blocked the subject.
    pub viewer_blocks: bool,
    /// The subject blocked the viewer.
    pub subject_blocks: bool,
}

impl Relationship {
    /// Talking takes two, and a block either way hides presence both ways.
    pub fn reveals_presence(&self) -> bool {
        self.talked && !self.viewer_blocks && !self.subject_blocks
    }
}

/// One partners question: whose, how recent, which statuses, how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnersRequest {
    pub user: UserId,
    /// The oldest newest-message that still counts.
    pub since: DateTime<Utc>,
    pub filter: StatusFilter,
    /// At most this many partners, the newest first.
    pub limit: usize,
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use shared_types::im::Conversation;

    fn id(raw: &str) -> UserId {
        UserId::parse(raw).unwrap()
    }

    /// A conversation between `people` whose newest message is `minutes_ago`, in which
    /// `posters` have posted.
    fn conversation(
        people: &[&str],
        posters: &[&str],
        minutes_ago: i64,
        closed: bool,
    ) -> ConversationRecord {
        let at = Utc::now() - TimeDelta::minutes(minutes_ago);
        ConversationRecord {
            conversation: Conversation {
                id: Uuid::new_v4(),
                participants: people.iter().map(|p| id(p)).collect(),
                created_at: at - TimeDelta::minutes(1),
                last_activity_at: (!posters.is_empty()).then_some(at),
                closed,
            },
            posters: posters.iter().map(|p| id(p)).collect(),
            hidden_from: Vec::new(),
        }
    }

    #[test]
    fn status_filter_accepts_known_statuses_only() {
        let filter = StatusFilter::parse("available,busy").unwrap();
        assert!(filter.admits(PresenceStatus::Busy));
        assert!(!filter.admits(PresenceStatus::Away));
        assert_eq!(
            StatusFilter::parse("available,sleeping"),
            Err(InvalidPartnersQuery::UnknownStatus("sleeping".into()))
        );
        assert!(StatusFilter::parse("").is_err());
        assert!(StatusFilter::default().admits(PresenceStatus::Available));
    }

    #[test]
    fn each_partner_appears_once_with_its_most_recent_open_two_sided_conversation() {
        let alice = id("alice");
        let old = conversation(&["alice", "bob"], &["alice", "bob"], 20, false);
        let recent = conversation(
            &["alice", "bob", "carol"],
            &["carol", "alice", "bob"],
            5,
            false,
        );
        let closed = conversation(&["alice", "dave"], &["alice", "dave"], 1, true);
        let stale = conversation(&["alice", "erin"], &["alice", "erin"], 120, false);
        let someone_elses = conversation(&["frank", "gina"], &["frank", "gina"], 1, false);
        let since = Utc::now() - TimeDelta::minutes(30);
        let found = latest_per_partner(
            &alice,
            &[old, recent.clone(), closed, stale, someone_elses],
            since,
        );
        let names: Vec<&str> = found.iter().map(|c| c.user_id.as_str()).collect();
        assert_eq!(names, ["bob", "carol"]);
        assert!(
            found
                .iter()
                .all(|c| c.conversation_id == recent.conversation.id)
        );
    }

    #[test]
    fn talking_takes_two_who_posted_pair_by_pair() {
        let (alice, bob) = (id("alice"), id("bob"));
        let unanswered = conversation(&["alice", "bob"], &["alice"], 1, false);
        let silent = conversation(&["alice", "carol"], &[], 1, false);
        let group = conversation(
            &["bob", "alice", "dave", "erin"],
            &["bob", "dave"],
            2,
            false,
        );
        let since = Utc::now() - TimeDelta::minutes(30);
        let records = [unanswered, silent, group];
        assert!(latest_per_partner(&alice, &records, since).is_empty());
        let names: Vec<String> = latest_per_partner(&bob, &records, since)
            .into_iter()
            .map(|c| c.user_id.to_string())
            .collect();
        assert_eq!(
            names,
            ["dave"],
            "erin never posted, alice did not in the group"
        );
    }

    #[test]
    fn a_hidden_conversation_never_counts_for_whom_it_is_hidden() {
        let alice = id("alice");
        let mut record = conversation(&["bob", "alice"], &["bob", "alice"], 1, false);
        record.hidden_from.push(alice.clone());
        let since = Utc::now() - TimeDelta::minutes(30);
        assert!(latest_per_partner(&alice, &[record], since).is_empty());
    }

    #[test]
    fn partners_are_ordered_newest_activity_first() {
        let alice = id("alice");
        let with_bob = conversation(&["alice", "bob"], &["alice", "bob"], 10, false);
        let with_carol = conversation(&["carol", "alice"], &["alice", "carol"], 2, false);
        let found = latest_per_partner(
            &alice,
            &[with_bob, with_carol],
            Utc::now() - TimeDelta::hours(1),
        );
        let names: Vec<&str> = found.iter().map(|c| c.user_id.as_str()).collect();
        assert_eq!(names, ["carol", "bob"]);
    }

    #[test]
    fn a_block_either_way_unmakes_partners_and_hides_presence() {
        let filter = StatusFilter::default();
        let facts = CandidateFacts {
            status: PresenceStatus::Available,
            activity: None,
            blocks_user: false,
            blocked_by_user: false,
        };
        assert!(facts.admitted_by(&filter));
        assert!(
            !CandidateFacts {
                blocks_user: true,
                ..facts.clone()
            }
            .admitted_by(&filter)
        );
        assert!(
            !CandidateFacts {
                blocked_by_user: true,
                ..facts
            }
            .admitted_by(&filter)
        );
        let talked = Relationship {
            talked: true,
            ..Relationship::default()
        };
        assert!(talked.reveals_presence());
        assert!(!Relationship::default().reveals_presence());
        for blocked in [
            Relationship {
                viewer_blocks: true,
                ..talked
            },
            Relationship {
                subject_blocks: true,
                ..talked
            },
        ] {
            assert!(!blocked.reveals_presence());
        }
    }

    #[test]
    fn the_window_is_bounded() {
        assert!(ActiveWindow::from_secs(MAX_ACTIVE_WINDOW_SECS).is_ok());
        assert!(ActiveWindow::from_secs(MAX_ACTIVE_WINDOW_SECS + 1).is_err());
        let now = Utc::now();
        assert_eq!(
            ActiveWindow::from_secs(60).unwrap().since(now),
            now - TimeDelta::seconds(60)
        );
    }
}
