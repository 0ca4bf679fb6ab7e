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

/// An optional JSON body (`T::default()` when there is none): empty or whitespace, or a JSON
/// object sent as `application/json` (`null`, arrays and other values are a 400). Its
/// operation's `requestBody` is marked optional with [`mark_body_optional`].
pub fn optional_json<T: serde::de::DeserializeOwned + Default>(
    req: &HttpRequest,
    raw: &[u8],
) -> Result<T, ApiError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let media_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if !media_type.is_some_and(|m| m.eq_ignore_ascii_case("application/json")) {
        return Err(ApiError::new(
            ProblemCode::UnsupportedMediaType,
            "send the body as application/json (or send no body)",
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(raw)
        .map_err(|err| ApiError::invalid(format!("invalid JSON body: {err}")))?;
    // As the OpenAPI documents say: no body, or an object (`null` is neither).
    if !value.is_object() {
        return Err(ApiError::invalid(
            "the body must be a JSON object (or send no body)",
        ));
    }
    serde_json::from_value(value).map_err(|err| ApiError::invalid(format!("invalid body: {err}")))
}

/// Marks the `POST` body of `path` optional (`requestBody.required: false`, the plain schema),
/// which client generators turn into an argument that may be left out (utoipa says
/// "optional" only as `Option<T>`, a `oneOf [T, null]` value that generated clients make
/// the caller pass). The server reads it with [`optional_json`].
///
/// # Panics
/// When `path` has no `POST` with an inline request body: a mistake in the document's code,
/// caught by its tests.
pub fn mark_body_optional(openapi: &mut utoipa::openapi::OpenApi, path: &str) {
    use utoipa::openapi::{RefOr, Required};
    let Some(RefOr::T(body)) = openapi
        .paths
        .paths
        .get_mut(path)
        .and_then(|item| item.post.as_mut())
        .and_then(|operation| operation.request_body.as_mut())
    else {
        panic!("POST {path} declares no inline request body");
    };
    body.required = Some(Required::False);
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct AcceptBody {
        with: Option<Vec<String>>,
    }

    fn parse(content_type: Option<&str>, body: &str) -> Result<AcceptBody, ProblemCode> {
        let mut req = TestRequest::default();
        if let Some(content_type) = content_type {
            req = req.insert_header(("content-type", content_type));
        }
        optional_json(&req.to_http_request(), body.as_bytes()).map_err(|e| e.code)
    }

    #[test]
    fn no_body_means_every_candidate() {
        assert!(parse(None, "").is_ok_and(|b| b.with.is_none()));
        assert!(parse(None, " \n").is_ok_and(|b| b.with.is_none()));
        assert!(parse(Some("application/json"), "{}").is_ok_and(|b| b.with.is_none()));
        assert_eq!(
            parse(Some("application/json"), "null").err(),
            Some(ProblemCode::InvalidRequest),
            "null is not an object: the document allows no body or an object"
        );
    }

    #[test]
    fn a_body_must_be_a_json_object_sent_as_json() {
        let json = Some("application/json; charset=utf-8");
        assert!(parse(json, r#"{"with":["bob"]}"#).is_ok_and(|b| b.with.is_some()));
        assert_eq!(
            parse(Some("text/plain"), r#"{"with":["bob"]}"#).err(),
            Some(ProblemCode::UnsupportedMediaType)
        );
        assert_eq!(
            parse(None, r#"{"with":["bob"]}"#).err(),
            Some(ProblemCode::UnsupportedMediaType)
        );
        for bad in ["[]", r#"[["bob"]]"#, "{", r#"{"wiht":[]}"#, r#""bob""#] {
            assert_eq!(
                parse(json, bad).err(),
                Some(ProblemCode::InvalidRequest),
                "{bad}"
            );
        }
    }
}
