//! The pairings run: warm-up, the measured phase at fixed concurrency, then the bound.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde::Serialize;

use crate::{
    api::{self, Api},
    baseline::{self, RoundTrips},
    options::Options,
    pairing,
    process_cpu::CpuSnapshot,
    stats::{Errors, Latency, LatencySummary},
    store_cost::{Snapshot, StoreCost},
};

/// After a failed attempt, a worker pauses this long so a dead service is not spun against.
const ERROR_PAUSE: Duration = Duration::from_millis(50);

/// What a pairings run measured.
#[derive(Debug, Clone, Serialize)]
pub struct PairingReport {
    /// Users were named `lg<run_id>-<n>a` (host) and `lg<run_id>-<n>b` (invitee).
    pub run_id: String,
    pub game_url: String,
    pub im_url: String,
    pub concurrency: usize,
    pub warmup_secs: f64,
    pub duration_secs: f64,
    /// The measured phase, from its start until the last pairing in flight finished.
    pub elapsed_secs: f64,
    pub completed: u64,
    pub pairings_per_sec: f64,
    /// Measured over completed pairings: presence ×2, conversation, event streams ×2,
    /// connect ×2, accept ×2, leave ×2.
    pub http_requests_per_pairing: f64,
    pub latency: PairingLatency,
    /// Failed attempts (a pairing counts once, at its first failure).
    pub errors: Errors,
    /// Failed `leave` calls after a pairing (it still counts as completed).
    pub cleanup_errors: Errors,
    pub warmup_completed: u64,
    pub warmup_errors: u64,
    pub bound: Bound,
    /// Store work per completed pairing in the measured phase.
    pub store_cost: StoreCost,
    /// CPU milliseconds per completed pairing in the measured phase, by `--cpu-pid` name.
    pub cpu_ms_per_pairing: BTreeMap<String, f64>,
    /// `(pairings/s × HTTP requests per pairing) ÷ healthz requests/s`: the share of the
    /// server's bare request rate that the flow achieves.
    pub efficiency: Option<f64>,
}

/// Latency percentiles of a pairing's steps.
#[derive(Debug, Clone, Serialize)]
pub struct PairingLatency {
    /// `POST /v1/connect`, host (→ invite, one IM lookup) and invitee (→ join) alike.
    pub connect: LatencySummary,
    /// `POST /v1/prompts/{id}/accept`, host (→ lobby) and invitee (→ active) alike.
    pub accept: LatencySummary,
    /// Sending the invitee's accept → the `active` session event on the host's stream.
    pub event_delivery: LatencySummary,
    /// The same steps by role, since they do different work.
    pub by_role: RoleLatency,
}

/// Connect and accept latency, host and invitee apart.
#[derive(Debug, Clone, Serialize)]
pub struct RoleLatency {
    /// → invite prompt (asks the IM service).
    pub host_connect: LatencySummary,
    /// → waiting lobby.
    pub host_accept: LatencySummary,
    /// → join prompt.
    pub invitee_connect: LatencySummary,
    /// → active session (and the host's `session` event).
    pub invitee_accept: LatencySummary,
}

/// Plain round trips measured in the same run, with the same client and concurrency.
#[derive(Debug, Clone, Serialize)]
pub struct Bound {
    pub healthz: RoundTrips,
    pub redis_ping: Option<RoundTrips>,
}

#[derive(Default)]
struct Tally {
    connect: Latency,
    accept: Latency,
    delivery: Latency,
    /// Host connect, host accept, invitee connect, invitee accept.
    roles: [Latency; 4],
    errors: Errors,
    cleanup_errors: Errors,
    completed: u64,
    requests: u64,
}

impl Tally {
    fn record(&mut self, outcome: &pairing::Outcome) {
        for failure in &outcome.cleanup {
            self.cleanup_errors.record(failure);
        }
        match &outcome.result {
            Ok(done) => {
                self.completed += 1;
                self.requests += done.requests;
                let [host_connect, invitee_connect] = done.connects;
                let [host_accept, invitee_accept] = done.accepts;
                for (role, took) in [host_connect, host_accept, invitee_connect, invitee_accept]
                    .into_iter()
                    .enumerate()
                {
                    self.roles[role].record(took);
                }
                for took in done.connects {
                    self.connect.record(took);
                }
                for took in done.accepts {
                    self.accept.record(took);
                }
                self.delivery.record(done.delivery);
            }
            Err(failure) => self.errors.record(failure),
        }
    }
}

