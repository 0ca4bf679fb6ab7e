//! Load generator for the two services: the full two-player flow at fixed concurrency, the
//! bound it runs against (`GET /healthz`, Redis `PING`) in the same run, and a
//! connection-scale mode. `docs/PERFORMANCE.md` says how to run it and what it measured.
//!
//! # Layout
//! - [`options`]: the command line.
//! - [`api`]: the endpoints the flow calls, typed and bounded by a timeout.
//! - [`sse`]: a held event stream, each event stamped with its arrival.
//! - [`failure`]: why a step failed, by kind (HTTP status, timeout, transport, protocol).
//! - [`pairing`]: one pairing, from presence to both players seeing `active`.
//! - [`pairings`]: the pairings run (warm-up, measured phase, bound, efficiency).
//! - [`baseline`]: the bound: `GET /healthz` and Redis `PING` round trips.
//! - [`streams`]: the connection-scale mode (`--streams-only K`).
//! - [`partners`]: the partners-query scale mode (`--partners-scale N,…`).
//! - [`pending`]: waiting lobbies whose invitations stay pending (`--pending N`).
//! - [`store_cost`]: Redis round trips, commands and CPU per pairing.
//! - [`stats`]: latency histograms and error counts.
//! - [`report`]: the human summaries.

pub mod api;
pub mod baseline;
pub mod failure;
pub mod options;
pub mod pairing;
pub mod pairings;
pub mod partners;
pub mod pending;
pub mod process_cpu;
pub mod report;
pub mod sse;
pub mod stats;
pub mod store_cost;
pub mod streams;

use serde::Serialize;

pub use self::{options::Options, pairings::PairingReport, streams::StreamsReport};

/// What a run measured, by mode.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
#[expect(
    clippy::large_enum_variant,
    reason = "one report per run: boxing buys nothing"
)]
pub enum Report {
    Pairings(PairingReport),
    Streams(StreamsReport),
    Partners(partners::PartnersReport),
    Pending(pending::PendingReport),
}

impl Report {
    /// The short human summary.
    pub fn summary(&self) -> String {
        match self {
            Self::Pairings(report) => report::pairings_summary(report),
            Self::Streams(report) => report::streams_summary(report),
            Self::Partners(report) => report::partners_summary(report),
            Self::Pending(report) => report::pending_summary(report),
        }
    }
}

/// Runs the mode the options ask for.
pub async fn run(options: &Options) -> anyhow::Result<Report> {
    if let Some(n) = options.pending {
        return Ok(Report::Pending(pending::run(options, n).await?));
    }
    if let Some(sizes) = &options.partners_scale {
        return Ok(Report::Partners(partners::run(options, sizes).await?));
    }
    Ok(match options.streams_only {
        Some(streams) => Report::Streams(streams::run(options, streams).await?),
        None => Report::Pairings(pairings::run(options).await?),
    })
}
