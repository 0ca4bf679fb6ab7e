//! Who counts as a partner: the "who is this user talking to right now?" rule (docs/CONTRACT.md, "Partners").

use std::{collections::HashSet, time::Duration};

use chrono::{DateTime, TimeDelta, Utc};
use shared_types::{UserId, im::Conversation, presence::PresenceStatus};
use uuid::Uuid;

/// Longest accepted `active_within_secs`: a year. Conversations expire long before (retention),
/// so a larger window would mean nothing more; the bound keeps date arithmetic in range.
pub const MAX_ACTIVE_WINDOW_SECS: u64 = 365 * 24 * 3600;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidPartnersQuery {
    #[error("unknown presence status {0:?} in `status`: expected available, busy, away or offline")]
    UnknownStatus(String),
    #[error("`active_within_secs` is at most {MAX_ACTIVE_WINDOW_SECS}, got {0}")]
    WindowTooLong(u64),
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

/// A participant of one of the user's live conversations, before the presence filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerCandidate {
    pub user_id: UserId,
    pub conversation_id: Uuid,
    pub last_activity_at: DateTime<Utc>,
}

/// The other participants of `user`'s open conversations active since `since`, each once with its
/// most recent conversation, newest activity first (ties broken by user id, so answers are stable).
pub fn latest_per_partner(
    user: &UserId,
    conversations: &[Conversation],
    since: DateTime<Utc>,
) -> Vec<PartnerCandidate> {
    let mut live: Vec<&Conversation> = conversations
        .iter()
        .filter(|c| !c.closed && c.last_activity_at >= since && c.participants.contains(user))
        .collect();
    live.sort_by(|a, b| {
        b.last_activity_at
            .cmp(&a.last_activity_at)
            .then(a.id.cmp(&b.id))
    });
    let mut seen = HashSet::new();
    let mut candidates = Vec::new();
    for conversation in live {
        for participant in &conversation.participants {
            if participant != user && seen.insert(participant) {
                candidates.push(PartnerCandidate {
                    user_id: participant.clone(),
                    conversation_id: conversation.id,
                    last_activity_at: conversation.last_activity_at,
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

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    fn id(raw: &str) -> UserId {
        UserId::parse(raw).unwrap()
    }

    fn conversation(people: &[&str], minutes_ago: i64, closed: bool) -> Conversation {
        let at = Utc::now() - TimeDelta::minutes(minutes_ago);
        Conversation {
            id: Uuid::new_v4(),
            participants: people.iter().map(|p| id(p)).collect(),
            created_at: at,
            last_activity_at: at,
            closed,
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
    fn each_partner_appears_once_with_its_most_recent_open_conversation() {
        let alice = id("alice");
        let old = conversation(&["alice", "bob"], 20, false);
        let recent = conversation(&["alice", "bob", "carol"], 5, false);
        let closed = conversation(&["alice", "dave"], 1, true);
        let stale = conversation(&["alice", "erin"], 120, false);
        let someone_elses = conversation(&["frank", "gina"], 1, false);
        let since = Utc::now() - TimeDelta::minutes(30);
        let found = latest_per_partner(
            &alice,
            &[old, recent.clone(), closed, stale, someone_elses],
            since,
        );
        let names: Vec<&str> = found.iter().map(|c| c.user_id.as_str()).collect();
        assert_eq!(names, ["bob", "carol"]);
        assert!(found.iter().all(|c| c.conversation_id == recent.id));
    }

    #[test]
    fn partners_are_ordered_newest_activity_first() {
        let alice = id("alice");
        let with_bob = conversation(&["alice", "bob"], 10, false);
        let with_carol = conversation(&["carol", "alice"], 2, false);
        let found = latest_per_partner(
            &alice,
            &[with_bob, with_carol],
            Utc::now() - TimeDelta::hours(1),
        );
        let names: Vec<&str> = found.iter().map(|c| c.user_id.as_str()).collect();
        assert_eq!(names, ["carol", "bob"]);
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