/// Runs the warm-up, the measured phase and the bound, and reports.
pub async fn run(options: &Options) -> anyhow::Result<PairingReport> {
    options.check()?;
    let api = Api::new(options, api::client(None, options.http2)?);
    let run_id = run_id();
    let next = Arc::new(AtomicU64::new(0));

    let redis = crate::store_cost::redis_clients(options)?;
    let warmup = phase(
        &api,
        &run_id,
        &next,
        options.concurrency,
        options.warmup,
        None,
    )
    .await;
    let before = Snapshot::take(&api, &redis).await;
    let cpu_before = CpuSnapshot::take(&options.cpu_pids);
    let start = Instant::now();
    let tally = phase(
        &api,
        &run_id,
        &next,
        options.concurrency,
        options.duration,
        options.pairings,
    )
    .await;
    let elapsed = start.elapsed().as_secs_f64();
    let cpu_ms_per_pairing =
        CpuSnapshot::take(&options.cpu_pids).per_pairing(&cpu_before, tally.completed);
    let store_cost = Snapshot::take(&api, &redis)
        .await
        .per_pairing(&before, tally.completed);

    let healthz = baseline::healthz(&api, options.concurrency, options.baseline).await;
    let redis_ping = match options.redis_urls().next() {
        Some(url) => Some(
            baseline::redis_ping(url, options.concurrency, options.baseline, options.timeout)
                .await?,
        ),
        None => None,
    };

    let pairings_per_sec = baseline::rate(tally.completed, elapsed);
    let http_requests_per_pairing = if tally.completed == 0 {
        0.0
    } else {
        tally.requests as f64 / tally.completed as f64
    };
    let efficiency = (healthz.per_sec > 0.0)
        .then(|| pairings_per_sec * http_requests_per_pairing / healthz.per_sec);
    Ok(PairingReport {
        run_id,
        game_url: options.game_url.clone(),
        im_url: options.im_url.clone(),
        concurrency: options.concurrency,
        warmup_secs: options.warmup.as_secs_f64(),
        duration_secs: options.duration.as_secs_f64(),
        elapsed_secs: elapsed,
        completed: tally.completed,
        pairings_per_sec,
        http_requests_per_pairing,
        latency: PairingLatency {
            connect: tally.connect.summary(),
            accept: tally.accept.summary(),
            event_delivery: tally.delivery.summary(),
            by_role: RoleLatency {
                host_connect: tally.roles[0].summary(),
                host_accept: tally.roles[1].summary(),
                invitee_connect: tally.roles[2].summary(),
                invitee_accept: tally.roles[3].summary(),
            },
        },
        errors: tally.errors,
        cleanup_errors: tally.cleanup_errors,
        warmup_completed: warmup.completed,
        warmup_errors: warmup.errors.total,
        bound: Bound {
            healthz,
            redis_ping,
        },
        store_cost,
        cpu_ms_per_pairing,
        efficiency,
    })
}

/// `concurrency` workers starting pairings until `duration` has passed, or until `count`
/// have been started (then however long they take); each finishes the pairing it is in.
async fn phase(
    api: &Api,
    run_id: &str,
    next: &Arc<AtomicU64>,
    concurrency: usize,
    duration: Duration,
    count: Option<u64>,
) -> Tally {
    if count.map_or(duration.is_zero(), |n| n == 0) {
        return Tally::default();
    }
    let tally = Arc::new(Mutex::new(Tally::default()));
    let until = count.is_none().then(|| Instant::now() + duration);
    let started = Arc::new(AtomicU64::new(0));
    let workers = (0..concurrency).map(|_| {
        let (api, next, tally) = (api.clone(), Arc::clone(next), Arc::clone(&tally));
        let started = Arc::clone(&started);
        let prefix = format!("lg{run_id}-");
        let more = move || match (until, count) {
            (Some(until), _) => Instant::now() < until,
            (None, Some(count)) => started.fetch_add(1, Ordering::Relaxed) < count,
            (None, None) => false,
        };
        tokio::spawn(async move {
            while more() {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let outcome =
                    pairing::play(&api, format!("{prefix}{n}a"), format!("{prefix}{n}b")).await;
                tally
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .record(&outcome);
                if outcome.result.is_err() {
                    tokio::time::sleep(ERROR_PAUSE).await;
                }
            }
        })
    });
    futures_util::future::join_all(workers).await;
    let mut tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
    std::mem::take(&mut *tally)
}

/// Milliseconds since the epoch in hex: unique per run, short enough for user ids.
pub(crate) fn run_id() -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    format!("{millis:x}")
}
