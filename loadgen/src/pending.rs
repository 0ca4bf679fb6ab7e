//! Pending-invitations mode (`--pending N`): N waiting lobbies whose invitee never answers, and what they leave in Redis until their invitations expire.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Instant,
};

use futures_util::{StreamExt, stream};
use serde::Serialize;
use shared_types::game::{PromptKind, SessionState};

use crate::{
    api::{self, Api},
    failure::Failure,
    options::Options,
    pairing::{chatting, open_prompt, session_in},
    pairings::run_id,
    stats::Errors,
    store_cost::Snapshot,
};

#[derive(Debug, Clone, Serialize)]
pub struct PendingReport {
    pub run_id: String,
    pub requested: u64,
    /// Lobbies left waiting, each with one invitation pending.
    pub opened: u64,
    pub errors: Errors,
    pub open_secs: f64,
    pub opened_per_sec: f64,
    /// Growth of Redis's `used_memory` per lobby opened: the host's and the invitee's
    /// records, events and chat, the lobby and its pending invitation with its expiry job.
    pub redis_memory_bytes_per_lobby: Option<f64>,
}

/// Opens `n` lobbies, `--concurrency` at a time: the two chat, the host connects and accepts
/// the invite; the invitee never connects, so each lobby waits on one pending invitation.
pub async fn run(options: &Options, n: u64) -> anyhow::Result<PendingReport> {
    options.check()?;
    let api = Api::new(options, api::client(None, options.http2)?);
    let redis = crate::store_cost::redis_clients(options)?;
    let run_id = run_id();
    let before = Snapshot::take(&api, &redis).await;
    let started = Instant::now();
    let opened = AtomicU64::new(0);
    let failures: Vec<Failure> = stream::iter(0..n)
        .map(|k| {
            let (api, run_id, opened) = (&api, &run_id, &opened);
            async move {
                let done =
                    open_lobby(api, format!("lq{run_id}-{k}a"), format!("lq{run_id}-{k}b")).await;
                if done.is_ok() {
                    opened.fetch_add(1, Ordering::Relaxed);
                }
                done.err()
            }
        })
        .buffer_unordered(options.concurrency)
        .filter_map(|failure| async move { failure })
        .collect()
        .await;
    let open_secs = started.elapsed().as_secs_f64();
    let opened = opened.load(Ordering::Relaxed);
    let cost = Snapshot::take(&api, &redis)
        .await
        .per_pairing(&before, opened);
    let mut errors = Errors::default();
    for failure in &failures {
        errors.record(failure);
    }
    Ok(PendingReport {
        run_id,
        requested: n,
        opened,
        errors,
        open_secs,
        opened_per_sec: crate::baseline::rate(opened, open_secs),
        redis_memory_bytes_per_lobby: cost.redis_memory_bytes,
    })
}

async fn open_lobby(api: &Api, host: String, guest: String) -> Result<(), Failure> {
    let (host, guest) = (api.player(host)?, api.player(guest)?);
    chatting(api, &host, &guest).await?;
    let invite = open_prompt(api.connect(&host).await?, PromptKind::Invite, "connect")?;
    let lobby = session_in(api.accept(&host, invite.id).await?, "accept")?;
    if lobby.state != SessionState::Waiting {
        return Err(Failure::protocol(
            "accept",
            format!("the host's lobby is {:?}, not waiting", lobby.state),
        ));
    }
    Ok(())
}
