//! The IM service's own Prometheus series, beside the HTTP ones `service_kit` serves.

use std::sync::LazyLock;

use prometheus::{IntCounter, IntGauge, core::Collector};

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

/// What `/metrics` serves besides the HTTP series.
pub fn collectors() -> Vec<Box<dyn Collector>> {
    vec![
        Box::new(STORE_ERRORS.clone()),
        Box::new(EVENT_STREAMS_OPEN.clone()),
        Box::new(EVENTS_UNSENT.clone()),
    ]
}
