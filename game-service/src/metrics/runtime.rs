//! What the service depends on and holds: IM calls and their breaker, event
//! streams, lock contention, store errors, the expiry backlog, half-way
//! commits the sweeper finished.

use std::{sync::LazyLock, time::Duration};

use prometheus::{Histogram, IntCounter, IntCounterVec, IntGauge};

use super::{counter, counter_vec, gauge, histogram};
use crate::{
    game::GameError,
    store::{OrphanSweep, StoreError},
};

/// Open `GET /v1/events` streams on this replica.
pub static EVENT_STREAMS_OPEN: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "game_event_streams_open",
        "Event streams (GET /v1/events) open on this replica",
    )
});

/// How a partners request to the IM service ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImOutcome {
    Ok,
    /// The IM service answered an error, or could not be reached.
    Error,
    /// No answer within `IM_TIMEOUT_MS`.
    Timeout,
    /// The circuit breaker was open: no call was made.
    BreakerOpen,
}

impl ImOutcome {
    fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Timeout => "timeout",
            Self::BreakerOpen => "breaker_open",
        }
    }
}

/// Partners requests to the IM service, by `outcome`.
pub static IM_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "game_im_requests_total",
        "Partners requests to the IM service, by outcome: ok, error (an error answer or \
         unreachable), timeout (slower than IM_TIMEOUT_MS), breaker_open (not called: the \
         circuit breaker was open)",
        &["outcome"],
        &[&["ok"], &["error"], &["timeout"], &["breaker_open"]],
    )
});

/// What the game service delivers to the IM service off the players' path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// A lobby's `game` message into a conversation.
    Announcement,
    /// Players' game activity (`in_game`), counted per report.
    Activity,
}

/// How a delivery's try ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Posted,
    /// The IM service was unavailable; another try is scheduled.
    Retried,
    /// Refused by the IM service, or still unavailable at the delivery's deadline.
    Dropped,
    /// An announcement whose lobby had ended or turned solo: nothing left to announce.
    Moot,
}

/// Deliveries to the IM service, by `kind` and `outcome`.
pub static DELIVERIES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let mut known: Vec<[&str; 2]> = Vec::new();
    for kind in ["announcement", "activity"] {
        for outcome in ["posted", "retried", "dropped", "moot"] {
            known.push([kind, outcome]);
        }
    }
    let known: Vec<&[&str]> = known.iter().map(|values| values.as_slice()).collect();
    counter_vec(
        "game_im_deliveries_total",
        "Deliveries to the IM service off the players' path, by kind (announcement: a \
         lobby's game message into a conversation; activity: a player's in_game report, \
         counted per report) and outcome: posted, retried (the IM service was unavailable; \
         tried again with backoff), dropped (refused, or still unavailable at the deadline: \
         an announcement when the lobby's invitations run out, a report after an hour), moot \
         (an announcement whose lobby ended or turned solo first)",
        &["kind", "outcome"],
        &known,
    )
});

pub fn delivery(kind: Delivery, outcome: DeliveryOutcome, count: u64) {
    let kind = match kind {
        Delivery::Announcement => "announcement",
        Delivery::Activity => "activity",
    };
    let outcome = match outcome {
        DeliveryOutcome::Posted => "posted",
        DeliveryOutcome::Retried => "retried",
        DeliveryOutcome::Dropped => "dropped",
        DeliveryOutcome::Moot => "moot",
    };
    DELIVERIES.with_label_values(&[kind, outcome]).inc_by(count);
}

/// How long the partners calls actually made took.
pub static IM_REQUEST_DURATION: LazyLock<Histogram> = LazyLock::new(|| {
    histogram(
        "game_im_request_duration_seconds",
        "Duration of the partners calls made to the IM service (whatever their outcome; \
         calls the breaker refused are not made and not observed)",
        &[
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ],
    )
});

/// Counts one partners request; `took` only when a call was made.
pub fn im_request(outcome: ImOutcome, took: Option<Duration>) {
    IM_REQUESTS.with_label_values(&[outcome.label()]).inc();
    if let Some(took) = took {
        IM_REQUEST_DURATION.observe(took.as_secs_f64());
    }
}

/// 1 while the IM circuit breaker is open (or letting its one probe through).
pub static IM_BREAKER_OPEN: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "game_im_breaker_open",
        "1 while the IM circuit breaker is open or probing (connects go solo without calling \
         the IM service), 0 while it is closed",
    )
});

/// Transitions that gave up because other transitions held their players.
pub static LOCK_CONTENTION: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "game_lock_contention_total",
        "Transitions that gave up for lock contention: requests answered 503 lock_contention \
         and sweeper expiry jobs left for a later sweep (waiting for a lock that is then \
         obtained is not counted)",
    )
});

/// Store failures on request paths and in the sweeper.
pub static STORE_ERRORS: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "game_store_errors_total",
        "Store errors (unavailable or corrupt data): requests answered 503 store_unavailable \
         or 500, and failed store calls of the expiry sweeper",
    )
});

/// Due expiry jobs not yet run, as the last sweep of this replica saw them.
pub static EXPIRY_BACKLOG: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "game_expiry_backlog",
        "Expiry jobs due and not yet run when this replica's last sweep began: those it \
         claimed plus those still waiting for a later sweep (jobs leased to a sweep elsewhere \
         are not due until their lease ends)",
    )
});

/// Commits spanning Redis Cluster slots that their writer left half-way and
/// the sweeper finished, by how (`rolled_forward`, `aborted`).
pub static ORPHANED_COMMITS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "game_orphaned_commits_finished_total",
        "Commits spanning Redis Cluster slots left half-way by their writer (a replica that \
         died or lost its lease mid-commit) that the sweeper finished: rolled_forward (every \
         slot was prepared: applied in full) or aborted (not every slot was: nothing applied); \
         those finished first by a request locking one of their players are not counted",
        &["outcome"],
        &[&["rolled_forward"], &["aborted"]],
    )
});

/// Counts what a sweep of orphaned commits finished, and its store failures.
pub fn count_orphan_sweep(swept: &OrphanSweep) {
    ORPHANED_COMMITS
        .with_label_values(&["rolled_forward"])
        .inc_by(swept.rolled_forward);
    ORPHANED_COMMITS
        .with_label_values(&["aborted"])
        .inc_by(swept.aborted);
    for err in &swept.failed {
        count_store_failure(err);
    }
}

/// Counts a failed transition or store call under the series it belongs to
/// (the same split as its problem: `lock_contention` or a store error).
pub fn count_failure(err: &GameError) {
    match err {
        GameError::Busy => LOCK_CONTENTION.inc(),
        GameError::Store(err) => count_store_failure(err),
        GameError::Refused(_) => {}
    }
}

/// [`count_failure`] for a store call.
pub fn count_store_failure(err: &StoreError) {
    match err {
        StoreError::LeaseLost | StoreError::Contended => LOCK_CONTENTION.inc(),
        StoreError::Unavailable(_) | StoreError::Corrupt(_) => STORE_ERRORS.inc(),
    }
}
