//! A Redis primary found through Sentinel (`REDIS_URL=redis+sentinel://host:26379,…/master-name`): redis-rs asks the Sentinels which node is the primary, and a connection that fails or lands on a demoted primary asks again.

use std::{sync::RwLock, time::Duration};

use anyhow::{Context, bail};
use redis::{
    Client, ErrorKind, RedisError, RedisResult, ServerErrorKind, Value,
    aio::{ConnectionManager, ConnectionManagerConfig},
    sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType},
};
use tokio::sync::Mutex;

/// The scheme of a `REDIS_URL` naming Sentinels.
const SCHEME: &str = "redis+sentinel://";

/// Where a `redis+sentinel://` URL points: the Sentinels and the name of the primary they watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelTarget {
    /// `redis://host:port` of each Sentinel.
    pub sentinels: Vec<String>,
    pub master_name: String,
}

impl SentinelTarget {
    /// `Some` for a `redis+sentinel://host:port,host:port/master-name` URL, `None` for any other
    /// scheme; an error when it is one but malformed.
    pub fn parse(url: &str) -> anyhow::Result<Option<Self>> {
        let Some(rest) = url.trim().strip_prefix(SCHEME) else {
            return Ok(None);
        };
        let (hosts, name) = rest
            .split_once('/')
            .with_context(|| format!("REDIS_URL {url}: name the primary after a `/`"))?;
        let master_name = name.trim_end_matches('/').to_owned();
        if master_name.is_empty() || master_name.contains('/') {
            bail!("REDIS_URL {url}: `{name}` is not a Sentinel master name");
        }
        let sentinels: Vec<String> = hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|h| format!("redis://{h}"))
            .collect();
        if sentinels.is_empty() {
            bail!("REDIS_URL {url}: list at least one Sentinel host:port");
        }
        Ok(Some(Self {
            sentinels,
            master_name,
        }))
    }

    fn client(&self) -> anyhow::Result<SentinelClient> {
        let primary = SentinelNodeConnectionInfo::default()
            .set_tcp_settings(crate::redis_conn::tcp_settings());
        SentinelClient::build(
            self.sentinels.clone(),
            self.master_name.clone(),
            Some(primary),
            SentinelServerType::Master,
        )
        .with_context(|| format!("invalid Sentinel addresses {:?}", self.sentinels))
    }

    /// The primary's URL as the Sentinels name it now (for the event relay's subscription).
    pub async fn primary_url(&self) -> anyhow::Result<String> {
        let client = self.client()?.async_get_client().await.with_context(|| {
            format!(
                "asking the Sentinels {:?} for {}",
                self.sentinels, self.master_name
            )
        })?;
        Ok(format!("redis://{}", client.get_connection_info().addr()))
    }
}

/// The current primary's connection, replaced whenever it fails in a way a failover explains.
pub(crate) struct SentinelLink {
    sentinels: Mutex<SentinelClient>,
    current: RwLock<Option<ConnectionManager>>,
    config: ConnectionManagerConfig,
}

impl SentinelLink {
    /// Prepares the link without asking the Sentinels yet (the first command does).
    pub(crate) fn new(
        target: &SentinelTarget,
        config: ConnectionManagerConfig,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            sentinels: Mutex::new(target.client()?),
            current: RwLock::new(None),
            config,
        })
    }

    /// The primary's connection: the known one, else the one the Sentinels name now.
    pub(crate) async fn primary(&self) -> RedisResult<ConnectionManager> {
        if let Some(conn) = self.current.read().ok().and_then(|c| c.clone()) {
            return Ok(conn);
        }
        let mut sentinels = self.sentinels.lock().await;
        let client: Client = tokio::time::timeout(SENTINEL_ANSWER, sentinels.async_get_client())
            .await
            .map_err(|_| {
                RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the Sentinels did not name the primary in time",
                ))
            })??;
        let conn = ConnectionManager::new_lazy_with_config(client, self.config.clone())?;
        if let Ok(mut current) = self.current.write() {
            *current = Some(conn.clone());
        }
        Ok(conn)
    }

    /// After `outcome` of a command: forgets the primary when it is gone or no longer primary,
    /// so that the next command asks the Sentinels again.
    pub(crate) fn observe<T>(&self, outcome: &RedisResult<T>, replies: &[Value]) {
        let failed_over = match outcome {
            Err(err) => means_another_primary(err),
            Ok(_) => replies.iter().any(|reply| {
                matches!(reply, Value::ServerError(e) if e.code() == "READONLY" || e.code() == "LOADING")
            }),
        };
        if failed_over && let Ok(mut current) = self.current.write() {
            tracing::info!("the Redis primary is gone or demoted; asking the Sentinels again");
            *current = None;
        }
    }
}

/// Whether an error says the primary may have moved: it cannot be reached, or it answers as a
/// replica (`READONLY`) or is loading.
fn means_another_primary(err: &RedisError) -> bool {
    err.is_io_error()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_timeout()
        || matches!(
            err.kind(),
            ErrorKind::Server(ServerErrorKind::ReadOnly | ServerErrorKind::BusyLoading)
                | ErrorKind::MasterNameNotFoundBySentinel
        )
}

/// How long the Sentinels may take to answer before a command gives up (they are asked only
/// when the primary is unknown).
pub(crate) const SENTINEL_ANSWER: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_urls_name_their_sentinels_and_primary() -> anyhow::Result<()> {
        let target = SentinelTarget::parse("redis+sentinel://a:26379, b:26380/mymaster")?;
        assert_eq!(
            target,
            Some(SentinelTarget {
                sentinels: vec!["redis://a:26379".into(), "redis://b:26380".into()],
                master_name: "mymaster".into(),
            })
        );
        assert_eq!(SentinelTarget::parse("redis://a:6379")?, None);
        for bad in [
            "redis+sentinel://a:26379",
            "redis+sentinel://a:26379/",
            "redis+sentinel:///mymaster",
        ] {
            assert!(SentinelTarget::parse(bad).is_err(), "{bad}");
        }
        Ok(())
    }
}
