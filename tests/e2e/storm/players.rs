//! The storm's players (one per member, reachable through either replica), its counters, and what each group reports for the final checks.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::atomic::AtomicUsize,
};

use chrono::{DateTime, Utc};
use rand::{Rng, rngs::StdRng};
use shared_types::game::{PlayerState, SessionKind};
use uuid::Uuid;

use super::{acknowledged::Acknowledged, outage::Outages};
use crate::helpers::Player;

/// One player, reachable through either replica.
#[derive(Clone)]
pub(super) struct Member {
    pub(super) primary: Player,
    pub(super) other: Player,
}

impl Member {
    pub(super) fn id(&self) -> &str {
        &self.primary.id
    }

    /// Either replica, at random: a flow hops between processes.
    pub(super) fn pick(&self, rng: &mut StdRng) -> &Player {
        if rng.random_bool(0.5) {
            &self.primary
        } else {
            &self.other
        }
    }
}

#[derive(Default)]
pub(super) struct Stats {
    pub(super) requests: AtomicUsize,
    pub(super) busy_retries: AtomicUsize,
    pub(super) refused: AtomicUsize,
    /// First answers refused because the lobby had filled (409 `prompt_closed`, `full`).
    pub(super) refused_full: AtomicUsize,
    /// Players seen holding nothing right after such a refusal.
    pub(super) nothing_after_full: AtomicUsize,
    pub(super) mutual_checked: AtomicUsize,
    pub(super) strict_reconnects: AtomicUsize,
    pub(super) contrary_races: AtomicUsize,
    /// Presence flips made: to `offline`, and back to `available`.
    pub(super) went_offline: AtomicUsize,
    pub(super) went_available: AtomicUsize,
    /// First answers refused because an offline flip had closed the prompt (`unavailable`).
    pub(super) refused_unavailable: AtomicUsize,
    /// Connects while offline, and the solo sessions `no_partner` they made.
    pub(super) offline_connects: AtomicUsize,
    pub(super) offline_no_partner: AtomicUsize,
    /// Member-rounds an offline flip could reach behind the member's back: their before/after
    /// comparisons were skipped.
    pub(super) touched_by_flips: AtomicUsize,
    /// What connects answered: invite, join, or a solo session with its reason.
    pub(super) connects: std::sync::Mutex<BTreeMap<String, usize>>,
    /// Groups done playing: how far the storm is.
    pub(super) groups_done: AtomicUsize,
    /// Rounds begun, over all groups.
    pub(super) rounds_played: AtomicUsize,
    /// Refusals of a failing-over store, tolerated or not.
    pub(super) outages: Outages,
}

impl Stats {
    pub(super) fn connected(&self, state: &PlayerState) {
        let what = match (&state.prompt, &state.session) {
            (Some(p), _) => format!("{:?}", p.kind),
            (None, Some(s)) if s.kind == SessionKind::Solo => format!("solo {:?}", s.reason),
            (None, Some(s)) => format!("{:?} {:?}", s.kind, s.state),
            (None, None) => "nothing".to_owned(),
        };
        let what = if state.degraded {
            format!("{what} degraded")
        } else {
            what
        };
        if let Ok(mut connects) = self.connects.lock() {
            *connects.entry(what).or_default() += 1;
        }
    }

    pub(super) fn degraded(&self) -> usize {
        self.connects
            .lock()
            .map(|c| {
                c.iter()
                    .filter(|(k, _)| k.ends_with("degraded"))
                    .map(|(_, n)| n)
                    .sum()
            })
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Decision {
    Accept,
    Reject,
}

/// What a group did that the final checks need.
#[derive(Default)]
pub(super) struct GroupReport {
    /// Prompts answered with a 200: (player, prompt, answer).
    pub(super) answers: Vec<(String, Uuid, Decision)>,
    /// Players who left a session at least once.
    pub(super) left: HashSet<String>,
    /// The sessions they left: (player, session).
    pub(super) left_sessions: HashSet<(String, Uuid)>,
    pub(super) actions: BTreeMap<&'static str, usize>,
    /// The modes connects asked for ("none" for no body).
    pub(super) modes_asked: BTreeMap<&'static str, usize>,
    /// Lobbies opened by accepted invite prompts: session id → the invite prompt's mode.
    pub(super) lobbies: HashMap<Uuid, String>,
    /// Join prompts seen: (the lobby they lead to, their mode).
    pub(super) join_modes: HashSet<(Uuid, String)>,
    /// Players who flipped their IM presence, and how.
    pub(super) flips: HashMap<String, Flip>,
    /// What the services acknowledged: conversations, messages, active sessions.
    pub(super) acknowledged: Acknowledged,
}

/// One player's presence flips.
#[derive(Debug, Clone, Default)]
pub(super) struct Flip {
    /// When they went `offline` (the request sent), oldest first.
    pub(super) offline_at: Vec<DateTime<Utc>>,
    /// Still `offline` when the storm ended.
    pub(super) offline_at_end: bool,
}

impl GroupReport {
    pub(super) fn merge(reports: Vec<GroupReport>) -> GroupReport {
        let mut all = GroupReport::default();
        for report in reports {
            all.answers.extend(report.answers);
            all.left.extend(report.left);
            all.left_sessions.extend(report.left_sessions);
            for (name, count) in report.actions {
                *all.actions.entry(name).or_default() += count;
            }
            for (mode, count) in report.modes_asked {
                *all.modes_asked.entry(mode).or_default() += count;
            }
            all.lobbies.extend(report.lobbies);
            all.join_modes.extend(report.join_modes);
            all.flips.extend(report.flips);
            all.acknowledged.extend(report.acknowledged);
        }
        all
    }
}
