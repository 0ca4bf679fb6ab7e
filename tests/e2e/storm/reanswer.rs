//! After the storm: answered prompts answered again, the same way and the other way, change nothing.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, ensure};
use futures_util::{StreamExt, stream};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use reqwest::{Method, StatusCode};
use shared_types::problem::ProblemCode;
use uuid::Uuid;

use super::{
    CONCURRENT_GROUPS, REANSWER_SAMPLE,
    players::{Decision, GroupReport, Member, Stats},
    requests::{brief, send, state_of},
};
use crate::helpers::{essence, invariants::fail_if_any};

/// Decisions are final: a sample of answered prompts answered again the same way (200, state
/// unchanged) and the other way (409 `already_answered`, state unchanged).
pub(super) async fn check_answers_are_final(
    members: &[&Member],
    report: &GroupReport,
    rng: &mut StdRng,
    stats: &Stats,
) -> anyhow::Result<usize> {
    let by_id: HashMap<&str, &Member> = members.iter().map(|m| (m.id(), *m)).collect();
    let sample: Vec<&(String, Uuid, Decision)> = report
        .answers
        .choose_multiple(rng, REANSWER_SAMPLE.min(report.answers.len()))
        .collect();
    ensure!(
        sample.len() >= REANSWER_SAMPLE.min(50),
        "too few answered prompts to check: {}",
        sample.len()
    );
    // One task per player, so that a player's checks never overlap.
    let mut per_player: BTreeMap<&str, Vec<(Uuid, Decision)>> = BTreeMap::new();
    for (player, prompt, decision) in &sample {
        per_player
            .entry(player.as_str())
            .or_default()
            .push((*prompt, *decision));
    }
    let seeds: Vec<u64> = per_player.keys().map(|_| rng.random()).collect();
    let outcomes: Vec<anyhow::Result<()>> = stream::iter(per_player.into_iter().zip(seeds))
        .map(|((player, prompts), seed)| {
            let member = by_id.get(player).copied();
            async move {
                let member = member.with_context(|| format!("unknown player {player}"))?;
                let mut rng = StdRng::seed_from_u64(seed);
                for (prompt, decision) in prompts {
                    reanswer(member, prompt, decision, &mut rng, stats)
                        .await
                        .with_context(|| format!("{player} answering {prompt} again"))?;
                }
                Ok(())
            }
        })
        .buffer_unordered(CONCURRENT_GROUPS)
        .collect()
        .await;
    let failures: Vec<String> = outcomes
        .into_iter()
        .filter_map(|o| o.err().map(|e| format!("{e:#}")))
        .collect();
    fail_if_any("an answered prompt changed its answer", &failures)?;
    Ok(sample.len())
}

async fn reanswer(
    member: &Member,
    prompt: Uuid,
    decision: Decision,
    rng: &mut StdRng,
    stats: &Stats,
) -> anyhow::Result<()> {
    let verb = |d: Decision| match d {
        Decision::Accept => "accept",
        Decision::Reject => "reject",
    };
    let contrary = match decision {
        Decision::Accept => Decision::Reject,
        Decision::Reject => Decision::Accept,
    };
    let me = |rng: &mut StdRng| {
        let player = member.pick(rng).clone();
        async move {
            state_of(
                send(&player, Method::GET, "/v1/me", None, stats).await?,
                &player.id,
            )
        }
    };
    let before = me(rng).await?;
    let same = send(
        member.pick(rng),
        Method::POST,
        &format!("/v1/prompts/{prompt}/{}", verb(decision)),
        None,
        stats,
    )
    .await?;
    ensure!(
        same.status == StatusCode::OK,
        "the same answer ({}) again: {} {}",
        verb(decision),
        same.status,
        same.body
    );
    let other_way = send(
        member.pick(rng),
        Method::POST,
        &format!("/v1/prompts/{prompt}/{}", verb(contrary)),
        None,
        stats,
    )
    .await?;
    other_way
        .problem(409, ProblemCode::AlreadyAnswered)
        .with_context(|| {
            format!(
                "the contrary answer ({}) after {}",
                verb(contrary),
                verb(decision)
            )
        })?;
    let after = me(rng).await?;
    ensure!(
        essence(&before) == essence(&after),
        "answering again changed the state: {} → {}",
        brief(&before),
        brief(&after)
    );
    Ok(())
}
