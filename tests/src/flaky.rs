//! A service that drops the first requests it reads without answering them, as a server
//! closing an idle keep-alive connection does, then answers: for the clients' "unanswered,
//! sent once more" rule.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use anyhow::Context;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// Listens on a free port; drops the first `closing` requests after reading them, answers
/// the others with `status_line` (e.g. `201 Created`) and the JSON `body`. Returns its base
/// URL and the count of requests it read.
pub async fn dropping_first_requests(
    closing: usize,
    status_line: &'static str,
    body: &'static str,
) -> anyhow::Result<(String, Arc<AtomicUsize>)> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a port")?;
    let address = format!("http://{}", listener.local_addr()?);
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buffer = [0u8; 8192];
            if socket.read(&mut buffer).await.unwrap_or(0) == 0 {
                continue;
            }
            if seen.fetch_add(1, Ordering::SeqCst) < closing {
                drop(socket); // read, never answered
                continue;
            }
            let answer = format!(
                "HTTP/1.1 {status_line}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    Ok((address, requests))
}
