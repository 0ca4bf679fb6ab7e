//! Connection scale: hold K event streams on one replica, push one event down each, read its RSS.

use std::{
    net::{IpAddr, Ipv4Addr},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use futures_util::{StreamExt, stream};
use serde::Serialize;
use shared_types::game::SessionKind;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::{
    api::{self, Api, Player},
    baseline::rate,
    failure::Failure,
    options::Options,
    pairings::run_id,
    sse::EventStream,
    stats::{Errors, Latency, LatencySummary},
};

/// Descriptors beyond the sockets: the runtime, stdio, Redis, the connect requests' sockets.
const SPARE_FDS: u64 = 1024;
/// Lets the server finish setting up the last streams before its memory is read.
const SETTLE: Duration = Duration::from_secs(1);

/// What a connection-scale run measured.
#[derive(Debug, Clone, Serialize)]
pub struct StreamsReport {
    /// Users were named `lg<run_id>-s<n>`.
    pub run_id: String,
    pub game_url: String,
    pub streams_requested: usize,
    pub streams_opened: u64,
    pub open_secs: f64,
    pub opened_per_sec: f64,
    /// The client's source addresses (each has its own ephemeral ports).
    pub source_addrs: Vec<String>,
    /// The file-descriptor soft limit after raising it.
    pub nofile_limit: Option<u64>,
    /// Connects (concurrency-limited) that each turned into a solo `session` event.
    pub delivered: u64,
    /// `POST /v1/connect` (nobody to talk to → solo session).
    pub connect: LatencySummary,
    /// Sending the connect → the `session` event on the player's held stream.
    pub event_delivery: LatencySummary,
    pub errors: Errors,
    pub cleanup_errors: Errors,
    pub game_rss: Option<Rss>,
}

/// The game service's resident memory, in KiB (`VmRSS`).
#[derive(Debug, Clone, Serialize)]
pub struct Rss {
    pub pid: u32,
    pub before_kib: Option<u64>,
    pub streams_held_kib: Option<u64>,
    pub after_events_kib: Option<u64>,
    /// (held − before) ÷ streams opened.
    pub per_stream_kib: Option<f64>,
    /// The game service's open file descriptors while the streams are held:
    /// about one per stream over HTTP/1.1, a handful over HTTP/2.
    pub open_fds_held: Option<u64>,
}

/// One held stream and whose it is.
struct Held {
    api: Api,
    player: Player,
    events: EventStream,
}

/// Opens the streams, measures memory, triggers one event per stream, leaves, reports.
pub async fn run(options: &Options, streams: usize) -> anyhow::Result<StreamsReport> {
    options.check()?;
    let wanted =
        u64::try_from(streams).unwrap_or(u64::MAX) + options.concurrency as u64 + SPARE_FDS;
    let nofile_limit = rlimit::increase_nofile_limit(wanted).ok();
    let sources = source_addrs(options)?;
    let base = Api::new(options, api::client(None, options.http2)?);
    let apis = match &sources {
        None => vec![base],
        Some(addrs) => addrs
            .iter()
            .map(|addr| Ok(base.with_client(api::client(Some(*addr), options.http2)?)))
            .collect::<anyhow::Result<Vec<_>>>()?,
    };
    let run_id = run_id();
    let pid = options.game_pid;
    let before = pid.and_then(rss_kib);
    let mut errors = Errors::default();

    let start = Instant::now();
    let opened: Vec<Result<Held, Failure>> = stream::iter(0..streams)
        .map(|n| {
            let api = apis[n % apis.len()].clone();
            let id = format!("lg{run_id}-s{n}");
            async move {
                let player = api.player(id)?;
                let events = api.events(&player).await?;
                Ok(Held {
                    api,
                    player,
                    events,
                })
            }
        })
        .buffer_unordered(options.concurrency)
        .collect()
        .await;
    let open_secs = start.elapsed().as_secs_f64();
    let mut held = Vec::with_capacity(opened.len());
    for result in opened {
        match result {
            Ok(stream) => held.push(stream),
            Err(failure) => errors.record(&failure),
        }
    }
    let streams_opened = held.len() as u64;
    tokio::time::sleep(SETTLE).await;
    let streams_held = pid.and_then(rss_kib);
    let open_fds_held = pid.and_then(open_fds);

    let (held, connect, delivery, delivered) =
        trigger(held, options.concurrency, &mut errors).await;
    let after_events = pid.and_then(rss_kib);
    let cleanup_errors = leave_all(held, options.concurrency).await;

    Ok(StreamsReport {
        run_id,
        game_url: options.game_url.clone(),
        streams_requested: streams,
        streams_opened,
        open_secs,
        opened_per_sec: rate(streams_opened, open_secs),
        source_addrs: sources
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect(),
        nofile_limit,
        delivered,
        connect: connect.summary(),
        event_delivery: delivery.summary(),
        errors,
        cleanup_errors,
        game_rss: pid.map(|pid| Rss {
            pid,
            before_kib: before,
            streams_held_kib: streams_held,
            after_events_kib: after_events,
            per_stream_kib: before.zip(streams_held).and_then(|(before, held)| {
                (streams_opened > 0).then(|| (held as f64 - before as f64) / streams_opened as f64)
            }),
            open_fds_held,
        }),
    })
}

/// Each player connects (at most `concurrency` at once) while its stream waits for the solo
/// session; the streams stay held and come back with the session to leave.
async fn trigger(
    held: Vec<Held>,
    concurrency: usize,
    errors: &mut Errors,
) -> (Vec<(Held, Option<Uuid>)>, Latency, Latency, u64) {
    let gate = Arc::new(Semaphore::new(concurrency));
    let tasks: Vec<_> = held
        .into_iter()
        .map(|mut stream| {
            let gate = Arc::clone(&gate);
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await;
                let deadline = tokio::time::Instant::now() + stream.api.timeout();
                let sent = Instant::now();
                let connect = async {
                    let state = stream.api.connect(&stream.player).await;
                    (state, sent.elapsed())
                };
                let ((state, connected), event) =
                    tokio::join!(connect, stream.events.first_session(deadline));
                let result =
                    solo_delivery(state, event, sent).map(|(id, took)| (id, connected, took));
                (stream, result)
            })
        })
        .collect();
    let mut connect = Latency::default();
    let mut delivery = Latency::default();
    let mut delivered = 0;
    let mut back = Vec::new();
    for task in futures_util::future::join_all(tasks).await {
        let Ok((stream, result)) = task else {
            continue; // a task cannot panic: nothing in it unwraps
        };
        match result {
            Ok((session, connected, took)) => {
                connect.record(connected);
                delivery.record(took);
                delivered += 1;
                back.push((stream, Some(session)));
            }
            Err(failure) => {
                errors.record(&failure);
                back.push((stream, None));
            }
        }
    }
    (back, connect, delivery, delivered)
}

