//! CORS for browser clients (`CORS_ALLOWED_ORIGINS`), with `actix-cors`.
//!
//! Exact origins only, never a wildcard, and no credentials: callers send
//! bearer tokens, not cookies. A request from an origin not on the list is
//! served as usual but gets no CORS headers, so the browser withholds the
//! answer from the page (non-browser clients are unaffected). Preflights are
//! answered for every path, before routing, authentication and rate limits.

use actix_cors::Cors;
use actix_web::{
    Error, ResponseError,
    body::{EitherBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{Method, header},
    middleware::{Condition, Next},
};

use crate::ApiError;

/// Request headers a page may send: the token, JSON bodies, the stream's resume id, a request
/// id, and the key that makes a retried POST harmless.
pub const ALLOWED_HEADERS: [&str; 5] = [
    "authorization",
    "content-type",
    "idempotency-key",
    "last-event-id",
    "x-request-id",
];
/// Response headers a page may read besides the CORS-safelisted ones.
pub const EXPOSED_HEADERS: [&str; 2] = ["x-request-id", "retry-after"];
/// How long a browser may cache a preflight's answer.
const PREFLIGHT_MAX_AGE_SECS: usize = 600;

/// The origins allowed to call the API from a browser; empty: no CORS at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOrigins(Vec<String>);

impl AllowedOrigins {
    /// `CORS_ALLOWED_ORIGINS`: comma-separated exact origins (`https://play.example.com`,
    /// `http://localhost:5173`); each is checked now, so a typo fails the start.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::parse(&crate::config::env_opt("CORS_ALLOWED_ORIGINS").unwrap_or_default())
    }

    pub fn parse(list: &str) -> anyhow::Result<Self> {
        let origins = list
            .split(',')
            .map(str::trim)
            .filter(|origin| !origin.is_empty())
            .map(|origin| check_origin(origin).map(|()| origin.to_owned()))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self(origins))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The middleware, built per worker (it is not `Send`); a no-op without origins.
    pub fn middleware(&self) -> Condition<Cors> {
        let mut cors = Cors::default()
            .allowed_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allowed_headers(ALLOWED_HEADERS.map(header::HeaderName::from_static))
            .expose_headers(EXPOSED_HEADERS.map(header::HeaderName::from_static))
            .max_age(PREFLIGHT_MAX_AGE_SECS)
            // Answer, without CORS headers, rather than refuse a request from
            // another origin: the browser enforces, other clients are unaffected.
            .block_on_origin_mismatch(false);
        for origin in &self.0 {
            cors = cors.allowed_origin(origin);
        }
        Condition::new(!self.is_empty(), cors)
    }
}

/// Runs just outside the CORS middleware, which lists its exposed headers on
/// every answer (even to origins it did not allow) and refuses a bad preflight
/// (an origin, method or header not allowed) with a bare `400 text/plain`: an
/// answer without `Access-Control-Allow-Origin` loses the list, and the
/// refusal is a problem+json 400 like every other bad request.
pub async fn tidy(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    // Not a clone of the request: routing needs it unshared.
    let refusal = || {
        ApiError::invalid(
            "CORS preflight refused: this origin, method or header is not allowed \
             (CORS_ALLOWED_ORIGINS)",
        )
    };
    let mut response = match next.call(req).await {
        Ok(response) => response,
        Err(_) if preflight => return Err(refusal().into()),
        Err(err) => return Err(err),
    };
    if preflight && response.status().is_client_error() {
        return Ok(response
            .into_response(refusal().error_response())
            .map_into_right_body());
    }
    let headers = response.headers_mut();
    if !headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        headers.remove(header::ACCESS_CONTROL_EXPOSE_HEADERS);
    }
    Ok(response.map_into_left_body())
}

