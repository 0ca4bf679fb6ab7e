//! Checks that a service's `/docs/` page loads everything it needs from the service itself.

use anyhow::Context;
use reqwest::{StatusCode, header};

/// The values of `attribute="…"` (or `'…'`) in `html`.
pub fn attribute_values(html: &str, attribute: &str) -> Vec<String> {
    let mut values = Vec::new();
    let lower = html.to_ascii_lowercase();
    let needle = format!("{attribute}=");
    let mut from = 0;
    while let Some(found) = lower[from..].find(&needle) {
        let start = from + found + needle.len();
        from = start;
        // Only whole attribute names: `data-src=` is not `src=`.
        let before = lower[..start - needle.len()].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            continue;
        }
        let Some(quote) = html[start..]
            .chars()
            .next()
            .filter(|c| *c == '"' || *c == '\'')
        else {
            continue;
        };
        if let Some(end) = html[start + 1..].find(quote) {
            values.push(html[start + 1..start + 1 + end].to_owned());
        }
    }
    values
}

/// Every quoted string literal in a script that looks like a URL or an absolute path.
pub fn script_urls(script: &str) -> Vec<String> {
    let mut urls = Vec::new();
    for quote in ['"', '\'', '`'] {
        let mut parts = script.split(quote);
        parts.next();
        // Odd pieces are inside quotes.
        for (i, piece) in parts.enumerate() {
            if i % 2 == 0
                && !piece.contains(char::is_whitespace)
                && (piece.starts_with('/') || piece.starts_with("http") || piece.starts_with("./"))
            {
                urls.push(piece.to_owned());
            }
        }
    }
    urls
}

/// The `url(…)` references of a style sheet, `data:` URIs left out.
pub fn css_urls(css: &str) -> Vec<String> {
    css.split("url(")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .map(|raw| raw.trim().trim_matches(['"', '\'']).to_owned())
        .filter(|url| !url.starts_with("data:") && !url.starts_with('#'))
        .collect()
}

fn is_external(reference: &str) -> bool {
    let lower = reference.trim().to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("//")
}

/// `reference` as a path on the service, relative references resolved against `/docs/`.
fn resolve(reference: &str) -> String {
    let reference = reference.split('#').next().unwrap_or_default();
    if reference.starts_with('/') {
        reference.to_owned()
    } else {
        format!("/docs/{}", reference.trim_start_matches("./"))
    }
}

/// Fetches `path` from `base`: 200 and a non-empty body, returned with its content type.
async fn fetch(
    client: &reqwest::Client,
    base: &str,
    path: &str,
) -> anyhow::Result<(String, String)> {
    let response = client.get(format!("{base}{path}")).send().await?;
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response
        .text()
        .await
        .with_context(|| format!("body of {path}"))?;
    assert!(!body.trim().is_empty(), "GET {path} has an empty body");
    Ok((content_type, body))
}

/// `GET /docs/` is HTML whose every `src`/`href` (and what `swagger-initializer.js` and the
/// style sheets reference) is served by the service itself: 200, non-empty, no CDN.
/// Returns the paths fetched.
pub async fn assert_docs_work_offline(
    client: &reqwest::Client,
    base: &str,
) -> anyhow::Result<Vec<String>> {
    let (content_type, html) = fetch(client, base, "/docs/").await?;
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let mut references = attribute_values(&html, "src");
    references.extend(attribute_values(&html, "href"));
    assert!(
        references.iter().any(|r| r.ends_with(".js")),
        "the page loads scripts: {references:?}"
    );
    assert!(
        references
            .iter()
            .any(|r| r.ends_with("swagger-initializer.js")),
        "the page loads its initializer: {references:?}"
    );
    let mut fetched = Vec::new();
    let mut queue: Vec<String> = references;
    while let Some(reference) = queue.pop() {
        assert!(
            !is_external(&reference),
            "the docs reference {reference} outside the service"
        );
        if reference.starts_with('#') || reference.starts_with("data:") {
            continue;
        }
        let path = resolve(&reference);
        if fetched.contains(&path) {
            continue;
        }
        let (_, body) = fetch(client, base, &path).await?;
        if path.ends_with("swagger-initializer.js") {
            assert!(
                !body.contains("http://") && !body.contains("https://"),
                "the initializer names an absolute URL:\n{body}"
            );
            let urls = script_urls(&body);
            assert!(
                urls.iter().any(|u| u == "/openapi.json"),
                "the initializer loads /openapi.json: {urls:?}\n{body}"
            );
            queue.extend(urls);
        } else if path.ends_with(".css") {
            queue.extend(css_urls(&body));
        }
        fetched.push(path);
    }
    assert!(fetched.iter().any(|p| p == "/openapi.json"), "{fetched:?}");
    Ok(fetched)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_scripts_and_style_sheets_are_parsed() {
        let html = r#"<link href="./a.css"><script src='b.js' data-src="x"></script>"#;
        assert_eq!(attribute_values(html, "src"), ["b.js"]);
        assert_eq!(attribute_values(html, "href"), ["./a.css"]);
        assert_eq!(
            script_urls(r#"url: "/openapi.json", dom_id: '#swagger-ui'"#),
            ["/openapi.json"]
        );
        assert_eq!(
            css_urls(r#"a{background:url("data:image/svg+xml,x")} b{src:url(./f.woff)}"#),
            ["./f.woff"]
        );
        assert!(is_external("//cdn.example/x.js") && is_external("HTTPS://x"));
        assert_eq!(resolve("./x.css#y"), "/docs/x.css");
    }
}
