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

    pub fn verify(&self, token: &str) -> Result<Caller, AuthError> {
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

    // Test-only Ed25519 key pairs (openssl genpkey -algorithm ed25519; openssl pkey -pubout).
    const IDP_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIIiuzWF2GeG75SvVE35e3oKZwVvgP4QKrO6lvzmuZooi\n-----END PRIVATE KEY-----\n";
    const IDP_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAmj87bDc3wRNSD6Tx26m3Y/OBdG8ISeVIWv3Lv81vpaw=\n-----END PUBLIC KEY-----\n";
    const SVC_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIHcq5M1GB2h5dZYva/CpkKxCrj+Ti0DgmI/gZSrAOp+J\n-----END PRIVATE KEY-----\n";
    const SVC_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAz/GcLxmmxI4oDSY28fYqBNYxEBsvRNGc7wfD7tNK/Ws=\n-----END PUBLIC KEY-----\n";

    fn claims(scope: Scope) -> Claims {
        Claims {
            sub: UserId::parse("alice").unwrap(),
            exp: now_secs() + 600,
            iat: Some(now_secs()),
            nbf: None,
            iss: DEFAULT_ISSUER.into(),
            aud: DEFAULT_AUDIENCE.into(),
            scope,
        }
    }

    fn eddsa(private_pem: &str, claims: &Claims) -> String {
        let key = EncodingKey::from_ed_pem(private_pem.as_bytes()).unwrap();
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), claims, &key).unwrap()
    }

    fn hs(secret: &[u8], claims: &Claims) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    fn with_identity_provider() -> Verifier {
        Verifier::public_key_pem(
            Algorithm::EdDSA,
            IDP_PUBLIC.as_bytes(),
            DEFAULT_ISSUER,
            DEFAULT_AUDIENCE,
        )
        .unwrap()
        .with_service_secret(b"s3cret")
        .with_service_public_key(Algorithm::EdDSA, SVC_PUBLIC.as_bytes())
        .unwrap()
    }

    #[test]
    fn an_identity_providers_key_vouches_for_players_never_for_services() {
        let verifier = with_identity_provider();
        let player = verifier.verify(&eddsa(IDP_PRIVATE, &claims(Scope::Player)));
        assert_eq!(player.map(|c| c.scope).ok(), Some(Scope::Player));
        let claimed = verifier.verify(&eddsa(IDP_PRIVATE, &claims(Scope::Service)));
        assert!(
            matches!(claimed, Err(AuthError::ScopeNotGranted(Scope::Service))),
            "{claimed:?}"
        );
    }

    #[test]
    fn the_platforms_secret_and_service_key_vouch_for_services_only() {
        let verifier = with_identity_provider();
        for token in [
            hs(b"s3cret", &claims(Scope::Service)),
            eddsa(SVC_PRIVATE, &claims(Scope::Service)),
        ] {
            assert!(verifier.verify(&token).is_ok_and(|c| c.is_service()));
        }
        for token in [
            hs(b"s3cret", &claims(Scope::Player)),
            eddsa(SVC_PRIVATE, &claims(Scope::Player)),
        ] {
            assert!(matches!(
                verifier.verify(&token),
                Err(AuthError::ScopeNotGranted(Scope::Player))
            ));
        }
        assert!(
            verifier
                .verify(&hs(b"other", &claims(Scope::Service)))
                .is_err()
        );
    }

    #[test]
    fn a_token_not_yet_valid_or_valid_for_too_long_is_refused() {
        let (_, verifier) = pair();
        let mut early = claims(Scope::Player);
        early.nbf = Some(now_secs() + 600);
        assert!(
            verifier.verify(&hs(b"s3cret", &early)).is_err(),
            "nbf ahead"
        );
        early.nbf = Some(now_secs() - 1);
        assert!(
            verifier.verify(&hs(b"s3cret", &early)).is_ok(),
            "nbf passed"
        );
        let mut long = claims(Scope::Player);
        long.exp = now_secs() + DEFAULT_MAX_TTL_SECS + 3600;
        assert!(matches!(
            verifier.verify(&hs(b"s3cret", &long)),
            Err(AuthError::TooLong(_))
        ));
        let shorter = verifier.clone().with_max_ttl(300);
        assert!(
            shorter
                .verify(&hs(b"s3cret", &claims(Scope::Player)))
                .is_err(),
            "600 s > 300 s"
        );
        let caller = verifier
            .verify(&hs(b"s3cret", &claims(Scope::Player)))
            .unwrap();
        assert!(caller.expires_at > now_secs());
    }

    #[test]
    fn an_expired_token_is_refused() {
        let (minter, verifier) = pair();
        let mut claims = Claims {
            sub: UserId::parse("alice").unwrap(),
            exp: now_secs() - 3600,
            iat: None,
            nbf: None,
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
