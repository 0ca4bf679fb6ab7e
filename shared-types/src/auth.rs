//! JWT claims, their verification (algorithm pinned, `exp`/`iss`/`aud` required) and minting.

mod verified;

use std::{
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use self::verified::VerifiedTokens;
use crate::UserId;

pub const DEFAULT_ISSUER: &str = "game-platform";
pub const DEFAULT_AUDIENCE: &str = "game-platform";
/// Clock skew tolerated between token issuers and these services.
pub const LEEWAY_SECS: u64 = 5;

/// Who a token speaks for: an end user, or another service of the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Player,
    Service,
}

/// The claims both services read.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub sub: UserId,
    pub exp: u64,
    #[serde(default)]
    pub iat: Option<u64>,
    /// Not valid before this instant (honoured when present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    pub iss: String,
    pub aud: String,
    pub scope: Scope,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: UserId,
    pub scope: Scope,
    /// When the token expires (seconds since the epoch): an event stream opened with it ends then.
    pub expires_at: u64,
}

impl Caller {
    pub fn is_service(&self) -> bool {
        self.scope == Scope::Service
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid token: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("invalid key: {0}")]
    Key(String),
    #[error("no configured key verifies this token")]
    UnknownKey,
    #[error("a token of scope {0:?} is not accepted from this key")]
    ScopeNotGranted(Scope),
    #[error("the token expires more than {0} s ahead")]
    TooLong(u64),
}

/// Shortest `JWT_SECRET` accepted: HS256 wants at least its 256-bit output.
pub const MIN_SECRET_BYTES: usize = 32;
/// The secret the quickstart uses; accepted only with the in-memory store.
pub const DEV_SECRET: &str = "dev-secret-for-the-quickstart-only-never-in-production";
/// Default `JWT_MAX_TTL_SECS`: a token valid for longer than a day is refused.
pub const DEFAULT_MAX_TTL_SECS: u64 = 24 * 3600;
/// Default `JWT_VERIFIED_CACHE_ENTRIES`: tokens remembered once verified (~100 bytes each).
pub const DEFAULT_VERIFIED_CACHE_ENTRIES: usize = 100_000;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Which scopes a verification key may vouch for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grants {
    /// The platform's own shared secret, when no identity provider is configured.
    Any,
    /// A player identity provider's key: never scope `service`.
    Players,
    /// `JWT_SECRET` beside an identity provider, or `JWT_SERVICE_PUBLIC_KEY_FILE`.
    Services,
}

#[derive(Clone)]
struct Key {
    key: DecodingKey,
    validation: Validation,
    grants: Grants,
}

/// Verifies bearer tokens with pinned keys and algorithms; anything else
/// (`none` included) is refused. `exp`, `iss`, `aud`, `sub` are required,
/// `nbf` is honoured, and `exp` may lie at most `max_ttl` ahead.
///
/// Scope `service` is granted only by the platform's keys (`JWT_SECRET`, or
/// a service public key), never by a player identity provider's key.
#[derive(Clone)]
pub struct Verifier {
    issuer: String,
    audience: String,
    keys: Vec<Key>,
    max_ttl_secs: u64,
    /// Tokens verified before (shared by clones); `None`: every token is checked every time.
    verified: Option<Arc<VerifiedTokens>>,
}

/// A PEM public key for `algorithm` (RS256/384/512 or EdDSA).
fn public_key(algorithm: Algorithm, pem: &[u8]) -> Result<DecodingKey, AuthError> {
    match algorithm {
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => {
            DecodingKey::from_rsa_pem(pem).map_err(|e| AuthError::Key(e.to_string()))
        }
        Algorithm::EdDSA => {
            DecodingKey::from_ed_pem(pem).map_err(|e| AuthError::Key(e.to_string()))
        }
        other => Err(AuthError::Key(format!("unsupported algorithm {other:?}"))),
    }
}

