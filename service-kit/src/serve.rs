//! What both services run beside their API: `/metrics` (on its own port if
//! asked) and the shutdown sequence of [`crate::shutdown`].

use std::sync::Arc;

use actix_web::dev::Server;
use actix_web_prom::PrometheusMetrics;
use prometheus::core::Collector;

use crate::{
    metrics::Exposition,
    ops::{Readiness, ReadinessCheck},
    shutdown::{Shutdown, ShutdownSettings, Trigger},
};

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
