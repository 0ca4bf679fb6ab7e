//! Settings read from the environment (docs/CONTRACT.md, "Configuration").

use std::time::Duration;

use service_kit::config::{JwtSettings, env_opt, env_or};

/// Everything the service needs to start; tests build it directly.
#[derive(Clone)]
pub struct Settings {
    /// `BIND_ADDR`: port 0 picks a free port (tests), [`crate::startup::Application::port`] tells which.
    pub bind_addr: String,
    /// `REDIS_URL`: unset means the in-memory store (one process only).
    pub redis_url: Option<String>,
    /// `REDIS_CLUSTER=true`: `REDIS_URL` is a comma-separated list of cluster seed nodes.
    pub redis_cluster: bool,
    /// `REDIS_KEY_PREFIX`: lets several deployments or test runs share one Redis.
    pub redis_key_prefix: String,
    /// `JWT_SECRET` (required), `JWT_ISSUER`, `JWT_AUDIENCE`, `JWT_ALGORITHM`, `JWT_PUBLIC_KEY_FILE`.
    pub jwt: JwtSettings,
    /// `IM_ACTIVE_WINDOW_SECS`: how recent a conversation must be to count as talking.
    pub active_window: Duration,
    /// `IM_RETENTION_SECS`: TTL of every Redis key, refreshed by activity.
    pub retention: Duration,
}

/// Default `BIND_ADDR` (docs/CONTRACT.md, "Configuration").
pub const DEFAULT_BIND_ADDR: &str = "0.0.0.0:8081";
/// Default `IM_ACTIVE_WINDOW_SECS`: half an hour without a message ends "talking right now".
pub const DEFAULT_ACTIVE_WINDOW_SECS: u64 = 1800;
/// Default `IM_RETENTION_SECS`: a week, long after any conversation stops counting.
pub const DEFAULT_RETENTION_SECS: u64 = 7 * 24 * 3600;

impl Settings {
    pub fn from_env() -> anyhow::Result<Self> {
        let retention: u64 = env_or("IM_RETENTION_SECS", DEFAULT_RETENTION_SECS)?;
        if retention == 0 {
            anyhow::bail!("IM_RETENTION_SECS must be at least 1");
        }
        Ok(Self {
            bind_addr: env_or("BIND_ADDR", DEFAULT_BIND_ADDR.to_owned())?,
            redis_url: env_opt("REDIS_URL"),
            redis_cluster: service_kit::config::redis_cluster_forced()?,
            redis_key_prefix: env_or("REDIS_KEY_PREFIX", "im".to_owned())?,
            jwt: JwtSettings::from_env(env_opt("REDIS_URL").is_none())?,
            active_window: Duration::from_secs(env_or(
                "IM_ACTIVE_WINDOW_SECS",
                DEFAULT_ACTIVE_WINDOW_SECS,
            )?),
            retention: Duration::from_secs(retention),
        })
    }
}
