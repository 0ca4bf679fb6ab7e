//! Graceful shutdown: on SIGTERM or SIGINT, event streams end first (they would
//! otherwise hold the server open until its timeout), then in-flight requests
//! finish and the server stops.

use actix_web::dev::ServerHandle;
use tokio::sync::watch;

/// Lets long-lived handlers (event streams) learn that the process is stopping.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    pub fn channel() -> (watch::Sender<bool>, Self) {
        let (tx, rx) = watch::channel(false);
        (tx, Self(rx))
    }

    /// Resolves once shutdown has begun.
    pub async fn begun(&mut self) {
        // An error means the sender is gone: the process is stopping anyway.
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }
}

/// Waits for SIGTERM or SIGINT, then ends the streams and stops the server.
pub async fn on_signal(trigger: watch::Sender<bool>, server: ServerHandle) {
    wait_for_signal().await;
    tracing::info!("shutting down: closing event streams, finishing requests");
    let _ = trigger.send(true);
    server.stop(true).await;
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
