//! Request middleware: request ids with one access-log line per request (and the Redis
//! round trips counted by route), and per-caller rate limiting.

use std::{
    net::IpAddr,
    num::NonZeroU32,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use actix_web::{
    Error, HttpMessage, ResponseError,
    body::{EitherBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::header::{HeaderName, HeaderValue},
    middleware::Next,
    web,
};
use governor::{DefaultKeyedRateLimiter, Quota, clock::Clock};
use shared_types::{auth::Verifier, problem::ProblemCode};
use tracing::Instrument;

use crate::{ApiError, auth::bearer_token, config::env_or};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being served: the caller's `X-Request-Id` when it is
/// sane (1-128 visible ASCII characters), else a fresh UUID.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn caller_request_id(req: &ServiceRequest) -> Option<String> {
    let raw = req.headers().get(REQUEST_ID)?.to_str().ok()?;
    let sane = (1..=128).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic());
    sane.then(|| raw.to_owned())
}

/// Gives each request an id (echoed as `X-Request-Id`), runs it inside a span
/// carrying that id, and logs one line when it completes. Headers (tokens
/// among them) are never logged.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = caller_request_id(&req).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.path(),
    );
    let route = route_label(&req);
    let started = Instant::now();
    let mut response =
        crate::redis_round_trips::counted_as(&route, next.call(req).instrument(span.clone()))
            .await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| tracing::info!(status, latency_ms, "served"));
    Ok(response)
}

/// The label of a request's route: its method and pattern (not its path: one label per
/// route whatever the ids); `unmatched` for a path no route takes and `other` for a method
/// HTTP does not define, so that invented requests add no series.
fn route_label(req: &ServiceRequest) -> String {
    match req.match_pattern() {
        Some(pattern) if is_http_method(req.method()) => format!("{} {pattern}", req.method()),
        Some(pattern) => format!("other {pattern}"),
        None => "unmatched".to_owned(),
    }
}

/// Longest accepted path and query: ids are short, so 2 KiB is generous.
pub const MAX_URI_BYTES: usize = 2048;
/// Most header bytes (names and values) accepted: a JWT is well under 2 KiB.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Refuses oversized URIs (414) and headers (431) before any work is done.
pub async fn bounded(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let uri_bytes = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if !is_http_method(req.method()) {
        // An invented method: 405 (or 404) here, outside the metrics, so that
        // method names callers make up never become label values.
        let response = crate::extract::not_found(req.request().clone()).await;
        return Ok(req.into_response(response).map_into_right_body());
    }
    let refusal = if uri_bytes > MAX_URI_BYTES {
        Some(ApiError::new(
            ProblemCode::UriTooLong,
            format!("the URI has {uri_bytes} bytes; at most {MAX_URI_BYTES} are accepted"),
        ))
    } else if header_bytes > MAX_HEADER_BYTES {
        Some(ApiError::new(
            ProblemCode::HeadersTooLarge,
            format!(
                "the headers have {header_bytes} bytes; at most {MAX_HEADER_BYTES} are accepted"
            ),
        ))
    } else {
        None
    };
    match refusal {
        Some(error) => Ok(req
            .into_response(error.error_response())
            .map_into_right_body()),
        None => {
            crate::body_deadline::limit(&mut req, *crate::body_deadline::BODY_READ_TIMEOUT);
            Ok(next.call(req).await?.map_into_left_body())
        }
    }
}

/// The methods HTTP itself defines; any other is refused before it is counted.
fn is_http_method(method: &actix_web::http::Method) -> bool {
    use actix_web::http::Method;
    [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::TRACE,
        Method::CONNECT,
    ]
    .contains(method)
}

/// Probes and scrapes are never limited.
const UNLIMITED_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];
/// Forget idle callers' buckets every so many checks.
const HOUSEKEEPING_EVERY: u64 = 10_000;

/// Token buckets per caller: the verified `sub` of a player token, or the
/// client IP for anonymous or invalid tokens; `service` tokens are not
/// limited. Per replica (not shared).
pub struct RateLimit {
    buckets: DefaultKeyedRateLimiter<String>,
    checks: AtomicU64,
}

impl RateLimit {
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        let per_second = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(burst).unwrap_or(per_second);
        Some(Self {
            buckets: DefaultKeyedRateLimiter::keyed(
                Quota::per_second(per_second).allow_burst(burst),
            ),
            checks: AtomicU64::new(0),
        })
    }

    /// `RATE_LIMIT_PER_SEC` (default 50; 0 disables) and `RATE_LIMIT_BURST` (default 100).
    pub fn from_env() -> anyhow::Result<Option<Self>> {
        Ok(Self::new(
            env_or("RATE_LIMIT_PER_SEC", 50)?,
            env_or("RATE_LIMIT_BURST", 100)?,
        ))
    }

    /// `Err(wait)` when `key` has no token left.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        if self
            .checks
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(HOUSEKEEPING_EVERY)
        {
            self.buckets.retain_recent();
            self.buckets.shrink_to_fit();
        }
        self.buckets
            .check_key(&key.to_owned())
            .map_err(|not_until| {
                not_until.wait_time_from(governor::clock::DefaultClock::default().now())
            })
    }
}

/// The bucket a request draws from; `None` for `service` callers, which act
/// for many players at once (the game service asking the IM service) and
/// must not share one player-sized bucket.
fn caller_key(req: &ServiceRequest) -> Option<String> {
    let verified = req.app_data::<web::Data<Verifier>>().and_then(|verifier| {
        let token = bearer_token(req.request()).ok()?;
        verifier.verify(token).ok()
    });
    match verified {
        Some(caller) => {
            let key = (!caller.is_service()).then(|| format!("user:{}", caller.user_id));
            // The extractor reuses it instead of verifying twice.
            req.extensions_mut().insert(caller);
            key
        }
        None => {
            let ip: Option<IpAddr> = req.peer_addr().map(|a| a.ip());
            Some(format!(
                "ip:{}",
                ip.map(|ip| ip.to_string()).unwrap_or_default()
            ))
        }
    }
}

/// Answers 429 problem+json with `Retry-After` when the caller's bucket is empty.
pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let limit = req.app_data::<web::Data<Option<RateLimit>>>().cloned();
    let limit = limit.as_ref().and_then(|data| data.as_ref().as_ref());
    let limited = match limit {
        Some(limit) if !UNLIMITED_PATHS.contains(&req.path()) => {
            caller_key(&req).and_then(|key| limit.check(&key).err())
        }
        _ => None,
    };
    if let Some(wait) = limited {
        let error = ApiError {
            retry_after: Some(wait.as_secs().max(1)),
            ..ApiError::new(ProblemCode::RateLimited, "too many requests; retry later")
        };
        return Ok(req
            .into_response(error.error_response())
            .map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

#[cfg(test)]
#[expect(clippy::expect_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn a_caller_gets_the_burst_then_is_limited_while_others_are_not() {
        let limit = RateLimit::new(1, 3).expect("enabled");
        for _ in 0..3 {
            assert!(limit.check("user:alice").is_ok());
        }
        let wait = limit.check("user:alice").expect_err("burst used up");
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        assert!(limit.check("user:bob").is_ok(), "buckets are per caller");
    }

    #[test]
    fn zero_per_second_disables_limiting() {
        assert!(RateLimit::new(0, 10).is_none());
    }
}