/// `scheme://host[:port]`, nothing more: what a browser sends as `Origin`.
fn check_origin(origin: &str) -> anyhow::Result<()> {
    let invalid = |why: &str| {
        anyhow::anyhow!(
            "CORS_ALLOWED_ORIGINS: {origin:?} {why}; list exact origins such as \
             https://play.example.com or http://localhost:5173"
        )
    };
    if origin == "*" || origin.contains('*') {
        return Err(invalid("is a wildcard, which is never allowed"));
    }
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or_else(|| invalid("does not start with http:// or https://"))?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return Err(invalid("is not an origin (a path, query, user or space)"));
    }
    if let Some((_, port)) = rest.rsplit_once(':')
        && !rest.ends_with(']')
        && port.parse::<u16>().is_err()
    {
        return Err(invalid("has an invalid port"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use actix_web::{App, HttpResponse, middleware::from_fn, test as web_test, web};

    use super::*;

    #[test]
    fn only_exact_origins_are_accepted() {
        assert!(AllowedOrigins::parse("").is_ok_and(|o| o.is_empty()));
        assert!(
            AllowedOrigins::parse("https://play.example.com, http://localhost:5173")
                .is_ok_and(|o| o.0.len() == 2)
        );
        for bad in [
            "*",
            "https://*.example.com",
            "play.example.com",
            "https://play.example.com/",
            "https://play.example.com/path",
            "http://localhost:port",
            "ftp://example.com",
        ] {
            assert!(AllowedOrigins::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[actix_web::test]
    async fn an_allowed_origin_gets_preflights_and_headers_and_any_other_none() {
        let origins = AllowedOrigins::parse("https://play.example.com").unwrap_or_default();
        let app = web_test::init_service(
            App::new()
                .wrap(origins.middleware())
                .wrap(from_fn(tidy))
                .route(
                    "/v1/me",
                    web::get().to(|| async { HttpResponse::Ok().finish() }),
                ),
        )
        .await;
        let preflight = web_test::TestRequest::default()
            .method(Method::OPTIONS)
            .uri("/v1/anything")
            .insert_header(("origin", "https://play.example.com"))
            .insert_header(("access-control-request-method", "POST"))
            .insert_header((
                "access-control-request-headers",
                "authorization, content-type",
            ))
            .to_request();
        let answer = web_test::call_service(&app, preflight).await;
        assert!(answer.status().is_success(), "{}", answer.status());
        let headers = answer.headers();
        assert_eq!(
            headers
                .get("access-control-allow-origin")
                .and_then(|v| v.to_str().ok()),
            Some("https://play.example.com")
        );
        assert!(headers.get("access-control-allow-credentials").is_none());

        let simple = web_test::TestRequest::get()
            .uri("/v1/me")
            .insert_header(("origin", "https://play.example.com"))
            .to_request();
        let answer = web_test::call_service(&app, simple).await;
        let exposed = answer
            .headers()
            .get("access-control-expose-headers")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        assert!(
            exposed.contains("x-request-id") && exposed.contains("retry-after"),
            "{exposed}"
        );

        let other = web_test::TestRequest::get()
            .uri("/v1/me")
            .insert_header(("origin", "https://evil.example.net"))
            .to_request();
        let answer = web_test::call_service(&app, other).await;
        assert!(answer.status().is_success());
        assert!(
            answer
                .headers()
                .keys()
                .all(|name| !name.as_str().starts_with("access-control-")),
            "a disallowed origin got CORS headers: {:?}",
            answer.headers()
        );

        let refused = web_test::TestRequest::default()
            .method(Method::OPTIONS)
            .uri("/v1/me")
            .insert_header(("origin", "https://evil.example.net"))
            .insert_header(("access-control-request-method", "GET"))
            .to_request();
        let answer = web_test::call_service(&app, refused).await;
        assert_eq!(answer.status(), 400);
        assert_eq!(
            answer
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some(shared_types::problem::CONTENT_TYPE)
        );
        assert!(
            answer
                .headers()
                .get("access-control-allow-origin")
                .is_none()
        );
    }
}
