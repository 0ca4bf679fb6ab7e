//! One Redis connection type for both services: standalone (a connection
//! manager that reconnects by itself) or cluster (routes by slot), chosen by
//! `REDIS_URL` (see [`crate::config::redis_cluster_nodes`]), whose writes wait
//! for replicas when asked to ([`crate::redis_replication`]); a cluster connection that
//! wedges is replaced ([`crate::redis_self_healing`]).

use std::{
    cell::RefCell,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use redis::{
    Client, Cmd, IntoConnectionInfo, Pipeline, RedisFuture, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::{ClusterClient, ClusterConfig},
    cluster_async::ClusterConnection,
};

use crate::{
    config::redis_cluster_nodes,
    redis_replication::Replication,
    redis_self_healing::SelfHealing,
    redis_sentinel::{SentinelLink, SentinelTarget},
};

/// Connecting to a node must be quick: a down Redis answers 503 fast.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one command may take: well above a healthy Redis, well below client timeouts.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// A cluster connection that has answered nothing but timeouts for this long is replaced:
/// longer than a failover takes to show (the dead master's slots are refused, others answer).
const CLUSTER_STUCK_AFTER: Duration = Duration::from_secs(4);
/// Reconnection attempts per failed connection before commands fail (fast 503s while down).
const RECONNECT_RETRIES: u32 = 2;
/// Every Redis socket's settings: a connection with nothing to send (the event relay's
/// subscription) notices a dead peer or a cut network by keep-alive probes after 5 s of
/// silence, one a second, three missed. (A connection with requests in flight relies on TCP's
/// retransmissions: a request sent during a partition may arrive after it heals, and the lock
/// fences make it write nothing then.)
pub(crate) fn tcp_settings() -> redis::io::tcp::TcpSettings {
    use redis::io::tcp::socket2::TcpKeepalive;
    let keepalive = TcpKeepalive::new()
        .with_time(Duration::from_secs(5))
        .with_interval(Duration::from_secs(1))
        .with_retries(3);
    redis::io::tcp::TcpSettings::default().set_keepalive(keepalive)
}

#[derive(Clone)]
pub struct RedisConn {
    link: Link,
    /// `None` when writes do not wait for replicas.
    replication: Option<Replication>,
}

#[derive(Clone)]
enum Link {
    /// Behind an `Arc`: stores clone the connection for every command.
    Standalone(Arc<Standalone>),
    Cluster(Arc<SelfHealing<ClusterConnection>>),
    /// The primary the Sentinels name (`redis+sentinel://`).
    Sentinel(Arc<SentinelLink>),
}

/// A standalone Redis: one shared connection, plus one per thread that asked
/// for its own ([`RedisConn::attach_to_this_thread`]).
#[derive(Clone)]
pub struct Standalone {
    shared: ConnectionManager,
    client: Client,
    config: ConnectionManagerConfig,
    id: u64,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's own connections, by [`Standalone::id`].
    static THREAD_CONNECTIONS: RefCell<Vec<(u64, ConnectionManager)>> = const { RefCell::new(Vec::new()) };
}

impl Standalone {
    /// This thread's own connection if it has one, else the shared one.
    fn current(&self) -> ConnectionManager {
        THREAD_CONNECTIONS
            .with_borrow(|local| {
                local
                    .iter()
                    .find(|(id, _)| *id == self.id)
                    .map(|(_, conn)| conn.clone())
            })
            .unwrap_or_else(|| self.shared.clone())
    }
}

impl RedisConn {
    /// Prepares the connection without waiting for Redis: a service starts
    /// (unready) while Redis is down and connects when it answers. Fails only
    /// on an invalid URL. `force_cluster`: `REDIS_CLUSTER=true`.
    pub fn connect(url: &str, force_cluster: bool) -> anyhow::Result<Self> {
        if let Some(target) = SentinelTarget::parse(url)? {
            let link = SentinelLink::new(&target, Self::standalone_config())?;
            return Ok(Self::over(Link::Sentinel(Arc::new(link))));
        }
        match redis_cluster_nodes(url, force_cluster) {
            Some(nodes) => {
                let client = ClusterClient::builder(nodes.clone())
                    .tcp_settings(tcp_settings())
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(RESPONSE_TIMEOUT)
                    .retries(RECONNECT_RETRIES)
                    .build()
                    .with_context(|| format!("invalid cluster nodes in REDIS_URL: {nodes:?}"))?;
                let connect = move || {
                    let config = ClusterConfig::new()
                        .set_connection_timeout(CONNECT_TIMEOUT)
                        .set_response_timeout(RESPONSE_TIMEOUT);
                    client.get_pending_async_connection_with_config(config)
                };
                let healing = SelfHealing::new(CLUSTER_STUCK_AFTER, connect);
                Ok(Self::over(Link::Cluster(Arc::new(healing))))
            }
            None => {
                let info = url
                    .into_connection_info()
                    .with_context(|| format!("invalid REDIS_URL {url}"))?
                    .set_tcp_settings(tcp_settings());
                let client =
                    Client::open(info).with_context(|| format!("invalid REDIS_URL {url}"))?;
                let config = Self::standalone_config();
                let shared =
                    ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
                        .context("creating the Redis connection manager")?;
                Ok(Self::over(Link::Standalone(Arc::new(Standalone {
                    shared,
                    client,
                    config,
                    id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                }))))
            }
        }
    }

    /// A connection manager's settings: quick to fail, quick to come back.
    fn standalone_config() -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(RECONNECT_RETRIES as usize)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500))
    }

    fn over(link: Link) -> Self {
        Self {
            link,
            replication: None,
        }
    }

    /// This connection, with every write waiting for `replication`'s replicas before it
    /// succeeds (nothing changes when it asks for none).
    pub fn replicated(mut self, replication: Replication) -> Self {
        self.replication = replication.waits().then_some(replication);
        self
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self.link, Link::Cluster(_))
    }

    /// Gives the calling thread its own connection to a standalone Redis,
    /// driven on this thread's runtime: call it from each actix worker (the
    /// app factory runs once per worker thread). A command then costs no hop
    /// to the thread that drives the shared connection and back (a wake-up
    /// and a context switch each way: ~10 % of the game service's CPU under
    /// load). A no-op on a cluster, and when this thread already has one.
    pub fn attach_to_this_thread(&self) {
        let Link::Standalone(standalone) = &self.link else {
            return;
        };
        THREAD_CONNECTIONS.with_borrow_mut(|local| {
            if local.iter().any(|(id, _)| *id == standalone.id) {
                return;
            }
            let own = ConnectionManager::new_lazy_with_config(
                standalone.client.clone(),
                standalone.config.clone(),
            );
            match own {
                Ok(conn) => local.push((standalone.id, conn)),
                Err(err) => tracing::warn!(%err, "no per-thread Redis connection; sharing one"),
            }
        });
    }
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Standalone(standalone) => {
                let mut conn = standalone.current();
                Box::pin(async move { conn.req_packed_command(cmd).await })
            }
            Self::Cluster(healing) => healing.req_packed_command(cmd),
            Self::Sentinel(link) => Box::pin(async move {
                let outcome = match link.primary().await {
                    Ok(mut conn) => conn.req_packed_command(cmd).await,
                    Err(err) => Err(err),
                };
                let reply = outcome
                    .as_ref()
                    .map(std::slice::from_ref)
                    .unwrap_or_default();
                link.observe(&outcome, reply);
                outcome
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Standalone(standalone) => {
                let mut conn = standalone.current();
                Box::pin(async move { conn.req_packed_commands(pipeline, offset, count).await })
            }
            Self::Cluster(healing) => healing.req_packed_commands(pipeline, offset, count),
            Self::Sentinel(link) => Box::pin(async move {
                let outcome = match link.primary().await {
                    Ok(mut conn) => conn.req_packed_commands(pipeline, offset, count).await,
                    Err(err) => Err(err),
                };
                let replies = outcome.as_deref().unwrap_or_default();
                link.observe(&outcome, replies);
                outcome
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Standalone(standalone) => standalone.shared.get_db(),
            Self::Cluster(healing) => healing.get_db(),
            Self::Sentinel(_) => 0,
        }
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        crate::redis_round_trips::count();
        let waited = self
            .replication
            .and_then(|rep| Some((rep, rep.command_then_wait(cmd)?)));
        let Some((replication, pipe)) = waited else {
            return self.link.req_packed_command(cmd);
        };
        // The write and its WAIT in one request, to the node the write goes to.
        Box::pin(async move {
            let mut replies = self.link.req_packed_commands(&pipe, 0, 2).await?;
            let acked = replies.pop();
            let reply = replies.pop().unwrap_or(Value::Nil);
            // A refused command wrote nothing: its error is the answer.
            if !matches!(reply, Value::ServerError(_)) {
                replication.check(acked)?;
            }
            Ok(reply)
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        crate::redis_round_trips::count();
        let waited = self
            .replication
            .and_then(|rep| Some((rep, rep.pipeline_then_wait(pipeline)?)));
        let Some((replication, pipe)) = waited else {
            return self.link.req_packed_commands(pipeline, offset, count);
        };
        Box::pin(async move {
            let mut replies = self
                .link
                .req_packed_commands(&pipe, offset, count + 1)
                .await?;
            replication.check(replies.pop())?;
            Ok(replies)
        })
    }

    fn get_db(&self) -> i64 {
        self.link.get_db()
    }
}
