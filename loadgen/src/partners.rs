//! Partners-query scale mode (`--partners-scale N,…`): what one `GET /v1/users/{id}/partners` costs as the user's conversations grow.

use std::{collections::BTreeMap, time::Instant};

use anyhow::ensure;
use futures_util::{StreamExt, stream};
use serde::Serialize;

use crate::{
    api::{self, Api},
    options::Options,
    pairings::run_id,
    process_cpu::CpuSnapshot,
    stats::{Latency, LatencySummary},
    store_cost::{Snapshot, StoreCost},
};

/// The IM service's default `IM_MAX_OPEN_CONVERSATIONS`: a user holds at most this many.
pub const MAX_CONVERSATIONS: usize = 100;

/// One user with `conversations` open conversations, each with a partner who answered.
#[derive(Debug, Clone, Serialize)]
pub struct PartnersRow {
    pub conversations: usize,
    /// Partners the last call answered (at most the IM service's default limit).
    pub partners: usize,
    pub calls: u64,
    pub latency: LatencySummary,
    /// Store work per call (`game_*` fields stay empty: only the IM service is asked).
    pub store_cost: StoreCost,
    /// CPU milliseconds per call, by `--cpu-pid` name.
    pub cpu_ms_per_call: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PartnersReport {
    pub run_id: String,
    pub rows: Vec<PartnersRow>,
}

/// For each size: a fresh user and that many partners (each conversation opened by the user,
/// both posting), then `--pairings` calls (default 200) one after another.
pub async fn run(options: &Options, sizes: &[usize]) -> anyhow::Result<PartnersReport> {
    options.check()?;
    let api = Api::new(options, api::client(None, options.http2)?);
    let redis = crate::store_cost::redis_clients(options)?;
    let run_id = run_id();
    let calls = options.pairings.unwrap_or(200);
    let game = api.service("loadgen-game")?;
    let mut rows = Vec::new();
    for &size in sizes {
        let user = api.player(format!("lp{run_id}-{size}"))?;
        api.set_available(&user).await?;
        let partners = (0..size)
            .map(|i| api.player(format!("lp{run_id}-{size}-{i}")))
            .collect::<Result<Vec<_>, _>>()?;
        let opened: Vec<anyhow::Result<()>> = stream::iter(&partners)
            .map(|partner| {
                let (api, user) = (&api, &user);
                async move {
                    api.set_available(partner).await?;
                    let conversation = api.open_conversation(user, partner).await?;
                    api.post_message(user, conversation).await?;
                    api.post_message(partner, conversation).await?;
                    Ok(())
                }
            })
            .buffer_unordered(options.concurrency)
            .collect()
            .await;
        opened.into_iter().collect::<anyhow::Result<()>>()?;

        let before = Snapshot::take(&api, &redis).await;
        let cpu_before = CpuSnapshot::take(&options.cpu_pids);
        let mut latency = Latency::default();
        let mut answered = 0;
        for _ in 0..calls {
            let started = Instant::now();
            answered = api.partners(&game, &user.id).await?;
            latency.record(started.elapsed());
        }
        let cpu_ms_per_call = CpuSnapshot::take(&options.cpu_pids).per_pairing(&cpu_before, calls);
        let store_cost = Snapshot::take(&api, &redis)
            .await
            .per_pairing(&before, calls);
        ensure!(
            size == 0 || answered > 0,
            "a user with {size} partners got none back"
        );
        rows.push(PartnersRow {
            conversations: size,
            partners: answered,
            calls,
            latency: latency.summary(),
            store_cost,
            cpu_ms_per_call,
        });
    }
    Ok(PartnersReport { run_id, rows })
}
