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
                    .context("loading the JWT public key")
            }
        }
    }

    pub fn minter(&self) -> Minter {
        Minter::hs256(self.secret.as_bytes(), &self.issuer, &self.audience)
    }
}
