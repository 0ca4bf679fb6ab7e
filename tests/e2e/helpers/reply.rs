//! A response read in full, and the checks on it: exactly 200, any 2xx, a JSON body of the expected shape, an RFC 9457 problem.

use std::time::Duration;

use anyhow::{Context, anyhow, ensure};
use reqwest::{Method, StatusCode, header};
use serde::de::DeserializeOwned;
use shared_types::problem::{CONTENT_TYPE as PROBLEM_CONTENT_TYPE, Problem, ProblemCode};

/// A response read in full, for assertions on status, headers and body.
#[derive(Debug)]
pub struct Reply {
    pub method: Method,
    pub path: String,
    pub status: StatusCode,
    pub headers: header::HeaderMap,
    pub body: String,
    pub elapsed: Duration,
}

impl Reply {
    pub fn content_type(&self) -> String {
        content_type(&self.headers)
    }

    /// Exactly 200, or an error that shows what came back.
    pub fn ok(self) -> anyhow::Result<Self> {
        if self.status == StatusCode::OK {
            Ok(self)
        } else {
            Err(self.unexpected("200"))
        }
    }

    /// Any 2xx.
    pub fn success(self) -> anyhow::Result<Self> {
        if self.status.is_success() {
            Ok(self)
        } else {
            Err(self.unexpected("2xx"))
        }
    }

    pub fn json<T: DeserializeOwned>(&self) -> anyhow::Result<T> {
        serde_json::from_str(&self.body).with_context(|| {
            format!(
                "{} {} answered a body of an unexpected shape: {}",
                self.method, self.path, self.body
            )
        })
    }

    /// Asserts a 503 `store_unavailable` with `Retry-After`, answered within `limit`.
    pub fn store_unavailable_within(&self, limit: Duration) -> anyhow::Result<()> {
        self.problem(503, ProblemCode::StoreUnavailable)?;
        ensure!(
            self.headers.contains_key(header::RETRY_AFTER),
            "{} {}: a 503 says when to retry: {:?}",
            self.method,
            self.path,
            self.headers
        );
        ensure!(
            self.elapsed < limit,
            "{} {} took {:?} to answer 503 (at most {limit:?})",
            self.method,
            self.path,
            self.elapsed
        );
        Ok(())
    }

    /// Asserts an RFC 9457 problem with this status and code; returns it.
    pub fn problem(&self, status: u16, code: ProblemCode) -> anyhow::Result<Problem> {
        let problem = self.any_problem()?;
        ensure!(
            self.status.as_u16() == status && problem.code == code,
            "{} {}: expected {status} {code:?}, got {} {:?}: {}",
            self.method,
            self.path,
            self.status,
            problem.code,
            self.body
        );
        ensure!(
            problem.status == status,
            "{} {}: problem body says status {} on a {} response",
            self.method,
            self.path,
            problem.status,
            self.status
        );
        ensure!(
            problem.type_ == code.type_uri(),
            "{} {}: problem type {:?}, expected {:?}",
            self.method,
            self.path,
            problem.type_,
            code.type_uri()
        );
        Ok(problem)
    }

    /// Asserts a 4xx RFC 9457 problem of any code; returns it.
    pub fn client_error(&self) -> anyhow::Result<Problem> {
        ensure!(
            self.status.is_client_error(),
            "{} {}: expected a 4xx, got {}: {}",
            self.method,
            self.path,
            self.status,
            self.body
        );
        self.any_problem()
    }

    fn any_problem(&self) -> anyhow::Result<Problem> {
        let content_type = self.content_type();
        ensure!(
            content_type.starts_with(PROBLEM_CONTENT_TYPE),
            "{} {}: expected {PROBLEM_CONTENT_TYPE}, got {} with content-type {content_type:?}: {}",
            self.method,
            self.path,
            self.status,
            self.body
        );
        self.json()
    }

    fn unexpected(&self, wanted: &str) -> anyhow::Error {
        anyhow!(
            "{} {}: expected {wanted}, got {}: {}",
            self.method,
            self.path,
            self.status,
            self.body
        )
    }
}

pub(super) fn content_type(headers: &header::HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}
