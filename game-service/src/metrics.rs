//! The game's own Prometheus series, beside the HTTP ones `service_kit::ops` serves.

use std::sync::LazyLock;

use prometheus::{IntCounterVec, Opts, core::Collector};
use shared_types::game::EndedReason;

use crate::domain::tx::Changes;

/// Sessions that ended, by `reason` (`left`, `finished`, `aborted`, `abandoned`).
#[expect(clippy::expect_used, reason = "a constant, valid metric definition")]
pub static SESSIONS_ENDED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    IntCounterVec::new(
        Opts::new(
            "game_sessions_ended_total",
            "Sessions that ended, by why (left, finished, aborted, abandoned)",
        ),
        &["reason"],
    )
    .expect("valid metric")
});

/// What `/metrics` serves besides the HTTP series.
pub fn collectors() -> Vec<Box<dyn Collector>> {
    vec![Box::new(SESSIONS_ENDED.clone())]
}

/// Counts what a committed transition did. A session is written as ended
/// once: later transitions leave an ended session alone.
pub fn record(changes: &Changes) {
    for session in &changes.sessions {
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
