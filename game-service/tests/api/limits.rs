//! Request size and shape limits: each refusal is a problem+json and leaves the player's state as it was.

use reqwest::{Method, StatusCode, header};
use serde_json::json;
use shared_types::{game::PlayerState, problem::ProblemCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{TestApp, assert_problem, expect_json, spawn_app};

/// Alice chats with Bob and holds an open invite prompt; returns its accept path.
async fn alice_with_an_invite(app: &TestApp) -> anyhow::Result<(String, PlayerState)> {
    app.chatting(&["alice", "bob"]).await?;
    let state = app.connect("alice").await?;
    let prompt = state
        .prompt
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("an invite prompt"))?;
    Ok((format!("/v1/prompts/{}/accept", prompt.id), state))
}

#[tokio::test]
async fn oversized_unknown_field_and_non_json_bodies_long_uris_and_big_headers_are_refused_with_problems()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    let (accept, before) = alice_with_an_invite(&app).await?;
    let token = app.token("alice")?;

    // A JSON body over 16 KiB: 413.
    let padding = "x".repeat(17 * 1024);
    let response = app
        .request(Method::POST, &accept, Some(&token))
        .json(&json!({"with": ["bob"], "padding": padding}))
        .send()
        .await?;
    assert_problem(
        response,
        StatusCode::PAYLOAD_TOO_LARGE,
        ProblemCode::PayloadTooLarge,
    )
    .await?;

    // Unknown fields: 400.
    let response = app
        .request(Method::POST, &accept, Some(&token))
        .json(&json!({"with": ["bob"], "colour": "red"}))
        .send()
        .await?;
    assert_problem(
        response,
        StatusCode::BAD_REQUEST,
        ProblemCode::InvalidRequest,
    )
    .await?;

    // A body that is not application/json: 415.
    let response = app
        .request(Method::POST, &accept, Some(&token))
        .header(header::CONTENT_TYPE, "text/plain")
        .body(r#"{"with": ["bob"]}"#)
        .send()
        .await?;
    assert_problem(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ProblemCode::UnsupportedMediaType,
    )
    .await?;

    // A URI over 2 KiB: 414, on the state-changing endpoint too.
    let long_query = format!("?pad={}", "a".repeat(2100));
    for path in [
        format!("{accept}{long_query}"),
        format!("/v1/me{long_query}"),
    ] {
        let method = if path.starts_with("/v1/me") {
            Method::GET
        } else {
            Method::POST
        };
        let response = app.request(method, &path, Some(&token)).send().await?;
        assert_problem(response, StatusCode::URI_TOO_LONG, ProblemCode::UriTooLong).await?;
    }

    // Headers over 16 KiB in all: 431.
    let response = app
        .request(Method::POST, &accept, Some(&token))
        .header("x-filler-one", "b".repeat(9 * 1024))
        .header("x-filler-two", "c".repeat(9 * 1024))
        .send()
        .await?;
    assert_problem(
        response,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        ProblemCode::HeadersTooLarge,
    )
    .await?;

    assert_eq!(app.me("alice").await?, before, "nothing was accepted");
    // Just under the limits, the same prompt is still open and accepts.
    let response = app
        .request(
            Method::POST,
            &format!("{accept}?pad={}", "a".repeat(100)),
            Some(&token),
        )
        .header("x-filler", "d".repeat(4 * 1024))
        .json(&json!({"with": ["bob"]}))
        .send()
        .await?;
    let state: PlayerState = expect_json(response, StatusCode::OK).await?;
    assert!(state.session.is_some(), "{state:?}");
    Ok(())
}

/// Sends `request` on a raw connection and returns the whole answer.
async fn raw_exchange(app: &TestApp, request: &[u8]) -> anyhow::Result<String> {
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    stream.write_all(request).await?;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        let mut buffer = [0u8; 4096];
        loop {
            let n = stream.read(&mut buffer).await?;
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&answer);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if body.len() >= length {
                    break;
                }
            }
        }
        anyhow::Ok(())
    })
    .await;
    anyhow::ensure!(read.is_ok(), "no complete answer within 5 s");
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test]
async fn a_chunked_body_without_length_is_cut_at_16_kib_with_a_413_problem() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let (accept, before) = alice_with_an_invite(&app).await?;
    let json = format!(
        r#"{{"with":["bob"],"padding":"{}"}}"#,
        "x".repeat(20 * 1024)
    );
    let mut request = format!(
        "POST {accept} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
        app.token("alice")?
    )
    .into_bytes();
    for chunk in json.as_bytes().chunks(1024) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let answer = raw_exchange(&app, &request).await?;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let lower = answer.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: application/problem+json"),
        "{answer}"
    );
    assert!(answer.contains(r#""code":"payload_too_large""#), "{answer}");
    assert!(
        answer.contains(r#""type":"/problems/payload-too-large""#),
        "{answer}"
    );
    assert_eq!(app.me("alice").await?, before);
    Ok(())
}
