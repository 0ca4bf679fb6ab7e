//! The world every scenario runs in: a private redis-server, the real `im-service` and
//! `game-service` binaries on free ports, and typed players that talk to both.
//!
//! - [`process`]: starting, health-checking, signalling and killing the service binaries.
//! - [`sse`]: reading a player's `text/event-stream`.
//! - [`store`]: reading what the services wrote to Redis (keys, TTLs, records).
//! - [`stub_im`]: a fake IM service that counts requests and fails, hangs or answers late.
//! - [`invariants`]: the store's invariants, read from Redis once a scenario has settled.
//! - [`churn`]: background players driving flows while a fault strikes.
//! - [`game_server`]: a game server's calls (end, heartbeat, join-token checks).

pub mod churn;
mod game_server;
pub mod invariants;
mod process;
mod sse;
mod store;
mod stub_im;

use std::{
    future::Future,
    time::{Duration, Instant},
};

use anyhow::{Context, anyhow, bail, ensure};
use e2e::{PORT_ATTEMPTS, RedisCluster, RedisServer, free_port, unique_prefix};
use reqwest::{Client, Method, StatusCode, header};
use serde::de::DeserializeOwned;
use shared_types::{
    UserId,
    auth::{DEFAULT_AUDIENCE, DEFAULT_ISSUER, Minter, Scope},
    game::{PlayerState, Prompt, Reason, Session, SessionKind, SessionState},
    im::{Conversation, PartnersResponse},
    problem::{CONTENT_TYPE as PROBLEM_CONTENT_TYPE, Problem, ProblemCode},
};
use uuid::Uuid;

pub use self::game_server::GameServer;
use self::process::{ServiceProcess, binary};
pub use self::sse::{EventStream, SseEvent, StreamEnd};
pub use self::store::{StoredKey, snapshot};
pub use self::stub_im::{StubIm, StubMode};

/// The secret both services verify with; tests mint their own tokens with it.
pub const SECRET: &str = "e2e-secret-not-for-production";
/// Long enough that no invitation expires in a scenario that is not about expiry.
pub const DEFAULT_INVITE_TTL_SECS: u64 = 60;
/// Any single API call: generous, so a slow machine fails on assertions, not timeouts.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle connection stays in the client's pool.
const CLIENT_IDLE_TIMEOUT: Duration = Duration::from_secs(2);

/// Knobs a scenario may turn; everything else is the services' defaults.
#[derive(Debug, Clone)]
pub struct WorldOptions {
    pub invite_ttl_secs: u64,
    pub im_active_window_secs: Option<u64>,
    /// More game-service variables (`EXPIRY_POLL_MS`, `IM_TIMEOUT_MS`, `IM_BREAKER_*`, …).
    pub game_env: Vec<(String, String)>,
    pub store: StoreChoice,
}

impl Default for WorldOptions {
    fn default() -> Self {
        Self {
            invite_ttl_secs: DEFAULT_INVITE_TTL_SECS,
            im_active_window_secs: None,
            game_env: Vec::new(),
            store: StoreChoice::Suite,
        }
    }
}

impl WorldOptions {
    /// Adds a game-service environment variable.
    pub fn game_var(mut self, name: &str, value: impl ToString) -> Self {
        self.game_env.push(env(name, value.to_string()));
        self
    }
}

/// Where both services keep their state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreChoice {
    /// The suite's Redis, chosen by `E2E_REDIS` (see [`SuiteRedis`]): a redis-server of the
    /// world's own, or the binary's shared Redis Cluster.
    Suite,
    /// A redis-server of the world's own, which the test may kill, pause and restart. Tests
    /// that do so ask for it explicitly: they keep it even when `E2E_REDIS=cluster`.
    PrivateRedis,
    /// The same, persisting every write before acknowledging it: a restart after a SIGKILL
    /// holds exactly what the services were told was written.
    DurableRedis,
    /// The binary's shared 3-master Redis Cluster (`REDIS_URL=redis+cluster://…`).
    SharedCluster,
    /// A 3-master Redis Cluster of the world's own, whose nodes the test may pause.
    PrivateCluster,
}

