//! The optional `Idempotency-Key` request header of the two creating POSTs (a conversation, a message), read and checked before the handler runs.

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, dev::Payload};
use service_kit::ApiError;
use shared_types::problem::ProblemCode;

use crate::domain::IdempotencyKey;

/// The header's name (the IETF httpapi draft's).
pub const HEADER: &str = "Idempotency-Key";

/// The request's idempotency key, when it sent one; an invalid one, or more than one, is a 400
/// `invalid_idempotency_key`.
#[derive(Debug, Clone)]
pub struct Idempotency(pub Option<IdempotencyKey>);

impl Idempotency {
    fn read(req: &HttpRequest) -> Result<Self, ApiError> {
        let mut values = req.headers().get_all(HEADER);
        let Some(value) = values.next() else {
            return Ok(Self(None));
        };
        let invalid = |detail: String| ApiError::new(ProblemCode::InvalidIdempotencyKey, detail);
        if values.next().is_some() {
            return Err(invalid(format!("send one {HEADER} header, not several")));
        }
        IdempotencyKey::parse(value.as_bytes())
            .map(|key| Self(Some(key)))
            .map_err(|err| invalid(err.to_string()))
    }
}

impl FromRequest for Idempotency {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::read(req))
    }
}
