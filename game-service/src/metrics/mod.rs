//! The game's own Prometheus series, beside the HTTP ones `service_kit` serves.
//!
//! Every series is a process-wide static, registered by `startup` through
//! [`collectors`]; counting is an atomic add (no store round trip, no lock
//! beyond a labelled series' lookup). Label values are fixed sets, so the
//! number of series is bounded whatever callers send.
//!
//! # Layout
//! - [`flow`]: the pairing funnel, counted from committed transitions and answered calls.
//! - [`runtime`]: what the service depends on: IM calls and breaker, event
//!   streams, lock contention, store errors, the expiry backlog, orphaned commits.

pub mod flow;
pub mod runtime;

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, core::Collector,
};

pub use self::{flow::*, runtime::*};

/// What `/metrics` serves besides the HTTP series.
pub fn collectors() -> Vec<Box<dyn Collector>> {
    vec![
        Box::new(CONNECTS.clone()),
        Box::new(PROMPTS.clone()),
        Box::new(ANSWERS.clone()),
        Box::new(SESSIONS_STARTED.clone()),
        Box::new(SESSIONS_ENDED.clone()),
        Box::new(INVITE_TO_JOIN.clone()),
        Box::new(EXPIRIES.clone()),
        Box::new(EVENT_STREAMS_OPEN.clone()),
        Box::new(IM_REQUESTS.clone()),
        Box::new(DELIVERIES.clone()),
        Box::new(IM_REQUEST_DURATION.clone()),
        Box::new(IM_BREAKER_OPEN.clone()),
        Box::new(LOCK_CONTENTION.clone()),
        Box::new(STORE_ERRORS.clone()),
        Box::new(EXPIRY_BACKLOG.clone()),
        Box::new(ORPHANED_COMMITS.clone()),
    ]
}

// Metric definitions are constants: a bad one is a bug found by the first test.

#[expect(clippy::expect_used, reason = "a constant, valid metric definition")]
fn counter(name: &str, help: &str) -> IntCounter {
    IntCounter::new(name, help).expect("valid metric")
}

/// A labelled counter whose `known` label values exist (at 0) from the start,
/// so dashboards and `rate()` see every series before its first event.
#[expect(clippy::expect_used, reason = "a constant, valid metric definition")]
fn counter_vec(name: &str, help: &str, labels: &[&str], known: &[&[&str]]) -> IntCounterVec {
    let vec = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    for values in known {
        vec.with_label_values(values);
    }
    vec
}

#[expect(clippy::expect_used, reason = "a constant, valid metric definition")]
fn gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::new(name, help).expect("valid metric")
}

#[expect(clippy::expect_used, reason = "a constant, valid metric definition")]
fn histogram(name: &str, help: &str, buckets: &[f64]) -> Histogram {
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))
        .expect("valid metric")
}

#[cfg(test)]
#[expect(clippy::expect_used, reason = "tests")]
mod tests {
    use prometheus::Registry;

    use super::*;

    #[test]
    fn every_series_registers_under_its_contract_name_with_its_known_labels() {
        let registry = Registry::new();
        for collector in collectors() {
            registry
                .register(collector)
                .expect("distinct, valid series");
        }
        let names: Vec<String> = registry
            .gather()
            .iter()
            .map(|family| family.name().to_owned())
            .collect();
        for name in [
            "game_connects_total",
            "game_prompts_total",
            "game_answers_total",
            "game_sessions_started_total",
            "game_invite_to_join_seconds",
            "game_expiries_total",
            "game_event_streams_open",
            "game_im_requests_total",
            "game_im_request_duration_seconds",
            "game_im_breaker_open",
            "game_im_deliveries_total",
            "game_lock_contention_total",
            "game_store_errors_total",
            "game_expiry_backlog",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} missing: {names:?}");
        }
        let started = registry
            .gather()
            .into_iter()
            .find(|family| family.name() == "game_sessions_started_total")
            .expect("registered");
        assert_eq!(
            started.get_metric().len(),
            8,
            "multiplayer/none and solo with each of the seven reasons"
        );
    }
}
