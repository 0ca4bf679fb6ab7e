//! One connection type for standalone Redis and Redis Cluster.
//!
//! `REDIS_URL` selects the mode: `redis://host:port` is standalone;
//! `redis+cluster://host1:port1,host2:port2` (or several `redis://` URLs
//! separated by commas) is a cluster, given by any of its nodes.

use std::time::Duration;

use anyhow::Context;
use redis::{
    Client, Cmd, Pipeline, RedisFuture, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::ClusterClient,
    cluster_async::ClusterConnection,
};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub enum RedisConn {
    Standalone(ConnectionManager),
    Cluster(ClusterConnection),
}

/// The node URLs of a cluster `REDIS_URL`, or `None` for a standalone one.
pub fn cluster_nodes(url: &str) -> Option<Vec<String>> {
    if let Some(hosts) = url.strip_prefix("redis+cluster://") {
        return Some(
            hosts
                .split(',')
                .map(|h| format!("redis://{}", h.trim()))
                .collect(),
        );
    }
    url.contains(',')
        .then(|| url.split(',').map(|u| u.trim().to_owned()).collect())
}

impl RedisConn {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        match cluster_nodes(url) {
            Some(nodes) => {
                let client = ClusterClient::builder(nodes.clone())
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(RESPONSE_TIMEOUT)
                    .retries(2)
                    .build()
                    .with_context(|| format!("parsing cluster nodes {nodes:?}"))?;
                let conn = client
                    .get_async_connection()
                    .await
                    .with_context(|| format!("connecting to the Redis Cluster at {nodes:?}"))?;
                Ok(Self::Cluster(conn))
            }
            None => {
                let client =
                    Client::open(url).with_context(|| format!("parsing REDIS_URL {url}"))?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_number_of_retries(2);
                let conn = ConnectionManager::new_with_config(client, config)
                    .await
                    .with_context(|| format!("connecting to Redis at {url}"))?;
                Ok(Self::Standalone(conn))
            }
        }
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Standalone(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Standalone(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Standalone(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_are_recognised() {
        assert_eq!(cluster_nodes("redis://127.0.0.1:6379"), None);
        assert_eq!(
            cluster_nodes("redis+cluster://a:7000,b:7001"),
            Some(vec![
                "redis://a:7000".to_owned(),
                "redis://b:7001".to_owned()
            ])
        );
        assert_eq!(
            cluster_nodes("redis://a:7000, redis://b:7001"),
            Some(vec![
                "redis://a:7000".to_owned(),
                "redis://b:7001".to_owned()
            ])
        );
    }
}
