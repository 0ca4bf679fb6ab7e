//! Join tokens: the Ed25519-signed credential each player presents to the game
//! server, the JWK set that verifies them offline, and their online check.
//!
//! Tokens are signed when a session is rendered or pushed, never stored: a
//! later read may carry a newer token, and every unexpired one verifies.
//!
//! Signing is on the hot path (a pairing signs five tokens), so it uses the
//! parsed key directly: `jsonwebtoken::encode` parses the PKCS#8 key and
//! derives its public half on every call, which doubled the cost of each
//! signature. jsonwebtoken still verifies, builds the JWK set and thumbprints.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, bail};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{
    Signer, SigningKey, VerifyingKey,
    pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey},
};
use jsonwebtoken::{
    Algorithm, DecodingKey, Header, Validation,
    errors::ErrorKind,
    jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse, ThumbprintHash},
};
use shared_types::{
    UserId,
    auth::LEEWAY_SECS,
    game::{
        JOIN_TOKEN_AUDIENCE, JoinTokenClaims, JoinTokenError, Session, SessionKind, SessionState,
    },
};
use uuid::Uuid;

/// Tokens kept for reuse; the cache is emptied when it reaches this size
/// (a few MiB), which costs at most one signature per player afterwards.
const CACHE_ENTRIES: usize = 16_384;

/// A signed token, for a player, a session and its kind, and when it was signed.
type Recent = HashMap<(UserId, Uuid, SessionKind), (String, u64)>;

/// Where the keys come from (`JOIN_TOKEN_KEY_FILE`, `JOIN_TOKEN_VERIFY_KEY_FILES`).
#[derive(Clone, Default)]
pub struct KeySource {
    /// The signing key, PEM (PKCS#8); `None`: an ephemeral key (in-memory store only).
    pub signing_pem: Option<Vec<u8>>,
    /// Keys still accepted when verifying (being rotated out): PEM, public or private.
    pub verify_pems: Vec<Vec<u8>>,
}

pub struct JoinTokens {
    issuer: String,
    ttl: Duration,
    signing: SigningKey,
    /// The JWS header, `{"typ":"JWT","alg":"EdDSA","kid":…}`, base64url-encoded once.
    encoded_header: String,
    verifying: HashMap<String, DecodingKey>,
    jwks: JwkSet,
    validation: Validation,
    /// A pairing renders and pushes the same session to the same player
    /// several times within milliseconds: a token with at least half its
    /// life left is handed out again instead of signing another.
    recent: Mutex<Recent>,
}

/// A new Ed25519 private key as PKCS#8 PEM (what `openssl genpkey -algorithm ed25519` writes).
pub fn generate_pem() -> anyhow::Result<String> {
    let seed: [u8; 32] = rand::random();
    let pem = SigningKey::from_bytes(&seed)
        .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .context("encoding a new Ed25519 key as PKCS#8 PEM")?;
    Ok(pem.to_string())
}

