//! Builds the application: store, engine, IM client, event hub, expiry sweeper, HTTP server.

use std::{net::TcpListener, sync::Arc};

use actix_web::{App, HttpServer, dev::Server, middleware::from_fn, web};
use anyhow::Context;
use futures_util::future::BoxFuture;
use service_kit::{events::EventHub, ops::ReadinessCheck, serve::Ops};

use crate::{
    breaker::Breaker,
    configuration::Settings,
    domain::engine::Engine,
    game::{Game, SystemClock},
    im_client::ImClient,
    join_tokens::JoinTokens,
    store::{Retention, Store, memory::MemoryStore, redis::RedisStore},
};

pub struct Application {
    port: u16,
    metrics_port: Option<u16>,
    server: Server,
    game: Arc<Game>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let invite_ttl = chrono::Duration::from_std(settings.invite_ttl)
            .context("INVITE_TTL_SECS out of range")?;
        let session_idle = chrono::Duration::from_std(settings.session_idle)
            .context("SESSION_IDLE_SECS out of range")?;
        let engine = Engine::new(invite_ttl)
            .with_session_idle(session_idle)
            .with_modes(settings.modes.clone());
        // The furthest ahead a job is scheduled: an idle check.
        let horizon = (engine.session_idle + engine.life_resolution())
            .to_std()
            .unwrap_or(settings.session_idle)
            .max(settings.invite_ttl);
        let retention = Retention::new(settings.record_ttl, horizon);
        let tokens = Arc::new(join_tokens(&settings)?);
        let store: Arc<dyn Store> = match &settings.redis_url {
            Some(url) => Arc::new(
                RedisStore::connect_with(url, &settings.redis_key_prefix, settings.redis_cluster)
                    .await?
                    .with_retention(retention)
                    .replicated(settings.redis_replication),
            ),
            None => {
                tracing::warn!(
                    "REDIS_URL is unset: using the embedded in-memory store (one process, state lost on exit)"
                );
                Arc::new(MemoryStore::with_retention(retention))
            }
        };
        let im: Arc<dyn crate::im_client::ImService> = Arc::new(ImClient::new(
            &settings.im_url,
            settings.jwt.minter(),
            settings.im_timeout,
            Breaker::new(settings.im_breaker_threshold, settings.im_breaker_cooldown),
        )?);
        let game = Arc::new(Game::new(
            store.clone(),
            engine,
            im,
            Arc::new(SystemClock),
            tokens,
        ));
        let hub = EventHub::start(
            &*store,
            settings.max_streams_per_player,
            crate::metrics::EVENT_STREAMS_OPEN.clone(),
        );
        let tickets = web::Data::new(service_kit::tickets::Tickets::from_env(
            settings.redis_url.as_deref(),
            settings.redis_cluster,
            &settings.redis_key_prefix,
        )?);
        let verifier = web::Data::new(settings.jwt.verifier()?);
        let ops = Ops::from_env("game", crate::metrics::collectors())?;
        let readiness = web::Data::new(ops.readiness(vec![Arc::new(StoreCheck(store.clone()))]));
        let metrics = ops.metrics.clone();
        let metrics_port = ops.metrics_port();
        let openapi = ops.document(crate::openapi::for_modes(&settings.modes));
        let game_data = web::Data::from(game.clone());
        let hub_data = web::Data::new(hub);
        let shutdown_data = web::Data::new(ops.shutdown.clone());

        let listener = TcpListener::bind(&settings.bind_addr)
            .with_context(|| format!("binding {}", settings.bind_addr))?;
        let port = listener.local_addr()?.port();
        let rate_limit = web::Data::new(service_kit::middleware::RateLimit::from_env()?);
        let cors = service_kit::cors::AllowedOrigins::from_env()?;
        let play = settings.play.clone();
        let worker_store = store.clone();
        let server = HttpServer::new(move || {
            // Runs once per worker thread: give it its own Redis connection.
            worker_store.attach_to_this_thread();
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
                .app_data(game_data.clone())
                .app_data(hub_data.clone())
                .app_data(shutdown_data.clone())
                .app_data(tickets.clone())
                .configure(service_kit::extract::configure)
                .configure(crate::routes::configure)
                .configure(|cfg| {
                    if let Some(play) = play.clone() {
                        crate::play::configure(cfg, play);
                    }
                })
                .configure(|cfg| service_kit::ops::configure(cfg, openapi.clone()))
                .default_service(web::to(service_kit::extract::not_found))
        })
        // Small responses (events above all) go out at once, not after a delayed ACK.
        .tcp_nodelay(true)
        // A client gone without closing its connection is given up within seconds
        // (TCP_USER_TIMEOUT): its event stream goes with it. Before `listen_*`.
        .on_connect(service_kit::serve::on_connect)
        // HTTP/1.1, and HTTP/2 cleartext with prior knowledge (h2c) on the same
        // port: a proxy can multiplex many clients' event streams on few connections.
        .listen_auto_h2c(listener)?
        .shutdown_timeout(ops.settings.timeout.as_secs())
        // Signals are `Ops`'s: drain first, then stop (see service_kit::shutdown).
        .disable_signals()
        .run();
        let server = ops.start(server)?;

        tokio::spawn(crate::sweeper::sweep_expiries(
            game.clone(),
            settings.expiry_poll,
        ));
        tokio::spawn(crate::presence_feed::follow_presence(
            game.clone(),
            settings.presence_poll,
        ));
        Ok(Self {
            port,
            metrics_port,
            server,
            game,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of `/metrics` when `METRICS_BIND_ADDR` gives it one of its own.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    pub fn game(&self) -> &Arc<Game> {
        &self.game
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// The join-token keys: a key file, or (in-memory store only) a key made now.
fn join_tokens(settings: &Settings) -> anyhow::Result<JoinTokens> {
    if settings.join_token_keys.signing_pem.is_none() {
        if settings.redis_url.is_some() {
            anyhow::bail!(
                "JOIN_TOKEN_KEY_FILE is required with Redis: every replica must sign join tokens \
                 with the same Ed25519 key. Make one with `openssl genpkey -algorithm ed25519 \
                 -out join-token.pem` (or `cargo xtask join-token-key > join-token.pem`), store \
                 it as a secret and set JOIN_TOKEN_KEY_FILE to its path"
            );
        }
        tracing::warn!(
            "JOIN_TOKEN_KEY_FILE is unset: join tokens are signed with an ephemeral key (this process only)"
        );
    }
    JoinTokens::new(
        &settings.join_token_keys,
        &settings.jwt.issuer,
        settings.join_token_ttl,
    )
}

struct StoreCheck(Arc<dyn Store>);

impl ReadinessCheck for StoreCheck {
    fn name(&self) -> &'static str {
        "store"
    }

    fn check(&self) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move { self.0.ping().await.map_err(anyhow::Error::from) })
    }
}