/// The session the connect answered with must be the solo one the stream announced.
fn solo_delivery(
    state: Result<shared_types::game::PlayerState, Failure>,
    event: Result<(shared_types::game::Session, Instant), Failure>,
    sent: Instant,
) -> Result<(Uuid, Duration), Failure> {
    let state = state?;
    let (session, arrived) = event?;
    let answered = state
        .session
        .ok_or_else(|| Failure::protocol("connect", "no session in the answer"))?;
    if answered.kind != SessionKind::Solo || answered.id != session.id {
        return Err(Failure::protocol(
            "connect",
            format!(
                "expected the solo session the stream announced ({}), got {:?} {}",
                session.id, answered.kind, answered.id
            ),
        ));
    }
    Ok((session.id, arrived.saturating_duration_since(sent)))
}

async fn leave_all(held: Vec<(Held, Option<Uuid>)>, concurrency: usize) -> Errors {
    let results: Vec<Result<(), Failure>> = stream::iter(held)
        .filter_map(|(stream, session)| async move { session.map(|id| (stream, id)) })
        .map(|(stream, session)| async move { stream.api.leave(&stream.player, session).await })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut errors = Errors::default();
    for failure in results.iter().filter_map(|r| r.as_ref().err()) {
        errors.record(failure);
    }
    errors
}

/// 127.0.0.1 … 127.0.0.N when the game service is on loopback; `None` (the OS picks) otherwise.
fn source_addrs(options: &Options) -> anyhow::Result<Option<Vec<IpAddr>>> {
    let url = reqwest::Url::parse(&options.game_url)
        .with_context(|| format!("game URL {:?}", options.game_url))?;
    let loopback = url.host_str().is_some_and(|host| {
        host == "localhost" || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
    });
    Ok(loopback.then(|| {
        (1..=options.source_addrs)
            .map(|last| IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
            .collect()
    }))
}

/// `VmRSS` of process `pid`, in KiB; `None` if it cannot be read.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

/// How many file descriptors a process has open (Linux `/proc`).
pub fn open_fds(pid: u32) -> Option<u64> {
    let entries = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(entries.count() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_rss_is_readable() {
        assert!(rss_kib(std::process::id()).is_some_and(|kib| kib > 0));
    }

    #[test]
    fn loopback_urls_get_spread_source_addresses() -> anyhow::Result<()> {
        let mut options = Options::new("http://127.0.0.1:8080", "http://127.0.0.1:8081", "s");
        options.source_addrs = 3;
        let addrs = source_addrs(&options)?.context("loopback")?;
        assert_eq!(addrs.len(), 3);
        assert_eq!(addrs[2], IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)));
        let remote = Options::new("http://game.example:8080", "http://127.0.0.1:8081", "s");
        assert!(source_addrs(&remote)?.is_none());
        Ok(())
    }
}