/// The public JWK of a PEM key (private or public), with its RFC 7638 thumbprint as `kid`.
fn public_jwk(pem: &[u8]) -> anyhow::Result<Jwk> {
    let text = std::str::from_utf8(pem).context("not a PEM file")?;
    let public = if text.contains("PRIVATE KEY") {
        SigningKey::from_pkcs8_pem(text)
            .context("not an Ed25519 private key (PKCS#8 PEM)")?
            .verifying_key()
    } else {
        VerifyingKey::from_public_key_pem(text).context("not an Ed25519 public key (SPKI PEM)")?
    };
    // jsonwebtoken takes an Ed25519 public key as its 32 raw bytes.
    let key = DecodingKey::from_ed_der(public.as_bytes());
    let mut jwk = Jwk::from_decoding_key(&key, Some(Algorithm::EdDSA))?;
    jwk.common.key_id = Some(jwk.thumbprint(ThumbprintHash::SHA256)?);
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk.common.key_algorithm = Some(KeyAlgorithm::EdDSA);
    Ok(jwk)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl JoinTokens {
    /// Signs with `keys.signing_pem` (or a key made now) and verifies with it
    /// and every `keys.verify_pems`; tokens say `iss` = `issuer` and last `ttl`.
    pub fn new(keys: &KeySource, issuer: &str, ttl: Duration) -> anyhow::Result<Self> {
        let signing_pem = match &keys.signing_pem {
            Some(pem) => pem.clone(),
            None => generate_pem()?.into_bytes(),
        };
        let signing = std::str::from_utf8(&signing_pem)
            .ok()
            .and_then(|pem| SigningKey::from_pkcs8_pem(pem).ok())
            .context("JOIN_TOKEN_KEY_FILE is not an Ed25519 private key in PKCS#8 PEM")?;
        let mut jwks = JwkSet::default();
        let mut verifying = HashMap::new();
        for (i, pem) in std::iter::once(&signing_pem)
            .chain(&keys.verify_pems)
            .enumerate()
        {
            let jwk = public_jwk(pem).with_context(|| {
                if i == 0 {
                    "reading JOIN_TOKEN_KEY_FILE".to_owned()
                } else {
                    format!("reading key {i} of JOIN_TOKEN_VERIFY_KEY_FILES")
                }
            })?;
            let kid = jwk.common.key_id.clone().unwrap_or_default();
            if verifying.contains_key(&kid) {
                continue;
            }
            verifying.insert(kid, DecodingKey::from_jwk(&jwk)?);
            jwks.keys.push(jwk);
        }
        let Some(kid) = jwks.keys.first().and_then(|k| k.common.key_id.clone()) else {
            bail!("no join-token signing key");
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid);
        let encoded_header =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).context("encoding the JWS header")?);
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[JOIN_TOKEN_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        Ok(Self {
            issuer: issuer.to_owned(),
            ttl,
            signing,
            encoded_header,
            verifying,
            jwks,
            validation,
            recent: Mutex::new(HashMap::new()),
        })
    }

    /// The keys a game server verifies with: the signing key first.
    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    /// `player`'s token for `session`: a recent one while it has at least
    /// half its life left, else a new one.
    pub fn token(&self, player: &UserId, session: &Session) -> anyhow::Result<String> {
        let key = (player.clone(), session.id, session.kind);
        let now = now_secs();
        let fresh = |iat: u64| now.saturating_sub(iat) < self.ttl.as_secs() / 2;
        if let Ok(recent) = self.recent.lock()
            && let Some((token, _)) = recent.get(&key).filter(|(_, iat)| fresh(*iat))
        {
            return Ok(token.clone());
        }
        let token = self.sign(player, session)?;
        if let Ok(mut recent) = self.recent.lock() {
            if recent.len() >= CACHE_ENTRIES {
                recent.clear();
            }
            recent.insert(key, (token.clone(), now));
        }
        Ok(token)
    }

    /// A new token for `player` and `session`.
    pub fn sign(&self, player: &UserId, session: &Session) -> anyhow::Result<String> {
        let iat = now_secs();
        let claims = JoinTokenClaims {
            iss: self.issuer.clone(),
            aud: JOIN_TOKEN_AUDIENCE.to_owned(),
            sub: player.clone(),
            sid: session.id,
            kind: session.kind,
            mode: session.mode.clone(),
            iat,
            exp: iat + self.ttl.as_secs(),
        };
        // Compact JWS (RFC 7515): header.payload.signature, each base64url.
        let payload = serde_json::to_vec(&claims).context("encoding join-token claims")?;
        let mut token =
            String::with_capacity(self.encoded_header.len() + payload.len() * 4 / 3 + 90);
        token.push_str(&self.encoded_header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut token);
        let signature = self.signing.sign(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut token);
        Ok(token)
    }

    /// Gives `viewer` their own token when they are one of the session's
    /// players and it has not ended; everyone else sees an empty one.
    pub fn attach(&self, session: &mut Session, viewer: &UserId) {
        session.join_token = String::new();
        if session.state == SessionState::Ended || !session.players.contains(viewer) {
            return;
        }
        match self.token(viewer, session) {
            Ok(token) => session.join_token = token,
            Err(err) => tracing::error!(error = format!("{err:#}"), "no join token"),
        }
    }

    /// The claims of a token this service signed with a key it still accepts.
    pub fn verify(&self, token: &str) -> Result<JoinTokenClaims, JoinTokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| JoinTokenError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(JoinTokenError::Malformed);
        }
        let key = header
            .kid
            .as_ref()
            .and_then(|kid| self.verifying.get(kid))
            .ok_or(JoinTokenError::UnknownKey)?;
        jsonwebtoken::decode::<JoinTokenClaims>(token, key, &self.validation)
            .map(|data| data.claims)
            .map_err(|err| match err.kind() {
                ErrorKind::InvalidSignature => JoinTokenError::BadSignature,
                ErrorKind::ExpiredSignature => JoinTokenError::Expired,
                ErrorKind::InvalidAudience => JoinTokenError::WrongAudience,
                ErrorKind::InvalidIssuer => JoinTokenError::WrongIssuer,
                _ => JoinTokenError::Malformed,
            })
    }
}

