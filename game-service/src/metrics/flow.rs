//! The pairing funnel: connects, prompts, answers, sessions started and ended, expiries.
//!
//! Transition series are counted from what a transition committed (its
//! [`Changes`], compared with what its [`Tx`] loaded), once per commit: a
//! transition that lost its lease and ran again is counted for the run that
//! committed only.

use std::sync::LazyLock;

use prometheus::{Histogram, IntCounter, IntCounterVec};
use shared_types::game::{EndedReason, GameEvent, PromptKind, Reason, SessionKind, SessionState};

use super::{counter, counter_vec, histogram};
use crate::domain::{
    records::{ExpiryJob, SessionRecord},
    tx::{Changes, Tx},
};

/// `POST /v1/connect` calls that succeeded (a prompt or a session returned).
pub static CONNECTS: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "game_connects_total",
        "Connect calls that succeeded: the start of the pairing funnel",
    )
});

/// Prompts put to players, by `kind`.
pub static PROMPTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "game_prompts_total",
        "Prompts put to players (committed prompt events), by kind (invite, join)",
        &["kind"],
        &[&["invite"], &["join"]],
    )
});

/// Accept and reject calls that succeeded, by `decision`.
pub static ANSWERS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "game_answers_total",
        "Answers to prompts the service took (accept or reject calls that succeeded, a repeated \
         identical answer included), by decision (accept, reject)",
        &["decision"],
        &[&["accept"], &["reject"]],
    )
});

/// The reasons a solo session can have, in label form.
const SOLO_REASONS: [Reason; 7] = [
    Reason::NoPartner,
    Reason::ImUnavailable,
    Reason::Rejected,
    Reason::Declined,
    Reason::Expired,
    Reason::Superseded,
    Reason::Withdrawn,
];

/// Sessions that became active, once each, by `kind` and `reason`.
pub static SESSIONS_STARTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let mut known: Vec<[&str; 2]> = vec![["multiplayer", "none"]];
    known.extend(SOLO_REASONS.map(|reason| ["solo", reason_label(reason)]));
    let known: Vec<&[&str]> = known.iter().map(|values| values.as_slice()).collect();
    counter_vec(
        "game_sessions_started_total",
        "Sessions that became active, once each: a multiplayer session when its first invitee \
         joins (reason none), a solo session when it is created or a lobby turns solo (reason: \
         why it is solo), by kind (solo, multiplayer) and reason",
        &["kind", "reason"],
        &known,
    )
});

/// Sessions that ended, by `reason` (`left`, `finished`, `aborted`, `abandoned`).
pub static SESSIONS_ENDED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "game_sessions_ended_total",
        "Sessions that ended, by why (left, finished, aborted, abandoned)",
        &["reason"],
        &[&["left"], &["finished"], &["aborted"], &["abandoned"]],
    )
});

/// From a lobby's creation (when its invitations went out) to its first join.
pub static INVITE_TO_JOIN: LazyLock<Histogram> = LazyLock::new(|| {
    histogram(
        "game_invite_to_join_seconds",
        "Seconds from a lobby's creation (its invitations put to the invitees) to the session \
         going active when the first invitee joins",
        &[
            0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0,
        ],
    )
});

/// Expiry transitions that acted, by the `kind` of job.
pub static EXPIRIES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "game_expiries_total",
        "Expiry jobs that acted, i.e. whose transition committed at least one event (run by the \
         sweeper, or by a read finding a prompt past its deadline); a job that found nothing \
         left to do, or an idle check that found life and only scheduled the next check, is \
         not counted. By kind (invite, invitation, idle)",
        &["kind"],
        &[&["invite"], &["invitation"], &["idle"]],
    )
});