/// The Redis the whole suite runs on, from the `E2E_REDIS` environment variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuiteRedis {
    /// `E2E_REDIS` unset or `standalone`: every world starts a redis-server of its own.
    Standalone,
    /// `E2E_REDIS=cluster`: every world runs on the binary's shared 3-master Redis Cluster,
    /// isolated from the others by its key prefix.
    Cluster,
}

impl SuiteRedis {
    /// Reads `E2E_REDIS`; an unknown value is an error, not a silent standalone run.
    pub fn from_env() -> anyhow::Result<Self> {
        match std::env::var("E2E_REDIS") {
            Err(std::env::VarError::NotPresent) => Ok(Self::Standalone),
            Ok(value) => match value.trim().to_ascii_lowercase().as_str() {
                "" | "standalone" => Ok(Self::Standalone),
                "cluster" => Ok(Self::Cluster),
                other => bail!("E2E_REDIS={other:?}: expected `standalone` or `cluster`"),
            },
            Err(err) => bail!("E2E_REDIS: {err}"),
        }
    }
}

/// Which service a raw request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Im,
    Game,
}

/// Both services, their Redis, and a way to make players. Children die with it.
pub struct TestWorld {
    api: Api,
    minter: Minter,
    // Dropped in this order: the services before the store they use.
    replicas: Vec<ServiceProcess>,
    game: ServiceProcess,
    im: ServiceProcess,
    /// `None` on a cluster.
    redis: Option<RedisServer>,
    /// The world's own cluster ([`StoreChoice::PrivateCluster`]).
    cluster: Option<RedisCluster>,
    /// Standalone URLs of every node holding the world's keys (one, or each cluster master).
    redis_nodes: Vec<String>,
    prefix: String,
}

/// Starts a world named after the running test (libtest names the test thread after it).
pub async fn spawn_world() -> anyhow::Result<TestWorld> {
    spawn_world_with(WorldOptions::default()).await
}

pub async fn spawn_world_with(options: WorldOptions) -> anyhow::Result<TestWorld> {
    let name = test_name();
    let suite = SuiteRedis::from_env()?;
    let store = match (options.store, suite) {
        (StoreChoice::Suite, SuiteRedis::Standalone) => StoreChoice::PrivateRedis,
        (StoreChoice::Suite, SuiteRedis::Cluster) => StoreChoice::SharedCluster,
        (StoreChoice::PrivateRedis | StoreChoice::DurableRedis, SuiteRedis::Cluster) => {
            eprintln!(
                "E2E_REDIS=cluster: {name} kills, pauses or restarts Redis itself, so it runs \
                 on a private standalone redis-server ({:?}), not on the shared cluster",
                options.store
            );
            options.store
        }
        (other, _) => other,
    };
    let mut own_cluster = None;
    let (redis, redis_url, redis_nodes) = match store {
        StoreChoice::Suite | StoreChoice::PrivateRedis | StoreChoice::DurableRedis => {
            let start = if store == StoreChoice::DurableRedis {
                RedisServer::start_durable
            } else {
                RedisServer::start
            };
            let redis = tokio::task::spawn_blocking(start)
                .await
                .context("joining the redis start-up")??;
            let url = redis.url();
            (Some(redis), url.clone(), vec![url])
        }
        StoreChoice::SharedCluster => {
            let cluster = tokio::task::spawn_blocking(RedisCluster::shared)
                .await
                .context("joining the cluster start-up")??;
            let nodes = cluster
                .ports()
                .iter()
                .map(|port| format!("redis://127.0.0.1:{port}"))
                .collect();
            (None, cluster.url(), nodes)
        }
        StoreChoice::PrivateCluster => {
            let cluster = tokio::task::spawn_blocking(RedisCluster::start)
                .await
                .context("joining the cluster start-up")??;
            let nodes = cluster
                .ports()
                .iter()
                .map(|port| format!("redis://127.0.0.1:{port}"))
                .collect();
            let url = cluster.url();
            own_cluster = Some(cluster);
            (None, url, nodes)
        }
    };
    let client = Client::builder()
        .no_proxy()
        // Below the services' keep-alive (actix: 5 s): a connection the server is closing is
        // never picked for the next request ("connection closed before message completed").
        .pool_idle_timeout(CLIENT_IDLE_TIMEOUT)
        .build()
        .context("building the HTTP client")?;
    // A port found free may be taken before a service binds it: start again on fresh ports.
    let mut attempt = 1;
    let (api, im, game, prefix) = loop {
        match start_services(&name, &options, &redis_url, &client).await {
            Ok(started) => break started,
            Err(err) if process::port_taken(&err) && attempt < PORT_ATTEMPTS => {
                eprintln!("{name}: starting again on other ports (attempt {attempt}): {err:#}");
                attempt += 1;
            }
            Err(err) => return Err(err),
        }
    };

    Ok(TestWorld {
        api,
        minter: Minter::hs256(SECRET.as_bytes(), DEFAULT_ISSUER, DEFAULT_AUDIENCE),
        replicas: Vec::new(),
        game,
        im,
        redis,
        cluster: own_cluster,
        redis_nodes,
        prefix,
    })
}

