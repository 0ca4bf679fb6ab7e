//! Settings read from the environment (see the README's configuration table).

use std::{fs, time::Duration};

use anyhow::Context;
use service_kit::{
    config::{JwtSettings, env_opt, env_or},
    redis_replication::Replication,
};

use crate::join_tokens::KeySource;

#[derive(Clone)]
pub struct Settings {
    pub bind_addr: String,
    /// `None`: the embedded in-memory store (one process only).
    pub redis_url: Option<String>,
    /// `REDIS_CLUSTER=true`: a single `REDIS_URL` is a cluster seed node.
    pub redis_cluster: bool,
    /// Prefix of every Redis key, so several deployments or tests can share one Redis.
    pub redis_key_prefix: String,
    /// `REDIS_MIN_REPLICAS_ACKED` and `REDIS_REPLICA_ACK_TIMEOUT_MS`.
    pub redis_replication: Replication,
    pub jwt: JwtSettings,
    pub im_url: String,
    pub im_timeout: Duration,
    pub invite_ttl: Duration,
    /// How often this replica looks for due invitation expiries.
    pub expiry_poll: Duration,
    /// How often the replica holding the presence feed's lease reads it (`PRESENCE_POLL_MS`).
    pub presence_poll: Duration,
    /// Consecutive IM failures that open the circuit breaker.
    pub im_breaker_threshold: u32,
    /// How long an open breaker answers "unavailable" without calling the IM service.
    pub im_breaker_cooldown: Duration,
    /// `JOIN_TOKEN_KEY_FILE` and `JOIN_TOKEN_VERIFY_KEY_FILES`.
    pub join_token_keys: KeySource,
    pub join_token_ttl: Duration,
    /// A session with no sign of life for this long ends as abandoned.
    pub session_idle: Duration,
    /// How long player records and live sessions are kept after their last change.
    pub record_ttl: Duration,
    /// Event streams one player may hold on one replica (the oldest is closed past it).
    pub max_streams_per_player: usize,
    /// `GAME_MODES`: the kinds of match, each with its most players.
    pub modes: crate::domain::modes::Modes,
    /// The reference web client at `/play/` (`PLAY_ENABLED`), and the IM
    /// service's URL as a player's browser reaches it (`PLAY_IM_URL`).
    pub play: Option<crate::play::PlayClient>,
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Self> {
        let im_url = env_or("IM_URL", "http://127.0.0.1:8081".to_owned())?;
        let play = if env_or("PLAY_ENABLED", true)? {
            Some(crate::play::PlayClient::new(&env_or(
                "PLAY_IM_URL",
                im_url.clone(),
            )?)?)
        } else {
            None
        };
        Ok(Self {
            bind_addr: env_or("BIND_ADDR", "0.0.0.0:8080".to_owned())?,
            redis_url: env_opt("REDIS_URL"),
            redis_cluster: service_kit::config::redis_cluster_forced()?,
            redis_key_prefix: env_or("REDIS_KEY_PREFIX", "game".to_owned())?,
            redis_replication: Replication::from_env()?,
            jwt: JwtSettings::from_env(env_opt("REDIS_URL").is_none())?,
            im_url,
            im_timeout: Duration::from_millis(env_or("IM_TIMEOUT_MS", 500)?),
            invite_ttl: Duration::from_secs(env_or("INVITE_TTL_SECS", 60)?),
            expiry_poll: Duration::from_millis(env_or("EXPIRY_POLL_MS", 200)?),
            presence_poll: Duration::from_millis(positive("PRESENCE_POLL_MS", 500)?),
            im_breaker_threshold: env_or("IM_BREAKER_THRESHOLD", 5)?,
            im_breaker_cooldown: Duration::from_millis(env_or("IM_BREAKER_COOLDOWN_MS", 2000)?),
            join_token_keys: KeySource {
                signing_pem: env_opt("JOIN_TOKEN_KEY_FILE")
                    .map(|path| read_key("JOIN_TOKEN_KEY_FILE", &path))
                    .transpose()?,
                verify_pems: env_opt("JOIN_TOKEN_VERIFY_KEY_FILES")
                    .iter()
                    .flat_map(|list| list.split(','))
                    .map(str::trim)
                    .filter(|path| !path.is_empty())
                    .map(|path| read_key("JOIN_TOKEN_VERIFY_KEY_FILES", path))
                    .collect::<anyhow::Result<_>>()?,
            },
            join_token_ttl: Duration::from_secs(positive("JOIN_TOKEN_TTL_SECS", 900)?),
            session_idle: Duration::from_secs(positive("SESSION_IDLE_SECS", 1800)?),
            record_ttl: Duration::from_secs(positive("RECORD_TTL_SECS", 86_400)?),
            max_streams_per_player: service_kit::events::max_streams_from_env()?,
            modes: crate::domain::modes::Modes::parse(&env_or(
                "GAME_MODES",
                crate::domain::modes::DEFAULT_GAME_MODES.to_owned(),
            )?)
            .map_err(|why| anyhow::anyhow!("GAME_MODES: {why}"))?,
            play,
        })
    }
}

fn read_key(variable: &str, path: &str) -> anyhow::Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("reading {variable} {path}"))
}

/// A duration in seconds that must be at least 1.
fn positive(name: &str, default: u64) -> anyhow::Result<u64> {
    let secs: u64 = env_or(name, default)?;
    anyhow::ensure!(secs >= 1, "{name} must be at least 1");
    Ok(secs)
}
