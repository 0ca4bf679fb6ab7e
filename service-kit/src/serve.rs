//! What both services run beside their API: `/metrics` (on its own port if
//! asked), the shutdown sequence of [`crate::shutdown`], and the socket options
//! that let a vanished client's connection go ([`on_connect`]).

use std::{any::Any, io, sync::Arc, time::Duration};

use actix_web::{
    dev::{Extensions, Server},
    rt::net::TcpStream,
};
use actix_web_prom::PrometheusMetrics;
use prometheus::core::Collector;
use socket2::{SockRef, TcpKeepalive};

use crate::{
    events::sse::KEEP_ALIVE,
    metrics::Exposition,
    ops::{Readiness, ReadinessCheck},
    shutdown::{Shutdown, ShutdownSettings, Trigger},
};

/// How long data sent on an API connection may stay unacknowledged before the
/// kernel gives the connection up (`TCP_USER_TIMEOUT`, Linux). A client that
/// vanished without a FIN or RST acknowledges nothing, while every write to it
/// still succeeds into the send buffer: without this the kernel retransmits for
/// about 15 minutes (`tcp_retries2`), and its event stream is held all along.
/// An event stream sends a comment every [`KEEP_ALIVE`], so a vanished client's
/// stream is released within about `KEEP_ALIVE + USER_TIMEOUT` (docs/CONTRACT.md,
/// "Events"). A live peer that acknowledges nothing, or keeps its receive window
/// shut, for as long loses its connection too.
pub const USER_TIMEOUT: Duration = KEEP_ALIVE;

/// TCP keep-alive, the backstop for a connection with nothing in flight (the
/// user timeout counts only from unacknowledged data): probes start after this
/// much silence both ways...
const PROBE_AFTER: Duration = KEEP_ALIVE;
/// ...are sent this often...
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// ...and this many go unanswered before the connection is dropped (where the
/// user timeout is set, it decides instead).
const PROBES: u32 = 5;

/// `HttpServer::on_connect` for the API port: sets [`USER_TIMEOUT`] and TCP
/// keep-alive on every accepted connection. Set it before `listen*`, which
/// takes the hook as it is at that point.
pub fn on_connect(io: &dyn Any, _: &mut Extensions) {
    let Some(stream) = io.downcast_ref::<TcpStream>() else {
        return;
    };
    if let Err(err) = let_dead_peers_go(stream) {
        tracing::warn!(
            %err,
            "could not set TCP_USER_TIMEOUT and keep-alive on a connection: a client that \
             vanishes holds it until the kernel's retransmissions give up"
        );
    }
}

fn let_dead_peers_go(stream: &TcpStream) -> io::Result<()> {
    let socket = SockRef::from(stream);
    #[cfg(any(target_os = "linux", target_os = "android"))]
    socket.set_tcp_user_timeout(Some(USER_TIMEOUT))?;
    let probes = TcpKeepalive::new()
        .with_time(PROBE_AFTER)
        .with_interval(PROBE_EVERY)
        .with_retries(PROBES);
    socket.set_tcp_keepalive(&probes)
}

/// The operational half of a service, read from the environment.
pub struct Ops {
    /// The HTTP middleware every app wraps.
    pub metrics: PrometheusMetrics,
    /// What handlers see of a shutdown (event streams end on it).
    pub shutdown: Shutdown,
    pub settings: ShutdownSettings,
    exposition: Exposition,
    trigger: Trigger,
}

impl Ops {
    /// `METRICS_BIND_ADDR` and `SHUTDOWN_*`; `namespace` prefixes the HTTP
    /// series, `collectors` are the service's own.
    pub fn from_env(namespace: &str, collectors: Vec<Box<dyn Collector>>) -> anyhow::Result<Self> {
        let settings = ShutdownSettings::from_env()?;
        let exposition = Exposition::from_env()?;
        let metrics = crate::metrics::middleware(namespace, collectors, &exposition)?;
        let (trigger, shutdown) = crate::shutdown::channel(settings);
        Ok(Self {
            metrics,
            shutdown,
            settings,
            exposition,
            trigger,
        })
    }

    /// `/readyz`'s checks; it also answers 503 once the replica drains.
    pub fn readiness(&self, checks: Vec<Arc<dyn ReadinessCheck>>) -> Readiness {
        Readiness::new(checks).draining_with(self.shutdown.clone())
    }

    /// The API's OpenAPI document as this replica serves it: without
    /// `/metrics` when that has a port of its own.
    pub fn document(&self, mut openapi: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
        if matches!(self.exposition, Exposition::OwnPort(_)) {
            openapi.paths.paths.remove(crate::metrics::METRICS_PATH);
        }
        openapi
    }

    /// The metrics port, when it is not the API's.
    pub fn metrics_port(&self) -> Option<u16> {
        self.exposition.own_port()
    }

    /// Starts the metrics server (on its own port) and the signal handler;
    /// returns the API server, which resolves once the sequence is over.
    pub fn start(self, api: Server) -> anyhow::Result<Server> {
        let mut servers = vec![api.handle()];
        if let Exposition::OwnPort(listener) = self.exposition {
            let metrics = crate::metrics::server(listener, self.metrics.registry.clone())?;
            servers.push(metrics.handle());
            tokio::spawn(async move {
                if let Err(err) = metrics.await {
                    tracing::warn!(%err, "the metrics server stopped");
                }
            });
        }
        tokio::spawn(self.trigger.on_signal(servers));
        Ok(api)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn an_accepted_connection_gives_up_unacknowledged_data_after_the_user_timeout()
    -> io::Result<()> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let _client = TcpStream::connect(listener.local_addr()?).await?;
        let (accepted, _) = listener.accept().await?;
        on_connect(&accepted, &mut Extensions::new());
        let socket = SockRef::from(&accepted);
        #[cfg(any(target_os = "linux", target_os = "android"))]
        assert_eq!(socket.tcp_user_timeout()?, Some(USER_TIMEOUT));
        assert!(socket.keepalive()?);
        assert_eq!(socket.tcp_keepalive_time()?, PROBE_AFTER);
        assert_eq!(socket.tcp_keepalive_interval()?, PROBE_EVERY);
        assert_eq!(socket.tcp_keepalive_retries()?, PROBES);
        Ok(())
    }
}
