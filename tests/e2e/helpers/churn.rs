//! Background players who keep playing while a fault strikes: each reads its state and takes
//! the next step (connect, accept, leave, connect again…) in a loop, and every answer is
//! classified. Allowed: 200, 409 (a prompt closed by someone else), and 503 problem+json with
//! `Retry-After`. Anything else is a violation; a failed request (no HTTP answer) is counted
//! apart, since killing a process is what some scenarios do on purpose.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use reqwest::{Method, StatusCode};
use shared_types::{game::PlayerState, problem::ProblemCode};
use tokio::task::JoinHandle;

use super::{Player, Reply, Service};

/// Pause between two steps of one player; longer after a 503.
const STEP: Duration = Duration::from_millis(20);
const BACK_OFF: Duration = Duration::from_millis(100);

#[derive(Default)]
struct Log {
    statuses: Mutex<BTreeMap<u16, usize>>,
    violations: Mutex<Vec<String>>,
    failed_requests: Mutex<Vec<String>>,
    successes: AtomicUsize,
}

/// What the background players saw.
#[derive(Debug, Default)]
pub struct ChurnReport {
    /// Answers per HTTP status.
    pub statuses: BTreeMap<u16, usize>,
    /// Answers the contract does not allow (with when and what).
    pub violations: Vec<String>,
    /// Requests that got no HTTP answer at all.
    pub failed_requests: Vec<String>,
}

impl ChurnReport {
    /// Every answer was one the contract allows, and every request got one.
    pub fn ensure_clean(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.violations.is_empty(),
            "answers the contract forbids: {:#?}",
            self.violations
        );
        anyhow::ensure!(
            self.failed_requests.is_empty(),
            "requests that got no answer at all: {:#?}",
            self.failed_requests
        );
        Ok(())
    }
}

pub struct Churn {
    stop: Arc<AtomicBool>,
    log: Arc<Log>,
    tasks: Vec<JoinHandle<()>>,
}

impl Churn {
    /// Starts one loop per player (players already pointed at the replica they should use).
    /// The players should be chatting in pairs, so that flows go through lobbies and joins.
    pub fn start(players: Vec<Player>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Log::default());
        let started = Instant::now();
        let tasks = players
            .into_iter()
            .map(|player| {
                let stop = Arc::clone(&stop);
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let pause = step(&player, &log, started).await;
                        tokio::time::sleep(pause).await;
                    }
                })
            })
            .collect();
        Self { stop, log, tasks }
    }

    /// 200 answers so far.
    pub fn successes(&self) -> usize {
        self.log.successes.load(Ordering::Relaxed)
    }

    /// Waits until `more` further 200 answers arrived (the service works again), or `limit`.
    pub async fn wait_for_successes(&self, more: usize, limit: Duration) -> bool {
        let target = self.successes() + more;
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.successes() >= target {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Stops every loop (after its current request) and reports.
    pub async fn stop(self) -> ChurnReport {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = task.await;
        }
        let take = |m: &Mutex<Vec<String>>| m.lock().map(|v| v.clone()).unwrap_or_default();
        ChurnReport {
            statuses: self
                .log
                .statuses
                .lock()
                .map(|s| s.clone())
                .unwrap_or_default(),
            violations: take(&self.log.violations),
            failed_requests: take(&self.log.failed_requests),
        }
    }
}

/// One step: read the state, then take the next step of the flow. Returns the pause to take.
async fn step(player: &Player, log: &Log, started: Instant) -> Duration {
    let Some(state) = request(player, Method::GET, "/v1/me".into(), log, started).await else {
        return BACK_OFF;
    };
    let (method, path) = match (&state.prompt, &state.session) {
        (Some(prompt), _) => (Method::POST, format!("/v1/prompts/{}/accept", prompt.id)),
        (None, Some(session)) => (Method::POST, format!("/v1/sessions/{}/leave", session.id)),
        (None, None) => (Method::POST, "/v1/connect".to_owned()),
    };
    match request(player, method, path, log, started).await {
        Some(_) => STEP,
        None => BACK_OFF,
    }
}

/// Sends and classifies; the state on a 200.
async fn request(
    player: &Player,
    method: Method,
    path: String,
    log: &Log,
    started: Instant,
) -> Option<PlayerState> {
    let at = started.elapsed();
    let reply = match player.raw(Service::Game, method.clone(), &path, None).await {
        Ok(reply) => reply,
        Err(err) => {
            if let Ok(mut failed) = log.failed_requests.lock() {
                failed.push(format!("{at:.1?} {} {method} {path}: {err:#}", player.id));
            }
            return None;
        }
    };
    if let Ok(mut statuses) = log.statuses.lock() {
        *statuses.entry(reply.status.as_u16()).or_default() += 1;
    }
    match classify(&reply) {
        Ok(state) => {
            if state.is_some() {
                log.successes.fetch_add(1, Ordering::Relaxed);
            }
            state
        }
        Err(err) => {
            if let Ok(mut violations) = log.violations.lock() {
                violations.push(format!("{at:.1?} {} {method} {path}: {err:#}", player.id));
            }
            None
        }
    }
}

fn classify(reply: &Reply) -> anyhow::Result<Option<PlayerState>> {
    match reply.status {
        StatusCode::OK => {
            let state: PlayerState = reply.json()?;
            anyhow::ensure!(
                state.prompt.is_none() || state.session.is_none(),
                "a prompt and a session at once: {state:#?}"
            );
            Ok(Some(state))
        }
        StatusCode::CONFLICT => {
            reply.client_error()?;
            Ok(None)
        }
        StatusCode::SERVICE_UNAVAILABLE => {
            reply
                .problem(503, ProblemCode::StoreUnavailable)
                .or_else(|_| reply.problem(503, ProblemCode::LockContention))?;
            anyhow::ensure!(
                reply.headers.contains_key("retry-after"),
                "a 503 without Retry-After: {:?}",
                reply.headers
            );
            Ok(None)
        }
        other => anyhow::bail!("unexpected {other}: {}", reply.body),
    }
}
