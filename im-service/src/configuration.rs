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
    /// `REDIS_MIN_REPLICAS_ACKED` and `REDIS_REPLICA_ACK_TIMEOUT_MS`.
    pub redis_replication: service_kit::redis_replication::Replication,
    /// `JWT_SECRET` (required), `JWT_ISSUER`, `JWT_AUDIENCE`, `JWT_ALGORITHM`, `JWT_PUBLIC_KEY_FILE`.
    pub jwt: JwtSettings,
    /// `IM_ACTIVE_WINDOW_SECS`: how recent a conversation must be to count as talking.
    pub active_window: Duration,
    /// `IM_RETENTION_SECS`: TTL of every Redis key, refreshed by activity (and of presence and
    /// game activity in the memory store).
    pub retention: Duration,
}

/// Default `BIND_ADDR` (docs/CONTRACT.md, "Configuration").
pub const DEFAULT_BIND_ADDR: &str = "0.0.0.0:8081";
/// Default `IM_ACTIVE_WINDOW_SECS`: half an hour without a message ends "talking right now".
pub const DEFAULT_ACTIVE_WINDOW_SECS: u64 = 1800;
/// Default `IM_RETENTION_SECS`: a week, long after any conversation stops counting.
pub const DEFAULT_RETENTION_SECS: u64 = 7 * 24 * 3600;
/// Default `IM_MAX_OPEN_CONVERSATIONS`: far more threads than anyone follows at once, few
/// enough that a partners query or a listing stays cheap and a script cannot flood the store.
pub const DEFAULT_MAX_OPEN_CONVERSATIONS: usize = 100;
/// Default `IM_MESSAGES_KEPT`: a long scroll-back of one conversation, a bounded list in Redis.
pub const DEFAULT_MESSAGES_KEPT: usize = 500;
/// Default `IM_MAX_BLOCKS`: more people than anyone needs to block, a bounded set per user.
pub const DEFAULT_MAX_BLOCKS: usize = 1000;
/// Default `IM_PARTNERS_DEFAULT_LIMIT`: one more than an invite prompt names (15), so the game
/// service can tell "exactly 15" from "more".
pub const DEFAULT_PARTNERS_DEFAULT_LIMIT: usize = 16;
/// Default `IM_PARTNERS_MAX_LIMIT`: the most any caller may ask for, bounding one answer.
pub const DEFAULT_PARTNERS_MAX_LIMIT: usize = 100;
/// Default `IM_FEED_SHARDS`: the presence feed's streams, spread over a cluster's slots; a
/// reader takes one batch over all of them, so a few are enough.
pub const DEFAULT_FEED_SHARDS: usize = 8;
/// Default `IM_FEED_KEPT`: changes kept per feed shard, hours of backlog for a reader that was
/// down (8 shards: 800 000 changes), a bounded stream in Redis.
pub const DEFAULT_FEED_KEPT: usize = 100_000;
/// Default `GAME_URL`: the game service on the same host (docs/CONTRACT.md, "Configuration").
pub const DEFAULT_GAME_URL: &str = "http://127.0.0.1:8080";
/// Default `GAME_TIMEOUT_MS`: opening a lobby is one store transaction and one announcement
/// on the game side; two seconds is long for that and short for a player who clicked.
pub const DEFAULT_GAME_TIMEOUT_MS: u64 = 2000;

/// What one user may make the service keep or compute; each is an environment variable.
/// Separate from [`Settings`] so that code building `Settings` by hand keeps compiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `IM_MAX_OPEN_CONVERSATIONS`: open conversations a user opened or answered; past it,
    /// opening (or answering) one more is a 409 `conversation_limit` until one is closed.
    pub max_open_conversations: usize,
    /// `IM_MESSAGES_KEPT`: messages kept per conversation; the oldest are dropped.
    pub messages_kept: usize,
    /// `IM_MAX_BLOCKS`: users one user may block; past it, a 409 `block_limit`.
    pub max_blocks: usize,
    /// `IM_PARTNERS_DEFAULT_LIMIT`: partners returned when the query gives no `limit`.
    pub partners_default_limit: usize,
    /// `IM_PARTNERS_MAX_LIMIT`: the largest `limit` accepted (more is a 400).
    pub partners_max_limit: usize,
    /// `IM_FEED_SHARDS`: streams the presence feed is spread over (1-64), by a stable hash of
    /// the user id. Changing it invalidates every feed cursor (reading on with one is a 400).
    pub feed_shards: usize,
    /// `IM_FEED_KEPT`: presence changes kept per feed shard, the oldest trimmed.
    pub feed_kept: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_open_conversations: DEFAULT_MAX_OPEN_CONVERSATIONS,
            messages_kept: DEFAULT_MESSAGES_KEPT,
            max_blocks: DEFAULT_MAX_BLOCKS,
            partners_default_limit: DEFAULT_PARTNERS_DEFAULT_LIMIT,
            partners_max_limit: DEFAULT_PARTNERS_MAX_LIMIT,
            feed_shards: DEFAULT_FEED_SHARDS,
            feed_kept: DEFAULT_FEED_KEPT,
        }
    }
}

impl Limits {
    pub fn from_env() -> anyhow::Result<Self> {
        let limits = Self {
            max_open_conversations: env_or(
                "IM_MAX_OPEN_CONVERSATIONS",
                DEFAULT_MAX_OPEN_CONVERSATIONS,
            )?,
            messages_kept: env_or("IM_MESSAGES_KEPT", DEFAULT_MESSAGES_KEPT)?,
            max_blocks: env_or("IM_MAX_BLOCKS", DEFAULT_MAX_BLOCKS)?,
            partners_default_limit: env_or(
                "IM_PARTNERS_DEFAULT_LIMIT",
                DEFAULT_PARTNERS_DEFAULT_LIMIT,
            )?,
            partners_max_limit: env_or("IM_PARTNERS_MAX_LIMIT", DEFAULT_PARTNERS_MAX_LIMIT)?,
            feed_shards: env_or("IM_FEED_SHARDS", DEFAULT_FEED_SHARDS)?,
            feed_kept: env_or("IM_FEED_KEPT", DEFAULT_FEED_KEPT)?,
        };
        limits.validate()?;
        Ok(limits)
    }

