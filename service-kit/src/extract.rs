//! Extractor configurations that turn payload, path and query errors into problem+json.

use actix_web::{
    HttpRequest, HttpResponse, ResponseError,
    error::{JsonPayloadError, PathError, QueryPayloadError},
    web,
};
use shared_types::problem::ProblemCode;

use crate::ApiError;

/// Largest accepted JSON body: every request of the API fits easily.
pub const MAX_JSON_BYTES: usize = 16 * 1024;

pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_JSON_BYTES)
        .error_handler(|err, _req| {
            let api = match &err {
                JsonPayloadError::OverflowKnownLength { .. }
                | JsonPayloadError::Overflow { .. } => {
                    ApiError::new(ProblemCode::PayloadTooLarge, err.to_string())
                }
                JsonPayloadError::ContentType => ApiError::new(
                    ProblemCode::UnsupportedMediaType,
                    "send the body as application/json",
                ),
                JsonPayloadError::Payload(actix_web::error::PayloadError::Io(io))
                    if io.kind() == std::io::ErrorKind::TimedOut =>
                {
                    ApiError::new(ProblemCode::RequestTimeout, crate::body_deadline::TOO_SLOW)
                }
                _ => ApiError::invalid(err.to_string()),
            };
            api.into()
        })
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err: PathError, _req| {
        ApiError::not_found(format!("no such resource: {err}")).into()
    })
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err: QueryPayloadError, _req| {
        ApiError::invalid(format!("invalid query string: {err}")).into()
    })
}

/// Fallback for unmatched requests: 405 when the path exists with other
/// methods, 404 otherwise.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    let allowed = req.app_data::<web::Data<crate::ops::AllowedMethods>>();
    // Routes served by middleware (`/metrics`) are documented but not in the route map.
    let documented = || {
        allowed
            .filter(|a| a.0.contains_key(req.path()))
            .map(|_| req.path().to_owned())
    };
    if let Some(pattern) = req
        .resource_map()
        .match_pattern(req.path())
        .or_else(documented)
    {
        let allow = allowed
            .map(|allowed| allowed.for_pattern(&pattern))
            .unwrap_or_else(|| "GET".to_owned());
        let mut response = ApiError::new(
            ProblemCode::MethodNotAllowed,
            format!(
                "{} is not allowed on {}; use {allow}",
                req.method(),
                req.path()
            ),
        )
        .error_response();
        if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&allow) {
            response
                .headers_mut()
                .insert(actix_web::http::header::ALLOW, value);
        }
        return response;
    }
    ApiError::not_found(format!("no route for {} {}", req.method(), req.path())).error_response()
}

/// Registers the extractor configs (raw bodies are capped like JSON ones) on an app or scope.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(MAX_JSON_BYTES))
        .app_data(json_config())
        .app_data(path_config())
        .app_data(query_config());
}