#[cfg(test)]
#[expect(clippy::expect_used, reason = "tests")]
mod tests {
    use chrono::Utc;

    use super::*;

    fn session(players: &[&str]) -> Session {
        Session {
            id: Uuid::new_v4(),
            kind: SessionKind::Multiplayer,
            mode: "default".into(),
            state: SessionState::Active,
            host: UserId::parse(players[0]).expect("valid"),
            players: players
                .iter()
                .map(|p| UserId::parse(p).expect("valid"))
                .collect(),
            pending: Vec::new(),
            created_at: Utc::now(),
            join_token: String::new(),
            reason: None,
            ended_reason: None,
        }
    }

    fn tokens(keys: &KeySource) -> JoinTokens {
        JoinTokens::new(keys, "game-platform", Duration::from_secs(900)).expect("keys")
    }

    #[test]
    fn a_token_verifies_with_its_claims_and_a_tampered_one_does_not() {
        let tokens = tokens(&KeySource::default());
        let bob = UserId::parse("bob").expect("valid");
        let mut s = session(&["alice", "bob"]);
        tokens.attach(&mut s, &bob);
        let claims = tokens.verify(&s.join_token).expect("valid");
        assert_eq!((claims.sub, claims.sid), (bob, s.id));
        assert_eq!(claims.aud, JOIN_TOKEN_AUDIENCE);
        assert_eq!(claims.exp - claims.iat, 900);
        // Claiming to be someone else, with bob's signature.
        let parts: Vec<&str> = s.join_token.split('.').collect();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = base64::Engine::decode(&b64, parts[1]).expect("base64url");
        let forged = String::from_utf8(payload)
            .expect("json")
            .replace(r#""sub":"bob""#, r#""sub":"mallory""#);
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            base64::Engine::encode(&b64, forged),
            parts[2]
        );
        assert_eq!(tokens.verify(&tampered), Err(JoinTokenError::BadSignature));
        assert_eq!(tokens.verify("nope"), Err(JoinTokenError::Malformed));
    }

    #[test]
    fn a_fresh_token_is_handed_out_again_and_a_new_kind_gets_a_new_one() {
        let tokens = tokens(&KeySource::default());
        let bob = UserId::parse("bob").expect("valid");
        let mut s = session(&["alice", "bob"]);
        let first = tokens.token(&bob, &s).expect("signed");
        assert_eq!(tokens.token(&bob, &s).expect("signed"), first);
        s.kind = SessionKind::Solo;
        let solo = tokens.token(&bob, &s).expect("signed");
        assert_ne!(solo, first, "the claims changed");
        assert_eq!(tokens.verify(&solo).map(|c| c.kind), Ok(SessionKind::Solo));
    }

    #[test]
    fn only_current_players_of_a_live_session_get_a_token() {
        let tokens = tokens(&KeySource::default());
        let carol = UserId::parse("carol").expect("valid");
        let alice = UserId::parse("alice").expect("valid");
        let mut s = session(&["alice", "bob"]);
        tokens.attach(&mut s, &carol);
        assert!(s.join_token.is_empty());
        s.state = SessionState::Ended;
        tokens.attach(&mut s, &alice);
        assert!(s.join_token.is_empty());
    }

    #[test]
    fn the_kid_is_the_rfc_7638_thumbprint_and_rotated_keys_still_verify() {
        let old_pem = generate_pem().expect("pem");
        let old = tokens(&KeySource {
            signing_pem: Some(old_pem.clone().into_bytes()),
            verify_pems: Vec::new(),
        });
        let new = tokens(&KeySource {
            signing_pem: Some(generate_pem().expect("pem").into_bytes()),
            verify_pems: vec![old_pem.into_bytes()],
        });
        let bob = UserId::parse("bob").expect("valid");
        let s = session(&["alice", "bob"]);
        let from_old = old.sign(&bob, &s).expect("signed");
        let from_new = new.sign(&bob, &s).expect("signed");
        assert!(new.verify(&from_old).is_ok() && new.verify(&from_new).is_ok());
        assert_eq!(old.verify(&from_new), Err(JoinTokenError::UnknownKey));
        assert_eq!(new.jwks().keys.len(), 2);
        let jwk = &new.jwks().keys[0];
        let header = jsonwebtoken::decode_header(&from_new).expect("header");
        assert_eq!(header.kid, jwk.common.key_id);
        assert_eq!(
            header.kid.as_deref().map(str::len),
            Some(43),
            "base64url of a SHA-256 digest"
        );
    }
}
