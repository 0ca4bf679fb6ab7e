//! Graceful shutdown, the same in both services: drain, end event streams, finish requests.
//!
//! On SIGTERM (or SIGINT) a replica
//! 1. answers `/readyz` with 503 `draining` and goes on serving for
//!    `SHUTDOWN_DELAY_SECS`, so that load balancers drop it from their
//!    endpoints before it stops taking traffic;
//! 2. ends every event stream, each with its own `retry` (one second plus a
//!    random share of `SHUTDOWN_RECONNECT_JITTER_MS`), so that its clients
//!    reconnect to other replicas spread over time, not all in the same instant;
//! 3. stops accepting connections and gives requests in flight up to
//!    `SHUTDOWN_TIMEOUT_SECS`, then the process exits 0.
//!
//! A second signal skips what is left of the delay.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use actix_web::dev::ServerHandle;
use rand::Rng;
use tokio::sync::watch;

use crate::config::env_or;

/// The `retry` every reconnect advice starts from.
pub const RECONNECT_BASE: Duration = Duration::from_secs(1);

/// `SHUTDOWN_*` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownSettings {
    /// `SHUTDOWN_DELAY_SECS`: how long `/readyz` says 503 while the replica still serves.
    pub delay: Duration,
    /// `SHUTDOWN_TIMEOUT_SECS`: how long requests in flight get to finish.
    pub timeout: Duration,
    /// `SHUTDOWN_RECONNECT_JITTER_MS`: the spread of the `retry` ending streams get.
    pub reconnect_jitter: Duration,
}

impl Default for ShutdownSettings {
    /// No delay: on a laptop Ctrl-C stops at once; a deployment sets the delay.
    fn default() -> Self {
        Self {
            delay: Duration::ZERO,
            timeout: Duration::from_secs(10),
            reconnect_jitter: Duration::from_secs(5),
        }
    }
}

impl ShutdownSettings {
    pub fn from_env() -> anyhow::Result<Self> {
        let default = Self::default();
        let settings = Self {
            delay: Duration::from_secs(env_or("SHUTDOWN_DELAY_SECS", default.delay.as_secs())?),
            timeout: Duration::from_secs(env_or(
                "SHUTDOWN_TIMEOUT_SECS",
                default.timeout.as_secs(),
            )?),
            reconnect_jitter: Duration::from_millis(env_or(
                "SHUTDOWN_RECONNECT_JITTER_MS",
                u64::try_from(default.reconnect_jitter.as_millis()).unwrap_or(u64::MAX),
            )?),
        };
        anyhow::ensure!(
            settings.timeout >= Duration::from_secs(1),
            "SHUTDOWN_TIMEOUT_SECS must be at least 1"
        );
        Ok(settings)
    }

    /// The longest a replica takes from the signal to its exit; a deployment's
    /// grace period (`terminationGracePeriodSeconds`) must be longer.
    pub fn worst_case(&self) -> Duration {
        self.delay + self.timeout + Duration::from_secs(1)
    }
}

/// What handlers see of a shutdown: whether the replica drains, and when
/// event streams must end.
#[derive(Clone)]
pub struct Shutdown {
    draining: Arc<AtomicBool>,
    streams_end: watch::Receiver<bool>,
    reconnect_jitter: Duration,
}

impl Shutdown {
    /// `true` from the signal on: `/readyz` answers 503.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Resolves once event streams must end (after the drain delay).
    pub async fn streams_end(&mut self) {
        // An error means the trigger is gone: the process is stopping anyway.
        let _ = self.streams_end.wait_for(|end| *end).await;
    }

    /// The `retry` for a stream ending now: one second plus a random share of
    /// the jitter, drawn per stream.
    pub fn reconnect_advice(&self) -> Duration {
        let jitter_ms = u64::try_from(self.reconnect_jitter.as_millis()).unwrap_or(u64::MAX);
        RECONNECT_BASE + Duration::from_millis(rand::rng().random_range(0..=jitter_ms))
    }
}

