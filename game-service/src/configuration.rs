//! Settings read from the environment (see the README's configuration table).

use std::time::Duration;

use service_kit::config::{JwtSettings, env_opt, env_or};

#[derive(Clone)]
pub struct Settings {
    pub bind_addr: String,
    /// `None`: the embedded in-memory store (one process only).
    pub redis_url: Option<String>,
    /// `REDIS_CLUSTER=true`: a single `REDIS_URL` is a cluster seed node.
    pub redis_cluster: bool,
    /// Prefix of every Redis key, so several deployments or tests can share one Redis.
    pub redis_key_prefix: String,
    pub jwt: JwtSettings,
    pub im_url: String,
    pub im_timeout: Duration,
    pub invite_ttl: Duration,
    /// How often this replica looks for due invitation expiries.
    pub expiry_poll: Duration,
    /// Consecutive IM failures that open the circuit breaker.
    pub im_breaker_threshold: u32,
    /// How long an open breaker answers "unavailable" without calling the IM service.
    pub im_breaker_cooldown: Duration,
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            bind_addr: env_or("BIND_ADDR", "0.0.0.0:8080".to_owned())?,
            redis_url: env_opt("REDIS_URL"),
            redis_cluster: service_kit::config::redis_cluster_forced()?,
            redis_key_prefix: env_or("REDIS_KEY_PREFIX", "game".to_owned())?,
            jwt: JwtSettings::from_env()?,
            im_url: env_or("IM_URL", "http://127.0.0.1:8081".to_owned())?,
            im_timeout: Duration::from_millis(env_or("IM_TIMEOUT_MS", 500)?),
            invite_ttl: Duration::from_secs(env_or("INVITE_TTL_SECS", 60)?),
            expiry_poll: Duration::from_millis(env_or("EXPIRY_POLL_MS", 200)?),
            im_breaker_threshold: env_or("IM_BREAKER_THRESHOLD", 5)?,
            im_breaker_cooldown: Duration::from_millis(env_or("IM_BREAKER_COOLDOWN_MS", 2000)?),
        })
    }
}
