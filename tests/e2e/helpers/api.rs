//! The HTTP client under players, game servers and raw requests: one request to either service, read in full into a [`Reply`].

use std::time::Instant;

use anyhow::Context;
use reqwest::{Client, Method, header};

use super::{REQUEST_TIMEOUT, Reply, Service};

#[derive(Clone)]
pub(super) struct Api {
    pub(super) client: Client,
    pub(super) im: String,
    pub(super) game: String,
}

impl Api {
    pub(super) fn base(&self, service: Service) -> &str {
        match service {
            Service::Im => &self.im,
            Service::Game => &self.game,
        }
    }

    pub(super) async fn send(
        &self,
        service: Service,
        method: Method,
        path: &str,
        authorization: Option<&str>,
        body: Option<&str>,
    ) -> anyhow::Result<Reply> {
        self.send_with(service, method, path, authorization, body, &[])
            .await
    }

    /// [`Api::send`] with more request headers.
    pub(super) async fn send_with(
        &self,
        service: Service,
        method: Method,
        path: &str,
        authorization: Option<&str>,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Reply> {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base(service)))
            .timeout(REQUEST_TIMEOUT);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        if let Some(body) = body {
            request = request
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.to_owned());
        }
        let start = Instant::now();
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .text()
            .await
            .with_context(|| format!("reading the body of {method} {path}"))?;
        Ok(Reply {
            method,
            path: path.to_owned(),
            status,
            headers,
            body,
            elapsed: start.elapsed(),
        })
    }
}
