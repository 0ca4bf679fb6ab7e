//! A fake IM service on the IM port: it counts every partners request it receives and, by its
//! current mode, answers 500, hangs, or answers the partners it was told (optionally late); the
//! game service's background calls (presence feed, activity, announcements) get a 500. It proves
//! what the game service does (or does not) send to the IM service.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use tokio::{
    net::{TcpListener, TcpStream},
    task::{JoinHandle, JoinSet},
};

/// What the stub does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StubMode {
    /// 500 problem+json at once.
    Fail,
    /// Reads the request and never answers (the connection stays open).
    Hang,
    /// The partners it was told, as `GET /v1/users/{id}/partners` answers them, after `delay`.
    Answer { delay: Duration },
}

type Partners = Arc<Mutex<HashMap<String, Vec<String>>>>;
/// Users whose partners answer comes late whatever the mode's delay (a slow query of theirs).
type Slow = Arc<Mutex<HashMap<String, Duration>>>;

pub struct StubIm {
    requests: Arc<AtomicUsize>,
    mode: Arc<Mutex<StubMode>>,
    partners: Partners,
    slow: Slow,
    task: JoinHandle<()>,
}

impl StubIm {
    /// Listens on `127.0.0.1:port` (the real IM service must be gone from it).
    pub async fn start(port: u16, mode: StubMode) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("binding the stub IM service on port {port}"))?;
        let requests = Arc::new(AtomicUsize::new(0));
        let mode = Arc::new(Mutex::new(mode));
        let partners: Partners = Arc::default();
        let slow: Slow = Arc::default();
        let task = tokio::spawn(serve(
            listener,
            Arc::clone(&requests),
            Arc::clone(&mode),
            Arc::clone(&partners),
            Arc::clone(&slow),
        ));
        Ok(Self {
            requests,
            mode,
            partners,
            slow,
            task,
        })
    }

    /// Requests received so far (answered or not).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    pub fn set_mode(&self, mode: StubMode) {
        if let Ok(mut current) = self.mode.lock() {
            *current = mode;
        }
    }

    /// From now on, in `Answer` mode, `user`'s partners come after at least `delay`.
    pub fn slow_for(&self, user: &str, delay: Duration) {
        if let Ok(mut slow) = self.slow.lock() {
            slow.insert(user.to_owned(), delay);
        }
    }

    /// From now on `a` and `b` are each other's available partners.
    pub fn talk(&self, a: &str, b: &str) {
        if let Ok(mut partners) = self.partners.lock() {
            partners.entry(a.to_owned()).or_default().push(b.to_owned());
            partners.entry(b.to_owned()).or_default().push(a.to_owned());
        }
    }

    /// Stops listening and drops every connection: the port is free again.
    pub async fn stop(self) {
        self.task.abort();
        while !self.task.is_finished() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for StubIm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    listener: TcpListener,
    requests: Arc<AtomicUsize>,
    mode: Arc<Mutex<StubMode>>,
    partners: Partners,
    slow: Slow,
) {
    // Dropped with this task: aborting it ends every connection too.
    let mut connections = JoinSet::new();
    while let Ok((socket, _)) = listener.accept().await {
        connections.spawn(answer(
            socket,
            Arc::clone(&requests),
            Arc::clone(&mode),
            Arc::clone(&partners),
            Arc::clone(&slow),
        ));
        while connections.try_join_next().is_some() {}
    }
}

/// One request per connection (`connection: close`).
async fn answer(
    socket: TcpStream,
    requests: Arc<AtomicUsize>,
    mode: Arc<Mutex<StubMode>>,
    partners: Partners,
    slow: Slow,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    // Plain readiness calls: the workspace's tokio has no `io-util`.
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if socket.readable().await.is_err() {
            return;
        }
        match socket.try_read(&mut buf) {
            Ok(0) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
    // The game service's background calls (the presence feed, activity, announcements) are
    // not what a scenario counts or shapes: they get a 503 (tried again later) at once.
    let current = if is_partners(&head) {
        requests.fetch_add(1, Ordering::SeqCst);
        mode.lock().map(|m| *m).unwrap_or(StubMode::Fail)
    } else {
        StubMode::Fail
    };
    let response = match current {
        StubMode::Hang => {
            std::future::pending::<()>().await;
            return;
        }
        StubMode::Fail => reply(
            "500 Internal Server Error",
            "application/problem+json",
            &serde_json::json!({
                "type": "/problems/internal", "title": "Internal error", "status": 500,
                "code": "internal", "detail": "the stub IM service fails on purpose"
            })
            .to_string(),
        ),
        StubMode::Answer { delay } => {
            let user = requested_user(&head).unwrap_or_default();
            let theirs = slow
                .lock()
                .ok()
                .and_then(|s| s.get(&user).copied())
                .unwrap_or_default();
            tokio::time::sleep(delay.max(theirs)).await;
            let theirs = partners
                .lock()
                .map(|p| p.get(&user).cloned().unwrap_or_default())
                .unwrap_or_default();
            let now = chrono::Utc::now();
            let body = serde_json::json!({
                "user_id": user,
                "status": "available",
                "partners": theirs.iter().map(|id| serde_json::json!({
                    "user_id": id,
                    "status": "available",
                    "conversation_id": uuid::Uuid::new_v4(),
                    "last_activity_at": now,
                })).collect::<Vec<_>>(),
            });
            reply("200 OK", "application/json", &body.to_string())
        }
    };
    let mut left = response.as_bytes();
    while !left.is_empty() {
        if socket.writable().await.is_err() {
            return;
        }
        match socket.try_write(left) {
            Ok(n) => left = &left[n..],
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
    // Dropping the socket closes it: `connection: close` said so.
}

fn reply(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Whether the request is `GET /v1/users/{id}/partners?…`.
fn is_partners(head: &[u8]) -> bool {
    let head = String::from_utf8_lossy(head);
    head.lines().next().is_some_and(|line| {
        line.starts_with("GET /v1/users/")
            && line.split_whitespace().nth(1).is_some_and(|t| {
                t.split('?')
                    .next()
                    .is_some_and(|path| path.ends_with("/partners"))
            })
    })
}

/// `GET /v1/users/{id}/partners?…` → `id`.
fn requested_user(head: &[u8]) -> Option<String> {
    let head = String::from_utf8_lossy(head);
    let target = head.lines().next()?.split_whitespace().nth(1)?;
    let rest = target.strip_prefix("/v1/users/")?;
    Some(rest.split(['/', '?']).next()?.to_owned())
}
