//! Starting a world: the knobs a scenario may turn, the Redis it runs on (`E2E_REDIS`), and both services on fresh ports, started again when a port is taken.

use std::time::Duration;

use anyhow::{Context, bail};
use e2e::{
    PORT_ATTEMPTS, RedisCluster, RedisServer, ReplicatedCluster, SentinelGroup, free_port,
    unique_prefix,
};
use reqwest::Client;
use shared_types::auth::{DEFAULT_AUDIENCE, DEFAULT_ISSUER, Minter};

use super::{
    Api, DEFAULT_INVITE_TTL_SECS, SECRET,
    process::{self, ServiceProcess, binary},
};

/// How long an idle connection stays in the client's pool.
const CLIENT_IDLE_TIMEOUT: Duration = Duration::from_secs(2);

/// Knobs a scenario may turn; everything else is the services' defaults.
#[derive(Debug, Clone)]
pub struct WorldOptions {
    pub invite_ttl_secs: u64,
    pub im_active_window_secs: Option<u64>,
    /// More game-service variables (`EXPIRY_POLL_MS`, `IM_TIMEOUT_MS`, `IM_BREAKER_*`, …).
    pub game_env: Vec<(String, String)>,
    /// More IM-service variables (`IM_MAX_OPEN_CONVERSATIONS`, `IM_MESSAGES_KEPT`, …).
    pub im_env: Vec<(String, String)>,
    pub store: StoreChoice,
}

impl Default for WorldOptions {
    fn default() -> Self {
        Self {
            invite_ttl_secs: DEFAULT_INVITE_TTL_SECS,
            im_active_window_secs: None,
            game_env: Vec::new(),
            im_env: Vec::new(),
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

    /// Adds an IM-service environment variable.
    pub fn im_var(mut self, name: &str, value: impl ToString) -> Self {
        self.im_env.push(env(name, value.to_string()));
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
    /// A Redis Cluster of 3 masters with a replica each, of the world's own: a test may kill a
    /// master and its replica takes over.
    ReplicatedCluster,
    /// A primary, a replica and 3 Sentinels of the world's own
    /// (`REDIS_URL=redis+sentinel://…`): a test may kill the primary and the Sentinels promote
    /// the replica.
    Sentinel,
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

/// Both services, their Redis, and a way to make players. Children die with it.
pub struct TestWorld {
    pub(super) api: Api,
    pub(super) minter: Minter,
    // Dropped in this order: the services before the store they use.
    pub(super) replicas: Vec<ServiceProcess>,
    pub(super) im_replicas: Vec<ServiceProcess>,
    pub(super) game: ServiceProcess,
    pub(super) im: ServiceProcess,
    /// `None` on a cluster.
    pub(super) redis: Option<RedisServer>,
    /// The world's own cluster ([`StoreChoice::PrivateCluster`]).
    pub(super) cluster: Option<RedisCluster>,
    /// [`StoreChoice::ReplicatedCluster`].
    pub(super) replicated: Option<ReplicatedCluster>,
    /// [`StoreChoice::Sentinel`].
    pub(super) sentinel: Option<SentinelGroup>,
    /// Standalone URLs of every node holding the world's keys at the start (one, or each
    /// cluster master); [`TestWorld::stored_keys`] asks a replicated store for its masters now.
    pub(super) redis_nodes: Vec<String>,
    pub(super) prefix: String,
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
    let mut replicated = None;
    let mut sentinel = None;
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
        StoreChoice::ReplicatedCluster => {
            let cluster = tokio::task::spawn_blocking(ReplicatedCluster::start)
                .await
                .context("joining the replicated cluster's start-up")??;
            let url = cluster.url();
            let nodes = cluster.master_urls()?;
            replicated = Some(cluster);
            (None, url, nodes)
        }
        StoreChoice::Sentinel => {
            let group = tokio::task::spawn_blocking(SentinelGroup::start)
                .await
                .context("joining the Sentinel group's start-up")??;
            let url = group.url();
            let nodes = vec![format!(
                "redis://127.0.0.1:{}",
                group.port(group.primary()?)?
            )];
            sentinel = Some(group);
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
        im_replicas: Vec::new(),
        game,
        im,
        redis,
        cluster: own_cluster,
        replicated,
        sentinel,
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
        // Launching a game from a chat calls the game service.
        env("GAME_URL", api.game.clone()),
    ];
    if let Some(secs) = options.im_active_window_secs {
        im_env.push(env("IM_ACTIVE_WINDOW_SECS", secs.to_string()));
    }
    im_env.extend(options.im_env.iter().cloned());
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

fn env(name: &str, value: impl Into<String>) -> (String, String) {
    (name.to_owned(), value.into())
}

/// The running test's name, made safe for a Redis key prefix.
pub(super) fn test_name() -> String {
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
