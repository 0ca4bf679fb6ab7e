//! Environment-variable parsing shared by both services.

use std::{env, fs, str::FromStr};

use anyhow::{Context, bail};
use jsonwebtoken::Algorithm;
use shared_types::auth::{
    DEFAULT_AUDIENCE, DEFAULT_ISSUER, DEFAULT_MAX_TTL_SECS, DEFAULT_VERIFIED_CACHE_ENTRIES,
    DEV_SECRET, MIN_SECRET_BYTES, Minter, Verifier,
};

/// `name` parsed from the environment, or `default` when unset or empty.
pub fn env_or<T>(name: &str, default: T) -> anyhow::Result<T>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match env::var(name) {
        Ok(raw) if !raw.trim().is_empty() => raw
            .trim()
            .parse()
            .map_err(|e| anyhow::anyhow!("{name}={raw:?} is invalid: {e}")),
        _ => Ok(default),
    }
}

/// `name` from the environment when set and non-empty.
pub fn env_opt(name: &str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Token settings: both services verify player and service tokens; the game
/// service also signs service tokens for its calls to the IM service.
#[derive(Clone)]
pub struct JwtSettings {
    pub secret: String,
    pub issuer: String,
    pub audience: String,
    /// `JWT_PUBLIC_KEY_FILE` + `JWT_ALGORITHM` (RS256 or EdDSA): a player
    /// identity provider's key; it never vouches for scope `service`.
    pub public_key: Option<(Algorithm, Vec<u8>)>,
    /// `JWT_SERVICE_PUBLIC_KEY_FILE` + `JWT_SERVICE_ALGORITHM`: the platform's
    /// own key for `service` tokens, besides `JWT_SECRET`.
    pub service_public_key: Option<(Algorithm, Vec<u8>)>,
    /// `JWT_MAX_TTL_SECS`: a token whose `exp` lies further ahead is refused.
    pub max_ttl_secs: u64,
    /// `JWT_VERIFIED_CACHE_ENTRIES`: verified tokens remembered until they expire (0: none).
    pub verified_cache_entries: usize,
}

/// `(algorithm, PEM)` from `<file_variable>` and `<algorithm_variable>`, when the file is set.
fn pem_key(
    file_variable: &str,
    algorithm_variable: &str,
) -> anyhow::Result<Option<(Algorithm, Vec<u8>)>> {
    let Some(path) = env_opt(file_variable) else {
        return Ok(None);
    };
    let algorithm: Algorithm = env_or(algorithm_variable, Algorithm::RS256)?;
    let pem = fs::read(&path).with_context(|| format!("reading {file_variable} {path}"))?;
    Ok(Some((algorithm, pem)))
}

impl JwtSettings {
    /// Defaults around `secret` (issuer, audience, no public keys), for tests and tools.
    pub fn with_secret(secret: &str) -> Self {
        Self {
            secret: secret.to_owned(),
            issuer: DEFAULT_ISSUER.to_owned(),
            audience: DEFAULT_AUDIENCE.to_owned(),
            public_key: None,
            service_public_key: None,
            max_ttl_secs: DEFAULT_MAX_TTL_SECS,
            verified_cache_entries: DEFAULT_VERIFIED_CACHE_ENTRIES,
        }
    }

    /// Reads `JWT_SECRET` (required), `JWT_ISSUER`, `JWT_AUDIENCE`,
    /// `JWT_PUBLIC_KEY_FILE` + `JWT_ALGORITHM`, `JWT_SERVICE_PUBLIC_KEY_FILE` +
    /// `JWT_SERVICE_ALGORITHM`, `JWT_MAX_TTL_SECS`, `JWT_VERIFIED_CACHE_ENTRIES`. `in_memory`: the service
    /// runs on the in-memory store, the only place the development secret is
    /// accepted.
    pub fn from_env(in_memory: bool) -> anyhow::Result<Self> {
        let Some(secret) = env_opt("JWT_SECRET") else {
            bail!("JWT_SECRET is required: the secret that signs and verifies HS256 tokens");
        };
        check_secret(&secret, in_memory)?;
        let max_ttl_secs = env_or("JWT_MAX_TTL_SECS", DEFAULT_MAX_TTL_SECS)?;
        anyhow::ensure!(max_ttl_secs >= 1, "JWT_MAX_TTL_SECS must be at least 1");
        Ok(Self {
            secret,
            issuer: env_or("JWT_ISSUER", DEFAULT_ISSUER.to_owned())?,
            audience: env_or("JWT_AUDIENCE", DEFAULT_AUDIENCE.to_owned())?,
            public_key: pem_key("JWT_PUBLIC_KEY_FILE", "JWT_ALGORITHM")?,
            service_public_key: pem_key("JWT_SERVICE_PUBLIC_KEY_FILE", "JWT_SERVICE_ALGORITHM")?,
            max_ttl_secs,
            verified_cache_entries: env_or(
                "JWT_VERIFIED_CACHE_ENTRIES",
                DEFAULT_VERIFIED_CACHE_ENTRIES,
            )?,
        })
    }

    pub fn verifier(&self) -> anyhow::Result<Verifier> {
        let mut verifier = match &self.public_key {
            None => Verifier::hs256(self.secret.as_bytes(), &self.issuer, &self.audience),
            Some((algorithm, pem)) => {
                Verifier::public_key_pem(*algorithm, pem, &self.issuer, &self.audience)
                    .context("loading JWT_PUBLIC_KEY_FILE")?
                    .with_service_secret(self.secret.as_bytes())
            }
        };
        if let Some((algorithm, pem)) = &self.service_public_key {
            verifier = verifier
                .with_service_public_key(*algorithm, pem)
                .context("loading JWT_SERVICE_PUBLIC_KEY_FILE")?;
        }
        Ok(verifier
            .with_max_ttl(self.max_ttl_secs)
            .with_verified_cache(self.verified_cache_entries))
    }

    pub fn minter(&self) -> Minter {
        Minter::hs256(self.secret.as_bytes(), &self.issuer, &self.audience)
    }
}

/// Refuses a secret anyone could guess: too short for HS256, or the
/// quickstart's published development secret outside the in-memory store.
pub fn check_secret(secret: &str, in_memory: bool) -> anyhow::Result<()> {
    if secret.len() < MIN_SECRET_BYTES {
        bail!(
            "JWT_SECRET is {} bytes long; it must be at least {MIN_SECRET_BYTES} (make one with \
             `openssl rand -base64 48`)",
            secret.len()
        );
    }
    if secret == DEV_SECRET && !in_memory {
        bail!(
            "JWT_SECRET is the quickstart's published development secret, accepted only with the \
             in-memory store; with REDIS_URL set, use a secret of your own (`openssl rand -base64 48`)"
        );
    }
    Ok(())
}

/// The seed nodes when `REDIS_URL` names a Redis Cluster, `None` for standalone.
///
/// A cluster is `redis+cluster://host1:port1,host2:port2`, several `redis://`
/// URLs separated by commas, or any `REDIS_URL` with `REDIS_CLUSTER=true`.
pub fn redis_cluster_nodes(url: &str, force_cluster: bool) -> Option<Vec<String>> {
    // Sentinels are listed with commas too, but they name one primary.
    if url.trim().starts_with("redis+sentinel://") {
        return None;
    }
    if let Some(hosts) = url.strip_prefix("redis+cluster://") {
        return Some(
            hosts
                .split(',')
                .map(|h| format!("redis://{}", h.trim()))
                .collect(),
        );
    }
    (force_cluster || url.contains(','))
        .then(|| url.split(',').map(|u| u.trim().to_owned()).collect())
}

/// `REDIS_CLUSTER=true` forces cluster mode for a single seed URL.
pub fn redis_cluster_forced() -> anyhow::Result<bool> {
    env_or("REDIS_CLUSTER", false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_secrets_and_the_development_secret_with_redis_are_refused() {
        let short = check_secret("0123456789abcdef0123456789abcde", true);
        assert!(short.is_err_and(|e| e.to_string().contains("at least 32")));
        assert!(check_secret(&"x".repeat(32), false).is_ok());
        assert!(check_secret(DEV_SECRET, true).is_ok(), "the quickstart");
        let published = check_secret(DEV_SECRET, false);
        assert!(published.is_err_and(|e| e.to_string().contains("in-memory store")));
    }

    #[test]
    fn cluster_urls_are_recognised() {
        assert_eq!(redis_cluster_nodes("redis://127.0.0.1:6379", false), None);
        assert_eq!(
            redis_cluster_nodes("redis+sentinel://a:26379,b:26379/mymaster", false),
            None
        );
        assert_eq!(
            redis_cluster_nodes("redis://127.0.0.1:7000", true),
            Some(vec!["redis://127.0.0.1:7000".to_owned()])
        );
        assert_eq!(
            redis_cluster_nodes("redis+cluster://a:7000,b:7001", false),
            Some(vec![
                "redis://a:7000".to_owned(),
                "redis://b:7001".to_owned()
            ])
        );
        assert_eq!(
            redis_cluster_nodes("redis://a:7000, redis://b:7001", false),
            Some(vec![
                "redis://a:7000".to_owned(),
                "redis://b:7001".to_owned()
            ])
        );
    }
}
