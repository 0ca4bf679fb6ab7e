//! Environment-variable parsing shared by both services.

use std::{env, fs, str::FromStr};

use anyhow::{Context, bail};
use jsonwebtoken::Algorithm;
use shared_types::auth::{DEFAULT_AUDIENCE, DEFAULT_ISSUER, Minter, Verifier};

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
    /// `JWT_PUBLIC_KEY_FILE` + `JWT_ALGORITHM` (RS256 or EdDSA): verify with a public key instead.
    pub public_key: Option<(Algorithm, Vec<u8>)>,
}

impl JwtSettings {
    /// Reads `JWT_SECRET` (required), `JWT_ISSUER`, `JWT_AUDIENCE`, `JWT_ALGORITHM`, `JWT_PUBLIC_KEY_FILE`.
    pub fn from_env() -> anyhow::Result<Self> {
        let Some(secret) = env_opt("JWT_SECRET") else {
            bail!("JWT_SECRET is required: the secret that signs and verifies HS256 tokens");
        };
        let public_key = match env_opt("JWT_PUBLIC_KEY_FILE") {
            None => None,
            Some(path) => {
                let algorithm: Algorithm = env_or("JWT_ALGORITHM", Algorithm::RS256)?;
                let pem = fs::read(&path)
                    .with_context(|| format!("reading JWT_PUBLIC_KEY_FILE {path}"))?;
                Some((algorithm, pem))
            }
        };
        Ok(Self {
            secret,
            issuer: env_or("JWT_ISSUER", DEFAULT_ISSUER.to_owned())?,
            audience: env_or("JWT_AUDIENCE", DEFAULT_AUDIENCE.to_owned())?,
            public_key,
        })
    }

    pub fn verifier(&self) -> anyhow::Result<Verifier> {
        match &self.public_key {
            None => Ok(Verifier::hs256(
                self.secret.as_bytes(),
                &self.issuer,
                &self.audience,
            )),
            Some((algorithm, pem)) => {
                Verifier::public_key_pem(*algorithm, pem, &self.issuer, &self.audience)
                    .map(|verifier| verifier.with_service_secret(self.secret.as_bytes()))
                    .context("loading the JWT public key")
            }
        }
    }

    pub fn minter(&self) -> Minter {
        Minter::hs256(self.secret.as_bytes(), &self.issuer, &self.audience)
    }
}

/// The seed nodes when `REDIS_URL` names a Redis Cluster, `None` for standalone.
///
/// A cluster is `redis+cluster://host1:port1,host2:port2`, several `redis://`
/// URLs separated by commas, or any `REDIS_URL` with `REDIS_CLUSTER=true`.
pub fn redis_cluster_nodes(url: &str, force_cluster: bool) -> Option<Vec<String>> {
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
    fn cluster_urls_are_recognised() {
        assert_eq!(redis_cluster_nodes("redis://127.0.0.1:6379", false), None);
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
