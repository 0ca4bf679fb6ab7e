//! What the two services' clients of each other make of a failed call.

/// The request went out but no answer came back, on a connection that was up: not a timeout,
/// not a refused connection (the other service down), not an error answer. It is what a
/// pooled keep-alive connection that the server closed as it was taken looks like: the
/// request was never read, so sending it once more is safe.
pub fn unanswered(err: &reqwest::Error) -> bool {
    err.is_request() && !err.is_connect() && !err.is_timeout() && err.status().is_none()
}

/// [`unanswered`] for any cause in an error chain.
pub fn unanswered_in(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|cause| cause.downcast_ref::<reqwest::Error>())
        .any(unanswered)
}
