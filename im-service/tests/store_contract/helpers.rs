//! Fixtures: stores to test, users, conversations and timestamps.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use e2e::RedisServer;
use im_service::{
    domain::clock::to_millis_precision,
    store::{MemoryStore, RedisStore, RedisStoreConfig, StoreLimits},
};
use shared_types::{UserId, im::Conversation};
use uuid::Uuid;

/// Retention used by the Redis fixtures: long enough never to expire during a test.
pub const RETENTION: Duration = Duration::from_secs(3600);
/// Retention of the stores the expiry tests run on: short enough to wait for.
pub const SHORT_RETENTION: Duration = Duration::from_millis(400);

/// The limits every store under test enforces: small, so the tests reach them.
pub const LIMITS: StoreLimits = StoreLimits {
    max_open_conversations: 6,
    messages_kept: 8,
    max_blocks: 4,
    feed_shards: 3,
    feed_kept: 1000,
};

pub fn memory_store() -> MemoryStore {
    MemoryStore::with_retention(LIMITS, RETENTION)
}

/// A memory store whose presence and activity expire after [`SHORT_RETENTION`].
pub fn expiring_memory_store() -> MemoryStore {
    MemoryStore::with_retention(LIMITS, SHORT_RETENTION)
}

/// The configuration of a Redis store under test.
pub fn redis_config(url: String, cluster: bool, prefix: &str) -> RedisStoreConfig {
    redis_config_with(url, cluster, prefix, RETENTION)
}

/// As [`redis_config`], with this retention.
pub fn redis_config_with(
    url: String,
    cluster: bool,
    prefix: &str,
    retention: Duration,
) -> RedisStoreConfig {
    RedisStoreConfig {
        url,
        cluster,
        key_prefix: prefix.to_owned(),
        retention,
        limits: LIMITS,
        replication: Default::default(),
    }
}

/// A Redis store on a private `redis-server`, with a key prefix of its own.
pub struct RedisFixture {
    pub server: RedisServer,
    pub prefix: String,
    pub store: RedisStore,
}

impl RedisFixture {
    pub fn start(name: &str) -> anyhow::Result<Self> {
        Self::start_with(name, RETENTION)
    }

    /// A fixture whose keys live [`SHORT_RETENTION`].
    pub fn start_expiring(name: &str) -> anyhow::Result<Self> {
        Self::start_with(name, SHORT_RETENTION)
    }

    fn start_with(name: &str, retention: Duration) -> anyhow::Result<Self> {
        let server = RedisServer::start()?;
        let prefix = e2e::unique_prefix(name);
        let store =
            RedisStore::connect(&redis_config_with(server.url(), false, &prefix, retention))?;
        Ok(Self {
            server,
            prefix,
            store,
        })
    }

    /// Another store on the same server: a second replica, or another deployment.
    pub fn store_on(server: &RedisServer, prefix: &str) -> anyhow::Result<RedisStore> {
        RedisStore::connect(&redis_config(server.url(), false, prefix))
    }

    /// A plain connection for looking at the keys themselves.
    pub async fn raw(&self) -> anyhow::Result<redis::aio::MultiplexedConnection> {
        let client = redis::Client::open(self.server.url())?;
        Ok(client.get_multiplexed_async_connection().await?)
    }
}

pub fn user(raw: &str) -> anyhow::Result<UserId> {
    Ok(UserId::parse(raw)?)
}

/// An instant with the precision the stores keep (milliseconds).
pub fn now() -> DateTime<Utc> {
    to_millis_precision(Utc::now())
}

pub fn minutes(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}

/// A new open conversation between `people` (the first opens it), created at `at`.
pub fn conversation(people: &[&str], at: DateTime<Utc>) -> anyhow::Result<Conversation> {
    Ok(Conversation {
        id: Uuid::new_v4(),
        participants: people.iter().map(|p| user(p)).collect::<Result<_, _>>()?,
        created_at: at,
        last_activity_at: None,
        closed: false,
    })
}