impl Verifier {
    /// HS256 with the platform's shared secret, for players and services (the default).
    pub fn hs256(secret: &[u8], issuer: &str, audience: &str) -> Self {
        Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            keys: Vec::new(),
            max_ttl_secs: DEFAULT_MAX_TTL_SECS,
            verified: None,
        }
        .with_key(
            DecodingKey::from_secret(secret),
            Algorithm::HS256,
            Grants::Any,
        )
    }

    /// A player identity provider's key (RS256 or EdDSA, PEM): a configuration
    /// option, not a code change. It vouches for players only; add the
    /// platform's keys for services with [`Verifier::with_service_secret`] or
    /// [`Verifier::with_service_public_key`].
    pub fn public_key_pem(
        algorithm: Algorithm,
        pem: &[u8],
        issuer: &str,
        audience: &str,
    ) -> Result<Self, AuthError> {
        let key = public_key(algorithm, pem)?;
        Ok(Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            keys: Vec::new(),
            max_ttl_secs: DEFAULT_MAX_TTL_SECS,
            verified: None,
        }
        .with_key(key, algorithm, Grants::Players))
    }

    fn with_key(mut self, key: DecodingKey, algorithm: Algorithm, grants: Grants) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        self.keys.push(Key {
            key,
            validation,
            grants,
        });
        self
    }

    /// Also accepts HS256 tokens signed with `secret`, for scope `service` only.
    pub fn with_service_secret(self, secret: &[u8]) -> Self {
        self.with_key(
            DecodingKey::from_secret(secret),
            Algorithm::HS256,
            Grants::Services,
        )
    }

    /// Also accepts tokens signed by the platform's service key, for scope `service` only.
    pub fn with_service_public_key(
        self,
        algorithm: Algorithm,
        pem: &[u8],
    ) -> Result<Self, AuthError> {
        let key = public_key(algorithm, pem)?;
        Ok(self.with_key(key, algorithm, Grants::Services))
    }

    /// Refuses tokens whose `exp` lies more than `secs` ahead.
    pub fn with_max_ttl(mut self, secs: u64) -> Self {
        self.max_ttl_secs = secs;
        self
    }

    /// Remembers up to `entries` verified tokens (by their SHA-256) until each expires, so a
    /// client's next request with the same token skips the signature check; 0 remembers none.
    /// Only verified tokens are remembered: a refused one is checked again every time.
    pub fn with_verified_cache(mut self, entries: usize) -> Self {
        self.verified = (entries > 0).then(|| Arc::new(VerifiedTokens::new(entries)));
        self
    }

    pub fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let Some(verified) = &self.verified else {
            return self.check(token);
        };
        if let Some(caller) = verified.get(token, now_secs()) {
            return Ok(caller);
        }
        let caller = self.check(token)?;
        verified.insert(token, &caller);
        Ok(caller)
    }

    /// The signature, claims and grants of `token`, checked.
    fn check(&self, token: &str) -> Result<Caller, AuthError> {
        let header = jsonwebtoken::decode_header(token)?;
        let mut refused = None;
        for key in self
            .keys
            .iter()
            .filter(|k| k.validation.algorithms.contains(&header.alg))
        {
            let claims = match jsonwebtoken::decode::<Claims>(token, &key.key, &key.validation) {
                Ok(data) => data.claims,
                // Another key of the same algorithm may have signed it.
                Err(err) if *err.kind() == jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    refused = Some(AuthError::Invalid(err));
                    continue;
                }
                Err(err) => return Err(err.into()),
            };
            let granted = match key.grants {
                Grants::Any => true,
                Grants::Players => claims.scope == Scope::Player,
                Grants::Services => claims.scope == Scope::Service,
            };
            if !granted {
                return Err(AuthError::ScopeNotGranted(claims.scope));
            }
            if claims.exp > now_secs() + self.max_ttl_secs + LEEWAY_SECS {
                return Err(AuthError::TooLong(self.max_ttl_secs));
            }
            return Ok(Caller {
                user_id: claims.sub,
                scope: claims.scope,
                expires_at: claims.exp,
            });
        }
        Err(refused.unwrap_or(AuthError::UnknownKey))
    }
}

/// Signs HS256 tokens: the game service's calls to the IM service, dev and test tokens.
#[derive(Clone)]
pub struct Minter {
    key: EncodingKey,
    issuer: String,
    audience: String,
}

impl Minter {
    pub fn hs256(secret: &[u8], issuer: &str, audience: &str) -> Self {
        Self {
            key: EncodingKey::from_secret(secret),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        }
    }

    /// A token for `sub` with `scope`, valid for `ttl_secs`.
    pub fn mint(&self, sub: &UserId, scope: Scope, ttl_secs: u64) -> Result<String, AuthError> {
        let now = now_secs();
        let claims = Claims {
            sub: sub.clone(),
            exp: now + ttl_secs,
            iat: Some(now),
            nbf: None,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            scope,
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.key,
        )?)
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests;
