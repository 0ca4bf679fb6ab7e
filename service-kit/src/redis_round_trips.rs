//! Redis round trips counted, in all and by the HTTP route whose handler sent them: where a service's store work comes from.

use std::{future::Future, sync::LazyLock};

use prometheus::{IntCounter, IntCounterVec, Opts};

/// Requests this process sent to Redis (a command, a script call or a whole
/// pipeline counts once): the `redis_round_trips_total` metric, which the
/// benchmark divides by the work done.
#[expect(clippy::expect_used, reason = "a constant, valid metric name")]
pub static ROUND_TRIPS: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new(
        "redis_round_trips_total",
        "Requests sent to Redis (a pipeline or a script call counts once)",
    )
    .expect("valid metric")
});

/// The same, by the route (`METHOD /pattern`) whose request sent them; `background` for
/// work no request waits for (sweeps, feeds, the live part of event streams).
#[expect(clippy::expect_used, reason = "a constant, valid metric name")]
pub static BY_ROUTE: LazyLock<IntCounterVec> = LazyLock::new(|| {
    IntCounterVec::new(
        Opts::new(
            "redis_round_trips_by_route_total",
            "Requests sent to Redis, by the HTTP route whose handler sent them",
        ),
        &["route"],
    )
    .expect("valid metric")
});

static BACKGROUND: LazyLock<IntCounter> =
    LazyLock::new(|| BY_ROUTE.with_label_values(&["background"]));

tokio::task_local! {
    /// The counter of the route being served by this task.
    static ROUTE: IntCounter;
}

/// Counts one round trip, against the route being served if any.
pub(crate) fn count() {
    ROUND_TRIPS.inc();
    if ROUTE.try_with(IntCounter::inc).is_err() {
        BACKGROUND.inc();
    }
}

/// Runs `work` with its round trips counted against `route`.
pub async fn counted_as<F: Future>(route: &str, work: F) -> F::Output {
    ROUTE
        .scope(BY_ROUTE.with_label_values(&[route]), work)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(route: &str) -> u64 {
        BY_ROUTE.with_label_values(&[route]).get()
    }

    #[tokio::test]
    async fn round_trips_count_against_the_route_being_served_else_background() {
        let (total, background) = (ROUND_TRIPS.get(), of("background"));
        counted_as("POST /test/a", async {
            count();
            count();
        })
        .await;
        counted_as("GET /test/b", async { count() }).await;
        count();
        assert_eq!(of("POST /test/a"), 2);
        assert_eq!(of("GET /test/b"), 1);
        assert!(of("background") > background);
        assert!(ROUND_TRIPS.get() >= total + 4);
    }
}
