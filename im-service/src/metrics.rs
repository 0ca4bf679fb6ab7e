//! The IM service's own Prometheus series, beside the HTTP ones `service_kit` serves.

use std::sync::LazyLock;

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, core::Collector};

/// Requests that failed on the store (answered 503 `store_unavailable` or 500).
#[expect(clippy::expect_used, reason = "a constant, valid metric definition")]
pub static STORE_ERRORS: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new(
        "im_store_errors_total",
        "Requests that failed on the store: unavailable (answered 503 store_unavailable) or \
         unexpected (500)",
    )
    .expect("valid metric")
});

/// Event streams open on this replica.
#[expect(clippy::expect_used, reason = "a constant, valid metric definition")]
pub static EVENT_STREAMS_OPEN: LazyLock<IntGauge> = LazyLock::new(|| {
    IntGauge::new(
        "im_event_streams_open",
        "IM event streams (GET /v1/events) open on this replica",
    )
    .expect("valid metric")
});

/// Events a fan-out could not append (the change they tell of was stored; Redis only).
#[expect(clippy::expect_used, reason = "a constant, valid metric definition")]
pub static EVENTS_UNSENT: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new(
        "im_events_unsent_total",
        "IM events a fan-out could not append to a user's stream (the change itself was stored; \
         clients read their views again when their stream reopens)",
    )
    .expect("valid metric")
});

/// How a launch from a conversation (`POST /v1/conversations/{id}/games`) ended, once it got
/// as far as looking for invitees: the `outcome` label of `im_game_launches_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaunchOutcome {
    /// 201: the game service opened the lobby.
    Created,
    /// 409 `nobody_to_invite`: nobody eligible, the game service was not called.
    NobodyToInvite,
    /// 409 `already_playing` from the game service.
    AlreadyPlaying,
    /// 400 `unknown_mode` from the game service.
    UnknownMode,
    /// Another 400 from the game service (answered 400 `invalid_request`).
    Refused,
    /// The game service answered 5xx (answered 503 `game_unavailable`).
    GameError,
    /// Connection refused or reset before an answer (503 `game_unavailable`).
    Unreachable,
    /// Slower than `GAME_TIMEOUT_MS` (503 `game_unavailable`).
    Timeout,
    /// An answer that is not the contract's: undecodable, or a status it does not give
    /// (503 `game_unavailable`, logged as an error).
    BadAnswer,
    /// The game service refused the IM service's token (401/403): mismatched secrets or
    /// issuer (503 `game_unavailable`, logged as an error).
    Misconfigured,
}

impl LaunchOutcome {
    pub const ALL: [Self; 10] = [
        Self::Created,
        Self::NobodyToInvite,
        Self::AlreadyPlaying,
        Self::UnknownMode,
        Self::Refused,
        Self::GameError,
        Self::Unreachable,
        Self::Timeout,
        Self::BadAnswer,
        Self::Misconfigured,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::NobodyToInvite => "nobody_to_invite",
            Self::AlreadyPlaying => "already_playing",
            Self::UnknownMode => "unknown_mode",
            Self::Refused => "refused",
            Self::GameError => "game_error",
            Self::Unreachable => "unreachable",
            Self::Timeout => "timeout",
            Self::BadAnswer => "bad_answer",
            Self::Misconfigured => "misconfigured",
        }
    }
}

/// Launches from a conversation, by outcome (every label exists at 0 from the start).
#[expect(clippy::expect_used, reason = "a constant, valid metric definition")]
pub static GAME_LAUNCHES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let vec = IntCounterVec::new(
        Opts::new(
            "im_game_launches_total",
            "Games launched from a conversation (POST /v1/conversations/{id}/games) that got as \
             far as looking for invitees, by outcome: created, nobody_to_invite (the game service \
             was not called), already_playing, unknown_mode, refused (another 400), game_error \
             (5xx), unreachable, timeout (slower than GAME_TIMEOUT_MS), bad_answer, misconfigured \
             (the game service refused the IM service's token)",
        ),
        &["outcome"],
    )
    .expect("valid metric");
    for outcome in LaunchOutcome::ALL {
        vec.with_label_values(&[outcome.label()]);
    }
    vec
});

/// Counts one launch.
pub fn game_launch(outcome: LaunchOutcome) {
    GAME_LAUNCHES.with_label_values(&[outcome.label()]).inc();
}

/// What `/metrics` serves besides the HTTP series.
pub fn collectors() -> Vec<Box<dyn Collector>> {
    vec![
        Box::new(STORE_ERRORS.clone()),
        Box::new(EVENT_STREAMS_OPEN.clone()),
        Box::new(EVENTS_UNSENT.clone()),
        Box::new(GAME_LAUNCHES.clone()),
    ]
}
