//! Prometheus series: the HTTP middleware, and `/metrics` on the API port or a port of its own.
//!
//! With `METRICS_BIND_ADDR` unset, `/metrics` is served on the API port (the
//! quickstart, the tests). Set, it is served there only, so that a network
//! policy can open the metrics port to the monitoring namespace alone.

use std::net::TcpListener;

use actix_web::{App, HttpResponse, HttpServer, dev::Server, web};
use actix_web_prom::{PrometheusMetrics, PrometheusMetricsBuilder};
use anyhow::Context;
use prometheus::{Encoder, Registry, TextEncoder, core::Collector};

/// The `endpoint` label of every request no route matched.
pub const UNMATCHED_PATH_LABEL: &str = "unmatched";

/// The path scrapes read, on either port.
pub const METRICS_PATH: &str = "/metrics";

/// Where `/metrics` is served.
pub enum Exposition {
    /// On the API port.
    ApiPort,
    /// On a listener of its own (`METRICS_BIND_ADDR`).
    OwnPort(TcpListener),
}

impl Exposition {
    /// `METRICS_BIND_ADDR`, bound now (so a taken port fails the start, and port 0 works).
    pub fn from_env() -> anyhow::Result<Self> {
        match crate::config::env_opt("METRICS_BIND_ADDR") {
            None => Ok(Self::ApiPort),
            Some(addr) => TcpListener::bind(addr.trim())
                .map(Self::OwnPort)
                .with_context(|| format!("binding METRICS_BIND_ADDR={addr}")),
        }
    }

    /// The metrics port, when it is not the API's.
    pub fn own_port(&self) -> Option<u16> {
        match self {
            Self::ApiPort => None,
            Self::OwnPort(listener) => listener.local_addr().ok().map(|a| a.port()),
        }
    }
}

/// The HTTP middleware, with the Redis round-trip, replica-ack timeout and replaced-connection
/// counters and `collectors` in its registry; it answers `/metrics` itself on the API port only.
pub fn middleware(
    namespace: &str,
    collectors: Vec<Box<dyn Collector>>,
    exposition: &Exposition,
) -> anyhow::Result<PrometheusMetrics> {
    let registry = Registry::new();
    registry
        .register(Box::new(crate::redis_round_trips::ROUND_TRIPS.clone()))
        .map_err(|e| anyhow::anyhow!("registering the Redis round-trip counter: {e}"))?;
    registry
        .register(Box::new(crate::redis_round_trips::BY_ROUTE.clone()))
        .map_err(|e| anyhow::anyhow!("registering the round trips by route: {e}"))?;
    registry
        .register(Box::new(crate::redis_replication::ACK_TIMEOUTS.clone()))
        .map_err(|e| anyhow::anyhow!("registering the replica-ack timeout counter: {e}"))?;
    registry
        .register(Box::new(crate::redis_self_healing::REPLACED.clone()))
        .map_err(|e| anyhow::anyhow!("registering the replaced-connection counter: {e}"))?;
    for collector in collectors {
        registry
            .register(collector)
            .map_err(|e| anyhow::anyhow!("registering a metric: {e}"))?;
    }
    let mut builder = PrometheusMetricsBuilder::new(namespace)
        .registry(registry)
        // Whatever paths callers invent, they share one label value (methods
        // outside HTTP's own are answered before the metrics see them: see
        // `middleware::bounded`).
        .mask_unmatched_patterns(UNMATCHED_PATH_LABEL)
        // The docs' catch-all pattern cannot be a metric label; nobody needs its timings.
        .exclude_regex("^/docs");
    if matches!(exposition, Exposition::ApiPort) {
        builder = builder.endpoint(METRICS_PATH);
    }
    builder
        .build()
        .map_err(|e| anyhow::anyhow!("building the metrics middleware: {e}"))
}

/// A one-worker server answering `GET /metrics` from `registry` on `listener`.
pub fn server(listener: TcpListener, registry: Registry) -> anyhow::Result<Server> {
    let registry = web::Data::new(registry);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(registry.clone())
            .route(METRICS_PATH, web::get().to(scrape))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .context("serving METRICS_BIND_ADDR")?
    .run();
    Ok(server)
}

async fn scrape(registry: web::Data<Registry>) -> HttpResponse {
    let mut text = Vec::new();
    match TextEncoder::new().encode(&registry.gather(), &mut text) {
        Ok(()) => HttpResponse::Ok()
            .content_type(prometheus::TEXT_FORMAT)
            .body(text),
        Err(err) => {
            tracing::warn!(%err, "encoding metrics");
            HttpResponse::InternalServerError().finish()
        }
    }
}
