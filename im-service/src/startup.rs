//! Builds the HTTP server (listener bound first, so port 0 works) and runs it until stopped.

use std::{net::TcpListener, sync::Arc, time::Duration};

use actix_web::{App, HttpServer, dev::Server, middleware::from_fn, web};
use anyhow::Context;
use service_kit::{events::EventHub, extract, ops, serve::Ops};

use crate::{
    configuration::{GameSettings, Limits, Settings},
    domain::{ActiveWindow, Clock, SystemClock},
    game_client::{GameClient, LobbyOpener},
    routes::{self, AppState},
    store::{MemoryStore, RedisStore, RedisStoreConfig, Store, StoreReadiness},
};

/// A bound, ready-to-run server.
pub struct Application {
    port: u16,
    metrics_port: Option<u16>,
    server: Server,
}

impl Application {
    /// Binds `BIND_ADDR`, connects the store and prepares the server, with the default
    /// [`Limits`] and [`GameSettings`]; the wall clock tells time.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with(settings, Limits::default(), Arc::new(SystemClock)).await
    }

    /// As [`Application::build`], with the limits given (the binary reads them from the
    /// environment).
    pub async fn build_with_limits(settings: Settings, limits: Limits) -> anyhow::Result<Self> {
        Self::build_with(settings, limits, Arc::new(SystemClock)).await
    }

    /// As [`Application::build`], with the time source given (tests move time by hand).
    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        Self::build_with(settings, Limits::default(), clock).await
    }

    /// Settings, limits and the time source given; the game service where
    /// [`GameSettings::default`] says.
    pub async fn build_with(
        settings: Settings,
        limits: Limits,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        Self::build_with_game(settings, limits, GameSettings::default(), clock).await
    }

    /// As [`Application::build_with`], with the game service given (the binary reads
    /// `GAME_URL` and `GAME_TIMEOUT_MS`); its `service` tokens are signed with `JWT_SECRET`.
    pub async fn build_with_game(
        settings: Settings,
        limits: Limits,
        game: GameSettings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let lobbies = Arc::new(GameClient::new(&game, settings.jwt.minter())?);
        Self::build_with_lobbies(settings, limits, lobbies, clock).await
    }

    /// Everything given: settings, limits, what opens lobbies and the time source.
    pub async fn build_with_lobbies(
        settings: Settings,
        limits: Limits,
        lobbies: Arc<dyn LobbyOpener>,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let default_window = ActiveWindow::from_secs(settings.active_window.as_secs())
            .context("IM_ACTIVE_WINDOW_SECS")?;
        limits.validate()?;
        let verifier = web::Data::new(settings.jwt.verifier()?);
        let store = connect_store(&settings, &limits).await?;
        let hub = web::Data::new(EventHub::start(
            &*store,
            service_kit::events::max_streams_from_env()?,
            crate::metrics::EVENT_STREAMS_OPEN.clone(),
        ));
        let tickets = web::Data::new(service_kit::tickets::Tickets::from_env(
            settings.redis_url.as_deref(),
            settings.redis_cluster,
            &settings.redis_key_prefix,
        )?);
        let ops = Ops::from_env("im", crate::metrics::collectors())?;
        let readiness =
            web::Data::new(ops.readiness(vec![Arc::new(StoreReadiness(store.clone()))]));
        let metrics_port = ops.metrics_port();
        let state = web::Data::new(AppState {
            store,
            clock,
            default_window,
            limits,
            lobbies,
        });
        let metrics = ops.metrics.clone();
        let openapi = ops.document(crate::openapi());
        let shutdown = web::Data::new(ops.shutdown.clone());

        let listener = TcpListener::bind(&settings.bind_addr)
            .with_context(|| format!("binding BIND_ADDR={}", settings.bind_addr))?;
        let port = listener.local_addr()?.port();
        let rate_limit = web::Data::new(service_kit::middleware::RateLimit::from_env()?);
        let cors = service_kit::cors::AllowedOrigins::from_env()?;
        let server = HttpServer::new(move || {
            // Runs once per worker thread: give it its own Redis connection.
            state.store.attach_to_this_thread();
            App::new()
                // Outermost last: request id and access log, CORS, size bounds,
                // metrics, problem rendering, then the rate limit closest to the handlers.
                .wrap(from_fn(service_kit::middleware::rate_limit))
                .wrap(service_kit::error::problem_errors())
                .wrap(metrics.clone())
                .wrap(from_fn(service_kit::middleware::bounded))
                // Preflights are answered before limits, auth and routing, and every
                // answer (errors and 429s included) carries the CORS headers.
                .wrap(cors.middleware())
                .wrap(from_fn(service_kit::cors::tidy))
                .wrap(from_fn(service_kit::middleware::request_context))
                .app_data(rate_limit.clone())
                .app_data(verifier.clone())
                .app_data(readiness.clone())
                .app_data(state.clone())
                .app_data(hub.clone())
                .app_data(tickets.clone())
                .app_data(shutdown.clone())
                .configure(extract::configure)
                .configure(|cfg| ops::configure(cfg, openapi.clone()))
                .configure(routes::configure)
                .default_service(web::to(extract::not_found))
        })
        .shutdown_timeout(ops.settings.timeout.as_secs())
        // Signals are `Ops`'s: drain first, then stop (see service_kit::shutdown).
        .disable_signals()
        // Small responses (events above all) go out at once, not after a delayed ACK.
        .tcp_nodelay(true)
        // A client gone without closing its connection is given up within seconds
        // (TCP_USER_TIMEOUT): its event stream goes with it. Before `listen_*`.
        .on_connect(service_kit::serve::on_connect)
        // HTTP/1.1, and HTTP/2 cleartext with prior knowledge (h2c) on the same
        // port: a proxy can multiplex many clients' event streams on few connections.
        .listen_auto_h2c(listener)?
        .run();
        let server = ops.start(server)?;
        tracing::info!(port, metrics_port, "im-service listening");
        Ok(Self {
            port,
            metrics_port,
            server,
        })
    }

    /// The port actually bound (useful with `BIND_ADDR=…:0`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of `/metrics` when `METRICS_BIND_ADDR` gives it one of its own.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    /// Serves until SIGTERM/SIGINT, then drains (`service_kit::shutdown`).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

async fn connect_store(settings: &Settings, limits: &Limits) -> anyhow::Result<Arc<dyn Store>> {
    let Some(url) = &settings.redis_url else {
        tracing::warn!(
            "REDIS_URL is not set: using the in-memory store; data lives in this process only \
             and replicas would not share it"
        );
        return Ok(Arc::new(MemoryStore::with_retention(
            limits.store(),
            settings.retention,
        )));
    };
    let store = RedisStore::connect(&RedisStoreConfig {
        url: url.clone(),
        cluster: settings.redis_cluster,
        key_prefix: settings.redis_key_prefix.clone(),
        retention: settings.retention,
        limits: limits.store(),
        replication: settings.redis_replication,
    })?;
    // Not fatal: the service starts unready and connects when Redis answers.
    match tokio::time::timeout(Duration::from_secs(2), store.ping()).await {
        Ok(Ok(())) => tracing::info!("connected to Redis"),
        Ok(Err(err)) => {
            tracing::warn!(
                error = format!("{:#}", anyhow::Error::from(err)),
                "Redis is unreachable at startup; /readyz says so until it answers"
            )
        }
        Err(_) => tracing::warn!("Redis did not answer PING within 2 s at startup"),
    }
    Ok(Arc::new(store))
}