/// Counts what a committed transition did: `changes` is what `tx` committed.
pub fn record(tx: &Tx, changes: &Changes) {
    for (_, event) in &changes.events {
        if let GameEvent::Prompt(prompt) = event {
            let kind = match prompt.kind {
                PromptKind::Invite => "invite",
                PromptKind::Join => "join",
            };
            PROMPTS.with_label_values(&[kind]).inc();
        }
    }
    for session in &changes.sessions {
        if became_active(tx, session) {
            match (session.kind, session.reason) {
                (SessionKind::Multiplayer, _) => {
                    SESSIONS_STARTED
                        .with_label_values(&["multiplayer", "none"])
                        .inc();
                    let waited = (tx.now - session.created_at).as_seconds_f64();
                    INVITE_TO_JOIN.observe(waited.max(0.0));
                }
                (SessionKind::Solo, reason) => {
                    let reason = reason.map_or("none", reason_label);
                    SESSIONS_STARTED.with_label_values(&["solo", reason]).inc();
                }
            }
        }
        // A session is written as ended once: later transitions leave an ended session alone.
        if let Some(reason) = session.ended_reason {
            let label = match reason {
                EndedReason::Left => "left",
                EndedReason::Finished => "finished",
                EndedReason::Aborted => "aborted",
                EndedReason::Abandoned => "abandoned",
            };
            SESSIONS_ENDED.with_label_values(&[label]).inc();
        }
    }
}

/// Active now and not when the transition loaded it (or new): it became
/// active in this transition. Later writes of an active session (another
/// join, a sign of life) are not starts.
fn became_active(tx: &Tx, session: &SessionRecord) -> bool {
    session.state == SessionState::Active
        && tx.loaded_state(session.id) != Some(SessionState::Active)
}

/// An expiry job ran and committed; `acted`: it told somebody something.
pub fn record_expiry(job: &ExpiryJob, acted: bool) {
    if !acted {
        return;
    }
    let kind = match job {
        ExpiryJob::Invite { .. } => "invite",
        ExpiryJob::Invitation { .. } => "invitation",
        ExpiryJob::Idle { .. } => "idle",
        // Counted by outcome in `game_im_deliveries_total`.
        ExpiryJob::Announce { .. } | ExpiryJob::Activity { .. } => return,
    };
    EXPIRIES.with_label_values(&[kind]).inc();
}

/// The wire (snake_case) value of a reason: a bounded label.
fn reason_label(reason: Reason) -> &'static str {
    match reason {
        Reason::NoPartner => "no_partner",
        Reason::ImUnavailable => "im_unavailable",
        Reason::Rejected => "rejected",
        Reason::Declined => "declined",
        Reason::Expired => "expired",
        Reason::Superseded => "superseded",
        Reason::Withdrawn => "withdrawn",
        Reason::Unavailable => "unavailable",
        Reason::Full => "full",
    }
}

#[cfg(test)]
#[expect(clippy::expect_used, reason = "tests")]
mod tests {
    use std::collections::BTreeMap;

    use chrono::Utc;
    use shared_types::UserId;

    use super::*;

    #[test]
    fn reason_labels_are_the_wire_values() {
        for reason in SOLO_REASONS {
            let wire = serde_json::to_value(reason).expect("serializes");
            assert_eq!(wire.as_str(), Some(reason_label(reason)));
        }
    }

    #[test]
    fn a_session_starts_when_it_turns_active_or_is_made_active_not_at_each_write() {
        let host = UserId::parse("alice").expect("valid");
        let now = Utc::now();
        let players = BTreeMap::from([(host.clone(), Default::default())]);
        let mut lobby = SessionRecord::solo(&host, Reason::NoPartner, now, "default");
        lobby.kind = SessionKind::Multiplayer;
        lobby.state = SessionState::Waiting;
        let loading = |s: &SessionRecord| BTreeMap::from([(s.id, Some(s.clone()))]);
        let mut active = lobby.clone();
        active.state = SessionState::Active;

        let from_waiting = Tx::new(now, players.clone(), loading(&lobby));
        assert!(
            became_active(&from_waiting, &active),
            "waiting, then active"
        );
        let still_active = Tx::new(now, players.clone(), loading(&active));
        assert!(
            !became_active(&still_active, &active),
            "written again while active"
        );
        let fresh = SessionRecord::solo(&host, Reason::NoPartner, now, "default");
        let nothing_loaded = Tx::new(now, players, BTreeMap::new());
        assert!(became_active(&nothing_loaded, &fresh), "a new solo session");
        assert!(!became_active(&nothing_loaded, &lobby), "a new lobby waits");
    }
}
