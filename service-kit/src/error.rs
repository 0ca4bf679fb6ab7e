//! The error every handler returns, rendered as RFC 9457 problem+json.

use std::fmt;

use actix_web::{
    HttpResponse, ResponseError,
    http::{StatusCode, header},
};
use shared_types::problem::{CONTENT_TYPE, Problem, ProblemCode};

/// Seconds a client should wait before retrying after a 503 from the store.
pub const STORE_RETRY_AFTER_SECS: u64 = 1;

/// A problem to report to the caller. Unexpected errors are logged in full and
/// reported as an opaque 500.
#[derive(Debug)]
pub struct ApiError {
    pub code: ProblemCode,
    pub detail: String,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ProblemCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }

    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(ProblemCode::InvalidRequest, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ProblemCode::NotFound, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ProblemCode::Forbidden, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(ProblemCode::Unauthorized, detail)
    }

    /// The store cannot be reached: 503 with `Retry-After`.
    pub fn store_unavailable(err: &anyhow::Error) -> Self {
        tracing::warn!(error = format!("{err:#}"), "store unavailable");
        Self {
            code: ProblemCode::StoreUnavailable,
            detail: "the store is unreachable; nothing was changed".into(),
            retry_after: Some(STORE_RETRY_AFTER_SECS),
        }
    }

    /// A bug or an unforeseen failure: logged with its context chain, reported opaquely.
    pub fn unexpected(err: &anyhow::Error) -> Self {
        tracing::error!(error = format!("{err:#}"), "unexpected error");
        Self::new(ProblemCode::Internal, "internal error")
    }

    pub fn problem(&self) -> Problem {
        Problem::new(self.code, self.detail.clone())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.slug(), self.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, CONTENT_TYPE));
        if let Some(secs) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if self.code == ProblemCode::Unauthorized {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        response.json(self.problem())
    }
}