    /// Every limit at least 1, the default partners limit within the maximum, at most 64 feed
    /// shards.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (name, value) in [
            ("IM_MAX_OPEN_CONVERSATIONS", self.max_open_conversations),
            ("IM_MESSAGES_KEPT", self.messages_kept),
            ("IM_MAX_BLOCKS", self.max_blocks),
            ("IM_PARTNERS_DEFAULT_LIMIT", self.partners_default_limit),
            ("IM_PARTNERS_MAX_LIMIT", self.partners_max_limit),
            ("IM_FEED_SHARDS", self.feed_shards),
            ("IM_FEED_KEPT", self.feed_kept),
        ] {
            if value == 0 {
                anyhow::bail!("{name} must be at least 1");
            }
        }
        if self.partners_default_limit > self.partners_max_limit {
            anyhow::bail!(
                "IM_PARTNERS_DEFAULT_LIMIT ({}) exceeds IM_PARTNERS_MAX_LIMIT ({})",
                self.partners_default_limit,
                self.partners_max_limit
            );
        }
        if self.feed_shards > crate::domain::feed::MAX_SHARDS {
            anyhow::bail!(
                "IM_FEED_SHARDS is 1-{}, got {}",
                crate::domain::feed::MAX_SHARDS,
                self.feed_shards
            );
        }
        Ok(())
    }

    /// The limits the store enforces in the same atomic step as the change.
    pub fn store(&self) -> crate::store::StoreLimits {
        crate::store::StoreLimits {
            max_open_conversations: self.max_open_conversations,
            messages_kept: self.messages_kept,
            max_blocks: self.max_blocks,
            feed_shards: self.feed_shards,
            feed_kept: self.feed_kept,
        }
    }
}

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
            redis_replication: service_kit::redis_replication::Replication::from_env()?,
            jwt: JwtSettings::from_env(env_opt("REDIS_URL").is_none())?,
            active_window: Duration::from_secs(env_or(
                "IM_ACTIVE_WINDOW_SECS",
                DEFAULT_ACTIVE_WINDOW_SECS,
            )?),
            retention: Duration::from_secs(retention),
        })
    }
}

/// Where the game service is, for launching a game from a conversation. Separate from
/// [`Settings`] (as [`Limits`] is) so that code building `Settings` by hand keeps compiling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GameSettings {
    /// `GAME_URL`: the game service's base URL (`http` or `https`), without `/v1`.
    pub url: String,
    /// `GAME_TIMEOUT_MS`: the longest a launch waits for the game service, connecting
    /// included; slower is a 503 `game_unavailable`.
    pub timeout: Duration,
}

impl Default for GameSettings {
    fn default() -> Self {
        Self {
            url: DEFAULT_GAME_URL.to_owned(),
            timeout: Duration::from_millis(DEFAULT_GAME_TIMEOUT_MS),
        }
    }
}

impl GameSettings {
    pub fn from_env() -> anyhow::Result<Self> {
        let settings = Self {
            url: env_or("GAME_URL", DEFAULT_GAME_URL.to_owned())?,
            timeout: Duration::from_millis(env_or("GAME_TIMEOUT_MS", DEFAULT_GAME_TIMEOUT_MS)?),
        };
        settings.validate()?;
        Ok(settings)
    }

    /// An `http(s)` URL with a host, and a timeout of at least 1 ms.
    pub fn validate(&self) -> anyhow::Result<()> {
        let url = reqwest::Url::parse(&self.url)
            .map_err(|err| anyhow::anyhow!("GAME_URL={:?} is not a URL: {err}", self.url))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            anyhow::bail!(
                "GAME_URL={:?} must be an http(s) URL with a host, such as {DEFAULT_GAME_URL}",
                self.url
            );
        }
        if self.timeout.is_zero() {
            anyhow::bail!("GAME_TIMEOUT_MS must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_feed_has_1_to_64_shards_and_keeps_something() {
        let defaults = Limits::default();
        assert_eq!((defaults.feed_shards, defaults.feed_kept), (8, 100_000));
        assert!(defaults.validate().is_ok());
        for shards in [1, 64] {
            let fine = Limits {
                feed_shards: shards,
                ..Limits::default()
            };
            assert!(fine.validate().is_ok(), "{shards}");
        }
        for bad in [
            Limits {
                feed_shards: 0,
                ..Limits::default()
            },
            Limits {
                feed_shards: 65,
                ..Limits::default()
            },
            Limits {
                feed_kept: 0,
                ..Limits::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_game_settings_default_to_the_local_game_service_and_are_checked() {
        let defaults = GameSettings::default();
        assert!(defaults.validate().is_ok());
        assert_eq!(defaults.url, "http://127.0.0.1:8080");
        assert_eq!(defaults.timeout, Duration::from_millis(2000));
        for url in ["game-service:8080", "ftp://game", "http://", ""] {
            let bad = GameSettings {
                url: url.to_owned(),
                ..GameSettings::default()
            };
            assert!(bad.validate().is_err(), "{url:?}");
        }
        let instant = GameSettings {
            timeout: Duration::ZERO,
            ..GameSettings::default()
        };
        assert!(instant.validate().is_err());
    }
}
