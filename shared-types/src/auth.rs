//! JWT claims, their verification (algorithm pinned, `exp`/`iss`/`aud` required) and minting.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

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
    pub iss: String,
    pub aud: String,
    pub scope: Scope,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: UserId,
    pub scope: Scope,
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
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Verifies bearer tokens with one pinned algorithm; anything else (`none` included) is refused.
///
/// With a public key (RS256/EdDSA, from an identity provider), the platform's
/// own service tokens stay HS256 with the shared secret: a second pinned key
/// that only accepts tokens of scope `service`.
#[derive(Clone)]
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
    service_secret: Option<(DecodingKey, Validation)>,
}

impl Verifier {
    /// HS256 with a shared secret (the default).
    pub fn hs256(secret: &[u8], issuer: &str, audience: &str) -> Self {
        Self::new(
            DecodingKey::from_secret(secret),
            Algorithm::HS256,
            issuer,
            audience,
        )
    }

    /// RS256 or EdDSA with a PEM public key: a configuration option, not a code change.
    pub fn public_key_pem(
        algorithm: Algorithm,
        pem: &[u8],
        issuer: &str,
        audience: &str,
    ) -> Result<Self, AuthError> {
        let key = match algorithm {
            Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => {
                DecodingKey::from_rsa_pem(pem).map_err(|e| AuthError::Key(e.to_string()))?
            }
            Algorithm::EdDSA => {
                DecodingKey::from_ed_pem(pem).map_err(|e| AuthError::Key(e.to_string()))?
            }
            other => return Err(AuthError::Key(format!("unsupported algorithm {other:?}"))),
        };
        Ok(Self::new(key, algorithm, issuer, audience))
    }

    fn new(key: DecodingKey, algorithm: Algorithm, issuer: &str, audience: &str) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        Self {
            key,
            validation,
            service_secret: None,
        }
    }

    /// Also accepts HS256 tokens signed with `secret`, for scope `service` only.
    pub fn with_service_secret(mut self, secret: &[u8]) -> Self {
        let mut validation = self.validation.clone();
        validation.algorithms = vec![Algorithm::HS256];
        self.service_secret = Some((DecodingKey::from_secret(secret), validation));
        self
    }

    pub fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let header = jsonwebtoken::decode_header(token)?;
        let claims = match &self.service_secret {
            Some((key, validation))
                if header.alg == Algorithm::HS256
                    && !self.validation.algorithms.contains(&header.alg) =>
            {
                let claims = jsonwebtoken::decode::<Claims>(token, key, validation)?.claims;
                if claims.scope != Scope::Service {
                    return Err(AuthError::Key(
                        "HS256 tokens are for services when a public key verifies players".into(),
                    ));
                }
                claims
            }
            _ => jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)?.claims,
        };
        Ok(Caller {
            user_id: claims.sub,
            scope: claims.scope,
        })
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
mod tests {
    use super::*;

    fn base64url(bytes: &[u8]) -> String {
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
    }

    fn pair() -> (Minter, Verifier) {
        (
            Minter::hs256(b"s3cret", DEFAULT_ISSUER, DEFAULT_AUDIENCE),
            Verifier::hs256(b"s3cret", DEFAULT_ISSUER, DEFAULT_AUDIENCE),
        )
    }

    #[test]
    fn a_minted_token_verifies_with_its_scope() {
        let (minter, verifier) = pair();
        let alice = UserId::parse("alice").unwrap();
        let token = minter.mint(&alice, Scope::Service, 60).unwrap();
        let caller = verifier.verify(&token).unwrap();
        assert_eq!(caller.user_id, alice);
        assert!(caller.is_service());
    }

    #[test]
    fn wrong_secret_audience_issuer_and_alg_none_are_refused() {
        let alice = UserId::parse("alice").unwrap();
        let verifier = pair().1;
        let forged = Minter::hs256(b"other", DEFAULT_ISSUER, DEFAULT_AUDIENCE);
        let wrong_aud = Minter::hs256(b"s3cret", DEFAULT_ISSUER, "elsewhere");
        let wrong_iss = Minter::hs256(b"s3cret", "someone", DEFAULT_AUDIENCE);
        for minter in [forged, wrong_aud, wrong_iss] {
            let token = minter.mint(&alice, Scope::Player, 60).unwrap();
            assert!(verifier.verify(&token).is_err());
        }
        // header {"alg":"none","typ":"JWT"}, valid claims, empty signature
        let claims = serde_json::json!({"sub":"alice","exp": now_secs()+60,"iss":"game-platform","aud":"game-platform","scope":"player"});
        let none = format!(
            "{}.{}.",
            base64url(br#"{"alg":"none","typ":"JWT"}"#),
            base64url(claims.to_string().as_bytes())
        );
        assert!(verifier.verify(&none).is_err());
    }

    #[test]
    fn a_service_secret_beside_a_public_key_only_vouches_for_services() {
        // An HS256 verifier stands in for the public-key one: what matters is
        // that the second (service) key is pinned to HS256 and scope `service`.
        let verifier = Verifier::hs256(b"idp-key", DEFAULT_ISSUER, DEFAULT_AUDIENCE)
            .with_service_secret(b"s3cret");
        let platform = Minter::hs256(b"s3cret", DEFAULT_ISSUER, DEFAULT_AUDIENCE);
        let game = UserId::parse("game-service").unwrap();
        // The primary key is HS256 here, so the service secret is not consulted:
        assert!(
            verifier
                .verify(&platform.mint(&game, Scope::Service, 60).unwrap())
                .is_err()
        );
        let idp = Minter::hs256(b"idp-key", DEFAULT_ISSUER, DEFAULT_AUDIENCE);
        assert!(
            verifier
                .verify(&idp.mint(&game, Scope::Player, 60).unwrap())
                .is_ok()
        );
    }

    #[test]
    fn an_expired_token_is_refused() {
        let (minter, verifier) = pair();
        let mut claims = Claims {
            sub: UserId::parse("alice").unwrap(),
            exp: now_secs() - 3600,
            iat: None,
            iss: DEFAULT_ISSUER.into(),
            aud: DEFAULT_AUDIENCE.into(),
            scope: Scope::Player,
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &minter.key).unwrap();
        assert!(verifier.verify(&token).is_err());
        claims.exp = now_secs() + 3600;
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &minter.key).unwrap();
        assert!(verifier.verify(&token).is_ok());
    }
}
