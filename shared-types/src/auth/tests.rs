//! The verifier's refusals and grants, and the minter's tokens.

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
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &minter.key).unwrap();
    assert!(verifier.verify(&token).is_err());
    claims.exp = now_secs() + 3600;
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &minter.key).unwrap();
    assert!(verifier.verify(&token).is_ok());
}

fn cached_pair() -> (Minter, Verifier) {
    let (minter, verifier) = pair();
    (minter, verifier.with_verified_cache(16))
}

fn remembered(verifier: &Verifier) -> usize {
    verifier.verified.as_ref().map_or(0, |v| v.len())
}

#[test]
fn a_verified_token_is_remembered_and_answers_the_same_caller_again() {
    let (minter, verifier) = cached_pair();
    let alice = UserId::parse("alice").unwrap();
    let token = minter.mint(&alice, Scope::Player, 60).unwrap();
    let first = verifier.verify(&token).unwrap();
    assert_eq!(remembered(&verifier), 1);
    assert_eq!(verifier.verify(&token).unwrap(), first);
    assert_eq!(remembered(&verifier), 1);
}

#[test]
fn a_refused_token_is_not_remembered_and_a_tampered_copy_of_a_remembered_one_is_refused() {
    let (minter, verifier) = cached_pair();
    let alice = UserId::parse("alice").unwrap();
    let token = minter.mint(&alice, Scope::Player, 60).unwrap();
    verifier.verify(&token).unwrap();
    let (rest, signature) = token.rsplit_once('.').unwrap();
    let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
    let tampered = format!("{rest}.{flipped}{}", &signature[1..]);
    let other = Minter::hs256(b"not-the-secret", DEFAULT_ISSUER, DEFAULT_AUDIENCE)
        .mint(&alice, Scope::Player, 60)
        .unwrap();
    for bad in [tampered.as_str(), other.as_str(), "nope"] {
        assert!(verifier.verify(bad).is_err(), "{bad}");
        assert!(verifier.verify(bad).is_err(), "{bad}, asked again");
    }
    assert_eq!(remembered(&verifier), 1);
}

#[test]
fn a_remembered_token_stops_answering_once_it_expires_with_the_same_leeway() {
    let tokens = verified::VerifiedTokens::new(16);
    let caller = Caller {
        user_id: UserId::parse("alice").unwrap(),
        scope: Scope::Player,
        expires_at: 1_000,
    };
    tokens.insert("a.token.here", &caller);
    assert_eq!(tokens.get("a.token.here", 1_000), Some(caller.clone()));
    assert_eq!(
        tokens.get("a.token.here", 1_000 + LEEWAY_SECS),
        Some(caller)
    );
    assert_eq!(tokens.get("a.token.here", 1_001 + LEEWAY_SECS), None);
    assert_eq!(tokens.len(), 0, "an expired entry is dropped when found");
    assert_eq!(tokens.get("another.token.here", 0), None);
}

#[test]
fn the_remembered_tokens_stay_within_their_bound() {
    let tokens = verified::VerifiedTokens::new(64);
    let caller = Caller {
        user_id: UserId::parse("alice").unwrap(),
        scope: Scope::Player,
        expires_at: u64::MAX / 2,
    };
    for n in 0..10_000 {
        tokens.insert(&format!("token-{n}"), &caller);
    }
    assert!(tokens.len() <= 64, "{} remembered", tokens.len());
    assert!(tokens.len() > 0);
}

#[test]
fn no_cache_remembers_nothing() {
    let (minter, verifier) = pair();
    let alice = UserId::parse("alice").unwrap();
    let token = minter.mint(&alice, Scope::Player, 60).unwrap();
    verifier.verify(&token).unwrap();
    assert_eq!(remembered(&verifier), 0);
    assert_eq!(remembered(&verifier.with_verified_cache(0)), 0);
}
