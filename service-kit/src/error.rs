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

/// Middleware that renders every error response not already problem+json
/// (the framework's own: payload too large, malformed headers, …) as one.
/// A JSON body is the handler's own answer (`/readyz`'s report) and stays.
pub fn problem_errors<B: 'static>() -> actix_web::middleware::ErrorHandlers<B> {
    actix_web::middleware::ErrorHandlers::new().default_handler(render_as_problem)
}

fn code_for(status: StatusCode) -> ProblemCode {
    match status.as_u16() {
        401 => ProblemCode::Unauthorized,
        403 => ProblemCode::Forbidden,
        404 => ProblemCode::NotFound,
        405 => ProblemCode::MethodNotAllowed,
        408 => ProblemCode::RequestTimeout,
        413 => ProblemCode::PayloadTooLarge,
        414 => ProblemCode::UriTooLong,
        431 => ProblemCode::HeadersTooLarge,
        415 => ProblemCode::UnsupportedMediaType,
        429 => ProblemCode::RateLimited,
        503 => ProblemCode::StoreUnavailable,
        400..=499 => ProblemCode::InvalidRequest,
        _ => ProblemCode::Internal,
    }
}

fn render_as_problem<B>(
    res: actix_web::dev::ServiceResponse<B>,
) -> actix_web::Result<actix_web::middleware::ErrorHandlerResponse<B>> {
    use actix_web::{
        body::BoxBody,
        dev::ServiceResponse,
        http::header::{CONTENT_TYPE as CT, HeaderValue},
        middleware::ErrorHandlerResponse,
    };
    let already = res.headers().get(CT).is_some_and(|v| {
        v.as_bytes().starts_with(CONTENT_TYPE.as_bytes())
            || v.as_bytes().starts_with(b"application/json")
    });
    let status = res.status();
    if already || !(status.is_client_error() || status.is_server_error()) {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let mut problem = Problem::new(
        code_for(status),
        status.canonical_reason().unwrap_or("error").to_owned(),
    );
    problem.status = status.as_u16();
    let body = serde_json::to_string(&problem).unwrap_or_default();
    let (req, res) = res.into_parts();
    let mut res = res.set_body(BoxBody::new(body));
    res.headers_mut()
        .insert(CT, HeaderValue::from_static(CONTENT_TYPE));
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, res).map_into_right_body(),
    ))
}
