//! The `Authenticated` extractor: a verified bearer token, or a 401 problem.

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, http::header, web};
use shared_types::auth::{Caller, Verifier};

use crate::ApiError;

/// The caller of a request, proven by `Authorization: Bearer <JWT>`.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Caller);

/// The bearer token of a request, without verifying it.
pub fn bearer_token(req: &HttpRequest) -> Result<&str, ApiError> {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization header"))?;
    header
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| ApiError::unauthorized("expected Authorization: Bearer <token>"))
}

fn authenticate(req: &HttpRequest) -> Result<Caller, ApiError> {
    // Already verified by the rate limiter for this request.
    if let Some(caller) = req.extensions().get::<Caller>() {
        return Ok(caller.clone());
    }
    let verifier = req
        .app_data::<web::Data<Verifier>>()
        .ok_or_else(|| ApiError::unexpected(&anyhow::anyhow!("no Verifier registered")))?;
    let token = bearer_token(req)?;
    verifier.verify(token).map_err(|err| {
        tracing::debug!(error = %err, "token refused");
        ApiError::unauthorized("the token is invalid, expired or not for this audience")
    })
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req).map(Authenticated))
    }
}

/// A caller whose token has scope `player`: the game's own endpoints serve end
/// users; a `service` token there is a 403.
#[derive(Debug, Clone)]
pub struct Player(pub shared_types::UserId);

impl FromRequest for Player {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req).and_then(|caller| {
            if caller.is_service() {
                Err(ApiError::forbidden(
                    "this endpoint is for players: use a token with scope `player`",
                ))
            } else {
                Ok(Player(caller.user_id))
            }
        }))
    }
}

/// A caller whose token has scope `service` (a game server, another service
/// of the platform); a `player` token there is a 403.
#[derive(Debug, Clone)]
pub struct Service(pub shared_types::UserId);

impl FromRequest for Service {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req).and_then(|caller| {
            if caller.is_service() {
                Ok(Service(caller.user_id))
            } else {
                Err(ApiError::forbidden(
                    "this endpoint is for game servers and services: use a token with scope `service`",
                ))
            }
        }))
    }
}
