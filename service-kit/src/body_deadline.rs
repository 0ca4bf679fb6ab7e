//! A deadline on reading a request body, the same on HTTP/1.1 and HTTP/2: a
//! client trickling a body byte by byte cannot hold a request open for long.

use std::{
    io,
    pin::Pin,
    sync::LazyLock,
    task::{Context, Poll},
    time::Duration,
};

use actix_web::{HttpMessage, dev::ServiceRequest, error::PayloadError, http::header, web::Bytes};
use futures_util::Stream;

/// Default `REQUEST_BODY_TIMEOUT_MS`: every body of the API is under 16 KiB,
/// which any client sends in well under a second.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a request body may take to arrive once its headers have
/// (`REQUEST_BODY_TIMEOUT_MS`, read once).
pub static BODY_READ_TIMEOUT: LazyLock<Duration> = LazyLock::new(|| {
    crate::config::env_or("REQUEST_BODY_TIMEOUT_MS", 0_u64)
        .ok()
        .filter(|ms| *ms > 0)
        .map_or(DEFAULT_BODY_READ_TIMEOUT, Duration::from_millis)
});

/// The message of the error a late body fails with (the JSON extractor turns it into a 408).
pub const TOO_SLOW: &str = "the request body did not arrive in time";

struct Deadline<S> {
    inner: S,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl<S> Stream for Deadline<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Poll::Ready(item) = Pin::new(&mut self.inner).poll_next(cx) {
            return Poll::Ready(item);
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(PayloadError::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                TOO_SLOW,
            ))))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Whether the request announces a body (so bodiless requests pay for no timer).
fn has_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|length| length > 0)
        // HTTP/2 need not send a length: any body-carrying method gets the deadline.
        || (req.version() == actix_web::http::Version::HTTP_2
            && !matches!(*req.method(), actix_web::http::Method::GET | actix_web::http::Method::HEAD))
}

/// Gives the request's body `within` to arrive.
pub fn limit(req: &mut ServiceRequest, within: Duration) {
    if !has_body(req) {
        return;
    }
    let inner = req.take_payload();
    let timed = Deadline {
        inner,
        sleep: Box::pin(tokio::time::sleep(within)),
    };
    req.set_payload(actix_web::dev::Payload::Stream {
        payload: Box::pin(timed),
    });
}
