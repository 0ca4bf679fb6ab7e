//! The reference web client at `/play/`: static assets compiled into the binary.

use actix_web::{
    HttpResponse,
    http::header::{self, HeaderValue},
    web,
};
use anyhow::Context;
use service_kit::ApiError;

/// The page's files (`game-service/web/`), served as they are: no build step.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "",
        include_str!("../web/index.html"),
        "text/html; charset=utf-8",
    ),
    ("app.js", include_str!("../web/app.js"), JS),
    ("api.js", include_str!("../web/api.js"), JS),
    ("chat.js", include_str!("../web/chat.js"), JS),
    ("dom.js", include_str!("../web/dom.js"), JS),
    ("game.js", include_str!("../web/game.js"), JS),
    ("stream.js", include_str!("../web/stream.js"), JS),
    (
        "style.css",
        include_str!("../web/style.css"),
        "text/css; charset=utf-8",
    ),
    (
        "favicon.svg",
        include_str!("../web/favicon.svg"),
        "image/svg+xml",
    ),
];
const JS: &str = "text/javascript; charset=utf-8";

/// What the page is told (`config.json`) and the policy it runs under.
#[derive(Clone)]
pub struct PlayClient {
    /// The IM service's base URL as the player's browser reaches it.
    im_url: String,
    /// Scripts, styles and calls only from this origin and the IM service's.
    content_security_policy: HeaderValue,
}

impl PlayClient {
    /// `im_url` must be absolute: the page calls it from the player's browser,
    /// and the IM service must allow this origin (`CORS_ALLOWED_ORIGINS`).
    pub fn new(im_url: &str) -> anyhow::Result<Self> {
        let parsed = reqwest::Url::parse(im_url)
            .with_context(|| format!("PLAY_IM_URL={im_url:?} is not an absolute URL"))?;
        anyhow::ensure!(
            matches!(parsed.scheme(), "http" | "https"),
            "PLAY_IM_URL={im_url:?} must be an http or https URL"
        );
        let origin = parsed.origin().ascii_serialization();
        let policy = format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self' {origin}; \
             img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
        );
        Ok(Self {
            im_url: im_url.trim_end_matches('/').to_owned(),
            content_security_policy: HeaderValue::from_str(&policy)
                .with_context(|| format!("PLAY_IM_URL={im_url:?} cannot go in a header"))?,
        })
    }
}

pub fn configure(cfg: &mut web::ServiceConfig, client: PlayClient) {
    cfg.app_data(web::Data::new(client))
        .route(
            "/play",
            web::get().to(|| async {
                HttpResponse::PermanentRedirect()
                    .insert_header((header::LOCATION, "/play/"))
                    .finish()
            }),
        )
        .route("/play/config.json", web::get().to(config))
        .route("/play/{file:.*}", web::get().to(asset));
}

async fn config(client: web::Data<PlayClient>) -> HttpResponse {
    page_headers(&client, HttpResponse::Ok()).json(serde_json::json!({ "im_url": client.im_url }))
}

async fn asset(
    file: web::Path<String>,
    client: web::Data<PlayClient>,
) -> Result<HttpResponse, ApiError> {
    let (_, body, content_type) = ASSETS
        .iter()
        .find(|(name, _, _)| *name == file.as_str())
        .ok_or_else(|| ApiError::not_found("no such file in the web client"))?;
    Ok(page_headers(&client, HttpResponse::Ok())
        .insert_header((header::CONTENT_TYPE, *content_type))
        .body(*body))
}

fn page_headers(
    client: &PlayClient,
    mut response: actix_web::HttpResponseBuilder,
) -> actix_web::HttpResponseBuilder {
    response
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            client.content_security_policy.clone(),
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        // The assets change with the binary: revalidate, never serve a stale page.
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    response
}

#[cfg(test)]
#[expect(clippy::expect_used, reason = "tests")]
mod tests;
