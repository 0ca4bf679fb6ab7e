//! `GET /v1/join-tokens/jwks.json` and `POST /v1/join-tokens/verify`: how a
//! game server checks the join token a player presents, offline or online.

use actix_web::{HttpResponse, get, http::header, post, web};
use service_kit::{ApiError, auth::Service};
use shared_types::{
    game::{Verification, VerifyBody},
    problem::Problem,
};

use crate::game::Game;

/// Longest token accepted for checking (the schema's `maxLength`); a join token is ~400.
const MAX_TOKEN_CHARS: usize = 4096;

/// How long a game server may cache the key set. Rotation keeps an old key
/// listed for longer than this plus the tokens' lifetime.
const JWKS_MAX_AGE_SECS: u32 = 300;

/// The public keys that verify join tokens (RFC 7517 JWK set).
///
/// No authentication. The signing key comes first; keys being rotated out
/// follow. Each key has `kid` (its RFC 7638 thumbprint, matching the token's
/// header), `kty: OKP`, `crv: Ed25519`, `alg: EdDSA`, `use: sig`. Verify a
/// token's signature with the key its `kid` names, then `aud` =
/// `game-server`, `iss` and `exp`.
#[utoipa::path(
    tag = "game servers",
    security(()),
    responses(
        (status = 200, description = "The JWK set; cacheable for five minutes", content_type = "application/json", body = Object,
         headers(("Cache-Control" = String, description = "`public, max-age=300`")),
         example = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k", "use": "sig", "alg": "EdDSA"}]})),
        (status = 429, description = "Too many requests from this caller; retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/join-tokens/jwks.json")]
pub async fn jwks(game: web::Data<Game>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            header::CACHE_CONTROL,
            format!("public, max-age={JWKS_MAX_AGE_SECS}"),
        ))
        .json(game.join_tokens().jwks())
}

/// Check a join token online (game servers).
///
/// Answers 200 whether or not the token is valid (a body that breaks the
/// schema, such as a `token` over 4096 characters, is a 400): `valid` says whether its
/// signature, issuer, audience and expiry check out (`error` says why not),
/// and `member` whether its player is still one of the session's players and
/// the session has not ended.
#[utoipa::path(
    tag = "game servers",
    security(("bearer" = [])),
    request_body(content = VerifyBody, content_type = "application/json"),
    responses(
        (status = 200, description = "What the token proves", body = Verification),
        (status = 400, description = "Malformed body, or a `token` over 4096 characters", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "A body that is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A `player` token: this endpoint is for game servers", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable; retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/join-tokens/verify")]
pub async fn verify(
    _server: Service,
    game: web::Data<Game>,
    body: web::Json<VerifyBody>,
) -> Result<web::Json<Verification>, ApiError> {
    if body.token.chars().count() > MAX_TOKEN_CHARS {
        return Err(ApiError::invalid(format!(
            "`token` is longer than {MAX_TOKEN_CHARS} characters"
        )));
    }
    Ok(web::Json(game.verify_join_token(&body.token).await?))
}