/// Starts the IM service and the game service on fresh ports and key prefixes, both healthy.
async fn start_services(
    name: &str,
    options: &WorldOptions,
    redis_url: &str,
    client: &Client,
) -> anyhow::Result<(Api, ServiceProcess, ServiceProcess, String)> {
    let prefix = unique_prefix(name);
    let im_port = free_port()?;
    let game_port = free_port()?;
    let api = Api {
        client: client.clone(),
        im: format!("http://127.0.0.1:{im_port}"),
        game: format!("http://127.0.0.1:{game_port}"),
    };

    let mut im_env = vec![
        env("BIND_ADDR", format!("127.0.0.1:{im_port}")),
        env("REDIS_URL", redis_url),
        env("REDIS_KEY_PREFIX", format!("{prefix}-im")),
        env("JWT_SECRET", SECRET),
    ];
    if let Some(secs) = options.im_active_window_secs {
        im_env.push(env("IM_ACTIVE_WINDOW_SECS", secs.to_string()));
    }
    let mut game_env = vec![
        env("BIND_ADDR", format!("127.0.0.1:{game_port}")),
        env("REDIS_URL", redis_url),
        env("REDIS_KEY_PREFIX", format!("{prefix}-game")),
        env("JWT_SECRET", SECRET),
        env("IM_URL", api.im.clone()),
        env("INVITE_TTL_SECS", options.invite_ttl_secs.to_string()),
        env(
            "JOIN_TOKEN_KEY_FILE",
            e2e::join_token_key()?.display().to_string(),
        ),
    ];
    game_env.extend(options.game_env.iter().cloned());

    let mut im = ServiceProcess::spawn(
        format!("im {name}"),
        binary("im-service")?,
        im_env,
        api.im.clone(),
    )?;
    let mut game = ServiceProcess::spawn(
        format!("game {name}"),
        binary("game-service")?,
        game_env,
        api.game.clone(),
    )?;
    let (im_ready, game_ready) =
        tokio::join!(im.wait_healthy(&api.client), game.wait_healthy(&api.client));
    im_ready?;
    game_ready?;
    Ok((api, im, game, prefix))
}

impl TestWorld {
    /// A player with a valid one-hour token.
    pub fn player(&self, id: &str) -> anyhow::Result<Player> {
        let user_id = UserId::parse(id).map_err(|e| anyhow!("{id:?}: {e}"))?;
        let token = self
            .minter
            .mint(&user_id, Scope::Player, 3600)
            .context("minting a player token")?;
        Ok(Player {
            id: id.to_owned(),
            token,
            api: self.api.clone(),
        })
    }

    /// A token of scope `service`, as the game service uses against the IM service.
    pub fn service_token(&self) -> anyhow::Result<String> {
        let user_id = UserId::parse("e2e-service").map_err(|e| anyhow!("{e}"))?;
        self.minter
            .mint(&user_id, Scope::Service, 3600)
            .context("minting a service token")
    }

