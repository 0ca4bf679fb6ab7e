//! Event-stream responses whose last frame can be a `retry:` advice.
//!
//! A stream that ends because its replica shuts down tells its client when to
//! reconnect: the producer hands the advice to [`RetryTail`] just before it
//! stops, and [`EndsWithRetry`] writes it after the last event.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use actix_web::{
    HttpRequest, HttpResponse, Responder,
    body::{BodySize, MessageBody},
    web::Bytes,
};
use tokio::sync::oneshot;

/// The producer's half: the `retry` to write once the stream's events end.
pub struct RetryTail(oneshot::Sender<Duration>);

impl RetryTail {
    /// Ends the stream with `retry: <advice in ms>` (the producer stops right after).
    pub fn advise(self, advice: Duration) {
        // The receiver is gone only when the client left: nobody to advise.
        let _ = self.0.send(advice);
    }
}

/// A response body that writes a pending [`RetryTail`] advice after `inner` ends.
pub struct EndsWithRetry<B> {
    inner: Pin<Box<B>>,
    tail: Option<oneshot::Receiver<Duration>>,
    /// `inner` ended (and the advice, if any, went out): never poll it again.
    finished: bool,
}

/// Wraps an event-stream responder (`actix_web_lab::sse::Sse`, say): the
/// response keeps its headers, and its body ends with the advice if one is given.
pub fn ending_with_retry<R>(
    responder: R,
    req: &HttpRequest,
) -> (RetryTail, HttpResponse<EndsWithRetry<R::Body>>)
where
    R: Responder,
{
    let (tx, rx) = oneshot::channel();
    let response = responder.respond_to(req).map_body(|_, body| EndsWithRetry {
        inner: Box::pin(body),
        tail: Some(rx),
        finished: false,
    });
    (RetryTail(tx), response)
}

impl<B: MessageBody> MessageBody for EndsWithRetry<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        if self.finished {
            return Poll::Ready(None);
        }
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(None) => {
                self.finished = true;
                // The producer advises before it stops, so the advice is there
                // by the time its events have ended.
                let advice = self.tail.take().and_then(|mut rx| rx.try_recv().ok());
                Poll::Ready(advice.map(|retry| Ok(retry_frame(retry))))
            }
            other => other,
        }
    }
}

/// `retry: <ms>`, a frame of its own.
fn retry_frame(retry: Duration) -> Bytes {
    Bytes::from(format!("retry: {}\n\n", retry.as_millis()))
}

#[cfg(test)]
mod tests {
    use actix_web::{body::to_bytes, test::TestRequest};

    use super::*;

    #[actix_web::test]
    async fn the_advice_is_the_last_frame_and_without_one_the_body_just_ends() {
        let req = TestRequest::default().to_http_request();
        let (tail, response) = ending_with_retry("event: x\ndata: 1\n\n", &req);
        tail.advise(Duration::from_millis(2345));
        let body = to_bytes(response.into_body())
            .await
            .ok()
            .unwrap_or_default();
        assert_eq!(body, "event: x\ndata: 1\n\nretry: 2345\n\n");

        let (tail, response) = ending_with_retry("data: 2\n\n", &req);
        drop(tail);
        let body = to_bytes(response.into_body())
            .await
            .ok()
            .unwrap_or_default();
        assert_eq!(body, "data: 2\n\n");
    }
}