/// Runs the shutdown sequence; held by the task that waits for the signal.
pub struct Trigger {
    draining: Arc<AtomicBool>,
    streams_end: watch::Sender<bool>,
    settings: ShutdownSettings,
}

/// A trigger and the view handlers get of it.
pub fn channel(settings: ShutdownSettings) -> (Trigger, Shutdown) {
    let draining = Arc::new(AtomicBool::new(false));
    let (tx, rx) = watch::channel(false);
    let shutdown = Shutdown {
        draining: draining.clone(),
        streams_end: rx,
        reconnect_jitter: settings.reconnect_jitter,
    };
    (
        Trigger {
            draining,
            streams_end: tx,
            settings,
        },
        shutdown,
    )
}

impl Trigger {
    /// Waits for SIGTERM or SIGINT, then drains and stops `servers` in order
    /// (the API server first, then the metrics server, which answers scrapes
    /// until the end).
    pub async fn on_signal(self, servers: Vec<ServerHandle>) {
        wait_for_signal().await;
        self.run(servers, wait_for_signal()).await;
    }

    /// The sequence itself; `cut_short` (a second signal) ends the delay early.
    pub async fn run(self, servers: Vec<ServerHandle>, cut_short: impl Future<Output = ()>) {
        self.draining.store(true, Ordering::Relaxed);
        tracing::info!(
            delay_secs = self.settings.delay.as_secs(),
            "shutting down: /readyz answers 503, still serving until the delay is over"
        );
        tokio::select! {
            () = tokio::time::sleep(self.settings.delay) => {}
            () = cut_short => tracing::info!("second signal: ending the drain delay now"),
        }
        tracing::info!("shutting down: ending event streams, finishing requests in flight");
        let _ = self.streams_end.send(true);
        for server in servers {
            server.stop(true).await;
        }
    }
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(err) => {
            tracing::warn!(%err, "cannot listen for SIGTERM; only Ctrl-C stops the service");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_advice_stays_within_base_and_base_plus_jitter_and_varies() {
        let (_trigger, shutdown) = channel(ShutdownSettings::default());
        let advice: Vec<Duration> = (0..200).map(|_| shutdown.reconnect_advice()).collect();
        let top = RECONNECT_BASE + ShutdownSettings::default().reconnect_jitter;
        assert!(advice.iter().all(|d| *d >= RECONNECT_BASE && *d <= top));
        let distinct: std::collections::BTreeSet<_> = advice.iter().collect();
        assert!(distinct.len() > 50, "advice is not spread: {distinct:?}");
    }

    #[tokio::test]
    async fn draining_starts_at_once_and_streams_end_only_after_the_delay() {
        let settings = ShutdownSettings {
            delay: Duration::from_secs(3600),
            ..ShutdownSettings::default()
        };
        let (trigger, mut shutdown) = channel(settings);
        let (cut_tx, cut_rx) = tokio::sync::oneshot::channel::<()>();
        let sequence = tokio::spawn(trigger.run(Vec::new(), async move {
            let _ = cut_rx.await;
        }));
        tokio::task::yield_now().await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !shutdown.is_draining() {
            assert!(tokio::time::Instant::now() < deadline, "never drained");
            tokio::task::yield_now().await;
        }
        // An hour's delay: the streams have not been told to end.
        let early = tokio::time::timeout(Duration::from_millis(50), shutdown.streams_end()).await;
        assert!(early.is_err(), "streams ended before the delay");
        // A second signal cuts the delay short; then the streams end.
        let _ = cut_tx.send(());
        let ended = tokio::time::timeout(Duration::from_secs(5), shutdown.streams_end()).await;
        assert!(ended.is_ok(), "the streams did not end after the cut");
        assert!(sequence.await.is_ok(), "the sequence did not finish");
    }
}