    /// A game server with a `service` token, talking to the first replica.
    pub fn game_server(&self) -> anyhow::Result<GameServer> {
        Ok(GameServer {
            api: self.api.clone(),
            token: self.service_token()?,
        })
    }

    /// `GET /metrics` of the first replica (or `replica`): the value of every series whose
    /// line starts with `series` (name and labels), summed.
    pub async fn metric(&self, replica: Option<&Replica>, series: &str) -> anyhow::Result<f64> {
        let base = replica.map_or(self.api.game.as_str(), |r| r.base_url.as_str());
        let text = self
            .api
            .client
            .get(format!("{base}/metrics"))
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .context("GET /metrics")?
            .text()
            .await?;
        Ok(text
            .lines()
            .filter(|line| line.starts_with(series))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }

    /// Everyone `available`, and the first opens one conversation with all the others.
    pub async fn chatting(&self, people: &[&Player]) -> anyhow::Result<Uuid> {
        let (first, others) = people
            .split_first()
            .context("chatting needs at least two people")?;
        for person in people {
            person.set_presence("available").await?;
        }
        first.open_conversation(others).await
    }

    /// A request with any `Authorization` header value (or none): for auth checks.
    pub async fn raw(
        &self,
        service: Service,
        method: Method,
        path: &str,
        authorization: Option<&str>,
        body: Option<&str>,
    ) -> anyhow::Result<Reply> {
        self.api
            .send(service, method, path, authorization, body)
            .await
    }

    /// SIGKILL the IM service: what a crash looks like to the game service.
    pub fn kill_im(&mut self) {
        self.im.kill();
    }

    /// Starts the IM service again on the same port and Redis prefix.
    pub async fn restart_im(&mut self) -> anyhow::Result<()> {
        self.im.kill();
        self.im.respawn()?;
        self.im.wait_healthy(&self.api.client).await
    }

    /// Starts another game-service replica on the same Redis and prefix: players reach it
    /// through [`Player::via`].
    pub async fn spawn_game_replica(&mut self) -> anyhow::Result<Replica> {
        let index = self.replicas.len() + 2;
        let mut attempt = 1;
        let replica = loop {
            let mut replica = self
                .game
                .sibling(format!("game#{index} {}", test_name()), free_port()?)?;
            match replica.wait_healthy(&self.api.client).await {
                Ok(()) => break replica,
                Err(err) if process::port_taken(&err) && attempt < PORT_ATTEMPTS => {
                    eprintln!("replica: starting again on another port: {err:#}");
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        };
        let handle = Replica {
            base_url: replica.base_url().to_owned(),
        };
        self.replicas.push(replica);
        Ok(handle)
    }

    /// Restarts the game service (same port, same Redis prefix): a replica restart.
    pub async fn restart_game(&mut self) -> anyhow::Result<()> {
        self.game.kill();
        self.game.respawn()?;
        self.game.wait_healthy(&self.api.client).await
    }

    pub fn im_port(&self) -> anyhow::Result<u16> {
        port_of(&self.api.im)
    }

    /// The world's own redis-server (not on the shared cluster): a test that kills, pauses or
    /// restarts it asks for [`StoreChoice::PrivateRedis`] or [`StoreChoice::DurableRedis`].
    pub fn redis(&mut self) -> anyhow::Result<&mut RedisServer> {
        self.redis.as_mut().context(
            "this world runs on the shared cluster, not on a redis-server of its own: a test \
             that kills, pauses or restarts Redis asks for StoreChoice::PrivateRedis",
        )
    }

    /// The world's own cluster ([`StoreChoice::PrivateCluster`]).
    pub fn cluster(&self) -> anyhow::Result<&RedisCluster> {
        self.cluster
            .as_ref()
            .context("this world does not run on a cluster of its own")
    }

    /// Every key the world's services wrote, with its type, TTL and (for strings) value.
    pub async fn stored_keys(&self) -> anyhow::Result<Vec<StoredKey>> {
        snapshot(&self.redis_nodes, &format!("{}-*", self.prefix)).await
    }

    /// The prefix of the game service's Redis keys.
    pub fn game_key_prefix(&self) -> String {
        format!("{}-game", self.prefix)
    }

    /// The prefix of the IM service's Redis keys.
    pub fn im_key_prefix(&self) -> String {
        format!("{}-im", self.prefix)
    }

    /// SIGKILL a replica started with [`Self::spawn_game_replica`].
    pub fn kill_replica(&mut self, replica: &Replica) -> anyhow::Result<()> {
        self.replicas
            .iter_mut()
            .find(|process| process.base_url() == replica.base_url)
            .with_context(|| format!("no replica at {}", replica.base_url))?
            .kill();
        Ok(())
    }

    /// Sends a signal (`TERM`, `INT`, …) to the primary game service.
    pub fn signal_game(&self, name: &str) -> anyhow::Result<()> {
        self.game.signal(name)
    }

    /// Waits up to `limit` for the primary game service to exit; `None`: still running.
    pub async fn wait_game_exit(
        &mut self,
        limit: Duration,
    ) -> anyhow::Result<Option<std::process::ExitStatus>> {
        self.game.wait_exit(limit).await
    }

    /// Whether the IM service and every game-service process are still running.
    pub fn all_running(&mut self) -> bool {
        let replicas = self.replicas.iter_mut().all(ServiceProcess::is_running);
        replicas && self.game.is_running() && self.im.is_running()
    }

    /// Output lines of every service process that reported a panic.
    pub fn panics(&self) -> usize {
        let replicas: usize = self.replicas.iter().map(ServiceProcess::panics).sum();
        replicas + self.game.panics() + self.im.panics()
    }

    /// The last lines of the primary game service's output, for failure messages.
    pub fn game_log_tail(&self) -> String {
        self.game.tail()
    }

    /// The last lines of every game-service process's output (the primary, then each replica).
    pub fn game_log_tails(&self) -> String {
        std::iter::once(&self.game)
            .chain(&self.replicas)
            .map(|process| format!("-- {}:\n{}", process.label(), process.tail()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Another game-service process sharing the world's Redis.
#[derive(Debug, Clone)]
pub struct Replica {
    base_url: String,
}

/// A user with a token, and typed calls to both services.
#[derive(Clone)]
pub struct Player {
    pub id: String,
    token: String,
    api: Api,
}

impl Player {
    /// The same player, talking to the game service through `replica`.
    pub fn via(&self, replica: &Replica) -> Self {
        let mut player = self.clone();
        player.api.game = replica.base_url.clone();
        player
    }

    // ---- IM service -------------------------------------------------------------

    pub async fn set_presence(&self, status: &str) -> anyhow::Result<()> {
        let body = serde_json::json!({ "status": status }).to_string();
        self.raw(Service::Im, Method::PUT, "/v1/presence", Some(&body))
            .await?
            .success()
            .with_context(|| format!("{} setting presence {status}", self.id))?;
        Ok(())
    }

    /// Opens a conversation with `others`; returns its id.
    pub async fn open_conversation(&self, others: &[&Player]) -> anyhow::Result<Uuid> {
        let participants: Vec<&str> = others.iter().map(|p| p.id.as_str()).collect();
        let body = serde_json::json!({ "participants": participants }).to_string();
        let conversation: Conversation = self
            .raw(Service::Im, Method::POST, "/v1/conversations", Some(&body))
            .await?
            .success()
            .with_context(|| format!("{} opening a conversation", self.id))?
            .json()?;
        Ok(conversation.id)
    }

    pub async fn post_message(&self, conversation: Uuid, text: &str) -> anyhow::Result<()> {
        let body = serde_json::json!({ "text": text }).to_string();
        let path = format!("/v1/conversations/{conversation}/messages");
        self.raw(Service::Im, Method::POST, &path, Some(&body))
            .await?
            .success()
            .with_context(|| format!("{} posting a message", self.id))?;
        Ok(())
    }

    pub async fn close_conversation(&self, conversation: Uuid) -> anyhow::Result<()> {
        let path = format!("/v1/conversations/{conversation}/close");
        self.raw(Service::Im, Method::POST, &path, None)
            .await?
            .success()
            .with_context(|| format!("{} closing a conversation", self.id))?;
        Ok(())
    }

    /// `GET /v1/users/{self}/partners`, with an optional `status=` filter.
    pub async fn partners(&self, status: Option<&str>) -> anyhow::Result<PartnersResponse> {
        let mut path = format!("/v1/users/{}/partners", self.id);
        if let Some(status) = status {
            path.push_str(&format!("?status={status}"));
        }
        self.raw(Service::Im, Method::GET, &path, None)
            .await?
            .ok()
            .with_context(|| format!("{} asking for their partners", self.id))?
            .json()
    }

    // ---- game service -----------------------------------------------------------

    pub async fn connect(&self) -> anyhow::Result<PlayerState> {
        self.game_state(Method::POST, "/v1/connect".into(), None, "connecting")
            .await
    }

    pub async fn me(&self) -> anyhow::Result<PlayerState> {
        self.game_state(Method::GET, "/v1/me".into(), None, "reading /v1/me")
            .await
    }

    /// Accepts a prompt; `with` picks a subset of an invite's candidates.
    pub async fn accept(&self, prompt: Uuid, with: Option<&[&str]>) -> anyhow::Result<PlayerState> {
        let body = with.map(|ids| serde_json::json!({ "with": ids }).to_string());
        self.game_state(
            Method::POST,
            format!("/v1/prompts/{prompt}/accept"),
            body.as_deref(),
            "accepting",
        )
        .await
    }

    pub async fn reject(&self, prompt: Uuid) -> anyhow::Result<PlayerState> {
        self.game_state(
            Method::POST,
            format!("/v1/prompts/{prompt}/reject"),
            None,
            "rejecting",
        )
        .await
    }

    pub async fn session(&self, id: Uuid) -> anyhow::Result<Session> {
        self.raw(
            Service::Game,
            Method::GET,
            &format!("/v1/sessions/{id}"),
            None,
        )
        .await?
        .ok()
        .with_context(|| format!("{} reading session {id}", self.id))?
        .json()
    }

    pub async fn leave(&self, id: Uuid) -> anyhow::Result<PlayerState> {
        self.game_state(
            Method::POST,
            format!("/v1/sessions/{id}/leave"),
            None,
            "leaving",
        )
        .await
    }

    /// Opens the player's event stream, replaying what followed `last_event_id`.
    pub async fn events(&self, last_event_id: Option<&str>) -> anyhow::Result<EventStream> {
        let mut request = self
            .api
            .client
            .get(format!("{}/v1/events", self.api.game))
            .bearer_auth(&self.token)
            .header(header::ACCEPT, "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = tokio::time::timeout(REQUEST_TIMEOUT, request.send())
            .await
            .context("opening the event stream timed out")?
            .context("opening the event stream")?;
        let status = response.status();
        let content_type = content_type(response.headers());
        ensure!(
            status == StatusCode::OK,
            "{}: GET /v1/events answered {status}",
            self.id
        );
        ensure!(
            content_type.starts_with("text/event-stream"),
            "{}: GET /v1/events answered content-type {content_type:?}",
            self.id
        );
        Ok(EventStream::new(self.id.clone(), response))
    }

    /// A request with this player's token, for status-code checks.
    pub async fn raw(
        &self,
        service: Service,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> anyhow::Result<Reply> {
        let auth = format!("Bearer {}", self.token);
        self.api
            .send(service, method, path, Some(&auth), body)
            .await
    }

    async fn game_state(
        &self,
        method: Method,
        path: String,
        body: Option<&str>,
        doing: &str,
    ) -> anyhow::Result<PlayerState> {
        let state: PlayerState = self
            .raw(Service::Game, method, &path, body)
            .await?
            .ok()
            .with_context(|| format!("{} {doing} ({path})", self.id))?
            .json()?;
        ensure!(
            state.player_id.as_str() == self.id,
            "{path} answered the state of {} to {}",
            state.player_id,
            self.id
        );
        Ok(state)
    }
}

/// A response read in full, for assertions on status, headers and body.
#[derive(Debug)]
pub struct Reply {
    pub method: Method,
    pub path: String,
    pub status: StatusCode,
    pub headers: header::HeaderMap,
    pub body: String,
    pub elapsed: Duration,
}

impl Reply {
    pub fn content_type(&self) -> String {
        content_type(&self.headers)
    }

    /// Exactly 200, or an error that shows what came back.
    pub fn ok(self) -> anyhow::Result<Self> {
        if self.status == StatusCode::OK {
            Ok(self)
        } else {
            Err(self.unexpected("200"))
        }
    }

    /// Any 2xx.
    pub fn success(self) -> anyhow::Result<Self> {
        if self.status.is_success() {
            Ok(self)
        } else {
            Err(self.unexpected("2xx"))
        }
    }

    pub fn json<T: DeserializeOwned>(&self) -> anyhow::Result<T> {
        serde_json::from_str(&self.body).with_context(|| {
            format!(
                "{} {} answered a body of an unexpected shape: {}",
                self.method, self.path, self.body
            )
        })
    }

    /// Asserts an RFC 9457 problem with this status and code; returns it.
    pub fn problem(&self, status: u16, code: ProblemCode) -> anyhow::Result<Problem> {
        let problem = self.any_problem()?;
        ensure!(
            self.status.as_u16() == status && problem.code == code,
            "{} {}: expected {status} {code:?}, got {} {:?}: {}",
            self.method,
            self.path,
            self.status,
            problem.code,
            self.body
        );
        ensure!(
            problem.status == status,
            "{} {}: problem body says status {} on a {} response",
            self.method,
            self.path,
            problem.status,
            self.status
        );
        ensure!(
            problem.type_ == code.type_uri(),
            "{} {}: problem type {:?}, expected {:?}",
            self.method,
            self.path,
            problem.type_,
            code.type_uri()
        );
        Ok(problem)
    }

    /// Asserts a 4xx RFC 9457 problem of any code; returns it.
    pub fn client_error(&self) -> anyhow::Result<Problem> {
        ensure!(
            self.status.is_client_error(),
            "{} {}: expected a 4xx, got {}: {}",
            self.method,
            self.path,
            self.status,
            self.body
        );
        self.any_problem()
    }

    fn any_problem(&self) -> anyhow::Result<Problem> {
        let content_type = self.content_type();
        ensure!(
            content_type.starts_with(PROBLEM_CONTENT_TYPE),
            "{} {}: expected {PROBLEM_CONTENT_TYPE}, got {} with content-type {content_type:?}: {}",
            self.method,
            self.path,
            self.status,
            self.body
        );
        self.json()
    }

    fn unexpected(&self, wanted: &str) -> anyhow::Error {
        anyhow!(
            "{} {}: expected {wanted}, got {}: {}",
            self.method,
            self.path,
            self.status,
            self.body
        )
    }
}

// ---- assertions that read like the contract ---------------------------------------

/// Shortcuts on a `PlayerState` that fail with the whole state in the message.
pub trait StateExt {
    fn open_prompt(&self) -> anyhow::Result<&Prompt>;
    fn live_session(&self) -> anyhow::Result<&Session>;
    /// Asserts a solo, active session with this reason and no prompt; returns the session.
    fn solo(&self, reason: Reason) -> anyhow::Result<&Session>;
}

impl StateExt for PlayerState {
    fn open_prompt(&self) -> anyhow::Result<&Prompt> {
        self.prompt
            .as_ref()
            .with_context(|| format!("expected an open prompt, got {self:#?}"))
    }

    fn live_session(&self) -> anyhow::Result<&Session> {
        self.session
            .as_ref()
            .with_context(|| format!("expected a session, got {self:#?}"))
    }

    fn solo(&self, reason: Reason) -> anyhow::Result<&Session> {
        let session = self.live_session()?;
        ensure!(
            session.kind == SessionKind::Solo
                && session.state == SessionState::Active
                && session.reason == Some(reason)
                && self.prompt.is_none(),
            "expected a solo active session with reason {reason:?} and no prompt, got {self:#?}"
        );
        ensure!(
            session.players.contains(&self.player_id),
            "a solo session without its player: {self:#?}"
        );
        Ok(session)
    }
}

/// The parts of a state that must not move when nothing happens (join tokens aside).
pub fn essence(state: &PlayerState) -> String {
    let prompt = state.prompt.as_ref().map(|p| (p.id, p.kind, p.session_id));
    let session = state.session.as_ref().map(|s| {
        (
            s.id,
            s.kind,
            s.state,
            sorted(&s.players),
            sorted(&s.pending),
            s.reason,
        )
    });
    format!("{prompt:?} {session:?} degraded={}", state.degraded)
}

/// User ids sorted, for comparing player lists whatever their order.
pub fn sorted(ids: &[UserId]) -> Vec<&str> {
    let mut ids: Vec<&str> = ids.iter().map(UserId::as_str).collect();
    ids.sort_unstable();
    ids
}

/// Same, for the names a test wrote down.
pub fn names<'a>(players: &[&'a Player]) -> Vec<&'a str> {
    let mut ids: Vec<&str> = players.iter().map(|p| p.id.as_str()).collect();
    ids.sort_unstable();
    ids
}

/// Polls `probe` every 100 ms until it yields `Some`, failing after `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = probe().await? {
            return Ok(value);
        }
        if start.elapsed() > limit {
            bail!("{what}: not within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---- plumbing ---------------------------------------------------------------------

#[derive(Clone)]
struct Api {
    client: Client,
    im: String,
    game: String,
}

impl Api {
    fn base(&self, service: Service) -> &str {
        match service {
            Service::Im => &self.im,
            Service::Game => &self.game,
        }
    }

    async fn send(
        &self,
        service: Service,
        method: Method,
        path: &str,
        authorization: Option<&str>,
        body: Option<&str>,
    ) -> anyhow::Result<Reply> {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base(service)))
            .timeout(REQUEST_TIMEOUT);
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        if let Some(body) = body {
            request = request
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.to_owned());
        }
        let start = Instant::now();
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .text()
            .await
            .with_context(|| format!("reading the body of {method} {path}"))?;
        Ok(Reply {
            method,
            path: path.to_owned(),
            status,
            headers,
            body,
            elapsed: start.elapsed(),
        })
    }
}

fn content_type(headers: &header::HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn port_of(base: &str) -> anyhow::Result<u16> {
    base.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("no port in {base}"))
}

fn env(name: &str, value: impl Into<String>) -> (String, String) {
    (name.to_owned(), value.into())
}

/// The running test's name, made safe for a Redis key prefix.
fn test_name() -> String {
    let raw = std::thread::current().name().unwrap_or("test").to_owned();
    let short = raw.rsplit("::").next().unwrap_or(&raw);
    short
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// One round of the race the contract singles out (docs/CONTRACT.md, "Both at once"): `alice` and `bob` chat, both
/// connect and both accept their own invite prompt at the same moment. Returns
/// each one's state afterwards (`/v1/me`) for the caller's assertions.
pub async fn mutual_accept_round(
    world: &TestWorld,
    alice: &Player,
    bob: &Player,
    round: usize,
) -> anyhow::Result<(PlayerState, PlayerState)> {
    world.chatting(&[alice, bob]).await?;
    let (alice_state, bob_state) = tokio::join!(alice.connect(), bob.connect());
    let alice_prompt = alice_state?.open_prompt()?.clone();
    let bob_prompt = bob_state?.open_prompt()?.clone();
    let (alice_answer, bob_answer) = tokio::join!(
        alice.accept(alice_prompt.id, None),
        bob.accept(bob_prompt.id, None)
    );
    alice_answer.map_err(|e| e.context(format!("round {round}")))?;
    bob_answer.map_err(|e| e.context(format!("round {round}")))?;
    Ok((alice.me().await?, bob.me().await?))
}
