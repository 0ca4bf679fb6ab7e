//! The bound: plain `GET /healthz` and Redis `PING` round trips with the same client and concurrency.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use anyhow::Context;
use serde::Serialize;

use crate::{
    api::Api,
    failure::Failure,
    stats::{Errors, Latency, LatencySummary},
};

/// Round trips of one kind for a fixed time.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RoundTrips {
    pub per_sec: f64,
    pub count: u64,
    pub elapsed_secs: f64,
    pub latency: LatencySummary,
    pub errors: Errors,
}

#[derive(Default)]
struct Tally {
    latency: Latency,
    errors: Errors,
}

/// `concurrency` loops calling `once` until `duration` has passed.
async fn measure<F, Fut>(concurrency: usize, duration: Duration, once: F) -> RoundTrips
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), Failure>> + Send,
{
    let tally = Arc::new(Mutex::new(Tally::default()));
    let start = Instant::now();
    let until = start + duration;
    let loops = (0..concurrency).map(|_| {
        let once = once.clone();
        let tally = Arc::clone(&tally);
        tokio::spawn(async move {
            while Instant::now() < until {
                let sent = Instant::now();
                let result = once().await;
                let took = sent.elapsed();
                let mut tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
                match result {
                    Ok(()) => tally.latency.record(took),
                    Err(failure) => tally.errors.record(&failure),
                }
            }
        })
    });
    futures_util::future::join_all(loops).await;
    let elapsed = start.elapsed().as_secs_f64();
    let tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
    let count = tally.latency.count();
    RoundTrips {
        per_sec: rate(count, elapsed),
        count,
        elapsed_secs: elapsed,
        latency: tally.latency.summary(),
        errors: tally.errors.clone(),
    }
}

/// `GET /healthz` on the game service.
pub async fn healthz(api: &Api, concurrency: usize, duration: Duration) -> RoundTrips {
    let api = api.clone();
    measure(concurrency, duration, move || {
        let api = api.clone();
        async move { api.healthz().await }
    })
    .await
}

/// Redis `PING` over one multiplexed connection (how the services talk to Redis).
pub async fn redis_ping(
    url: &str,
    concurrency: usize,
    duration: Duration,
    timeout: Duration,
) -> anyhow::Result<RoundTrips> {
    let client = redis::Client::open(url).with_context(|| format!("Redis URL {url:?}"))?;
    let connection = client
        .get_multiplexed_async_connection()
        .await
        .with_context(|| format!("connecting to Redis at {url}"))?;
    Ok(measure(concurrency, duration, move || {
        let mut connection = connection.clone();
        async move {
            let ping = redis::cmd("PING");
            match tokio::time::timeout(timeout, ping.query_async::<String>(&mut connection)).await {
                Err(_elapsed) => Err(Failure::Timeout { step: "redis_ping" }),
                Ok(Err(err)) => Err(Failure::Transport {
                    step: "redis_ping",
                    detail: err.to_string(),
                }),
                Ok(Ok(_pong)) => Ok(()),
            }
        }
    })
    .await)
}

/// Events per second, 0 for an empty interval.
pub fn rate(count: u64, elapsed_secs: f64) -> f64 {
    if elapsed_secs > 0.0 {
        count as f64 / elapsed_secs
    } else {
        0.0
    }
}
