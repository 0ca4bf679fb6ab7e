//! After the storm: Redis and `/v1/me` on both replicas agree, and every player is in one well-defined place (nowhere only after leaving, losing a join prompt, or a flip).

use std::collections::HashSet;

use anyhow::ensure;
use futures_util::{StreamExt, stream};
use reqwest::Method;
use shared_types::game::{PlayerState, SessionState};

use super::{
    CONCURRENT_GROUPS,
    capacity::cancelled,
    players::{GroupReport, Member, Stats},
    requests::{brief, send, state_of},
};
use crate::helpers::{
    TestWorld, essence,
    invariants::{Records, check_store, fail_if_any, ids_of, text},
};

/// Redis and `/v1/me` agree, and every player is in exactly one well-defined place; returns
/// the records and everyone's state for further checks.
pub(super) async fn check_store_and_states(
    world: &TestWorld,
    members: &[&Member],
    report: &GroupReport,
    stats: &Stats,
) -> anyhow::Result<(Records, Vec<PlayerState>)> {
    let records = check_store(world).await?;
    eprintln!("storm: keys in Redis: {:?}", records.families);
    ensure!(
        records.players.len() == members.len(),
        "expected a player record per player ({}), found {}",
        members.len(),
        records.players.len()
    );

    // Every player's state, through both replicas: the same, and what the records say.
    let ended_hosts: HashSet<&str> = records
        .sessions
        .values()
        .filter(|s| text(s, "state") == "ended")
        .map(|s| text(s, "host"))
        .collect();
    let mut violations = Vec::new();
    let read: Vec<anyhow::Result<(PlayerState, Option<String>)>> = stream::iter(members)
        .map(|member| async {
            let via_primary = state_of(
                send(&member.primary, Method::GET, "/v1/me", None, stats).await?,
                member.id(),
            )?;
            let via_other = state_of(
                send(&member.other, Method::GET, "/v1/me", None, stats).await?,
                member.id(),
            )?;
            if essence(&via_primary) != essence(&via_other) {
                let problem = format!(
                    "the replicas disagree on {}: {} / {}",
                    member.id(),
                    brief(&via_primary),
                    brief(&via_other)
                );
                return Ok((via_primary, Some(problem)));
            }
            let problem = placement_problem(&via_primary, &records, report, &ended_hosts);
            Ok((via_primary, problem))
        })
        .buffer_unordered(CONCURRENT_GROUPS)
        .collect()
        .await;
    let mut states = Vec::new();
    for state in read {
        let (state, problem) = state?;
        violations.extend(problem);
        states.push(state);
    }
    fail_if_any("players are not in one well-defined place", &violations)?;
    Ok((records, states))
}

/// Why a player's `/v1/me` is not one well-defined place matching the records, if it is not.
fn placement_problem(
    state: &PlayerState,
    records: &Records,
    report: &GroupReport,
    ended_hosts: &HashSet<&str>,
) -> Option<String> {
    let id = state.player_id.as_str();
    let Some(record) = records.players.get(id) else {
        return Some(format!("{id} has no stored record"));
    };
    let stored_prompt = records.player_prompt(id);
    let stored_session = records.player_session(id);
    let prompt = state.prompt.as_ref().map(|p| p.id.to_string());
    let session = state.session.as_ref().map(|s| s.id.to_string());
    if prompt != stored_prompt || session != stored_session {
        return Some(format!(
            "{id}: /v1/me shows prompt {prompt:?} session {session:?}, the record {stored_prompt:?} {stored_session:?}"
        ));
    }
    match (&state.prompt, &state.session) {
        (Some(_), Some(_)) => Some(format!("{id} is in two places: {}", brief(state))),
        (Some(_), None) => None,
        (None, Some(s)) => {
            let stored = records.sessions.get(&s.id.to_string())?;
            let mut stored_players = ids_of(stored, "players");
            stored_players.sort_unstable();
            let mut players: Vec<String> =
                s.players.iter().map(|p| p.as_str().to_owned()).collect();
            players.sort_unstable();
            let kind = serde_json::to_value(s.kind).ok();
            let phase = serde_json::to_value(s.state).ok();
            let agrees = s.state != SessionState::Ended
                && players == stored_players
                && s.mode == text(stored, "mode")
                && kind.as_ref().and_then(|k| k.as_str()) == Some(text(stored, "kind"))
                && phase.as_ref().and_then(|k| k.as_str()) == Some(text(stored, "state"));
            (!agrees).then(|| {
                format!(
                    "{id}: /v1/me shows {} but the session record is {stored}",
                    brief(state)
                )
            })
        }
        (None, None) => {
            // Nowhere: only after leaving, or when a join prompt was withdrawn (its lobby
            // ended) or closed `full` (its lobby filled); or, for a player who went offline,
            // when their flip cancelled their prompt or ended the lobby they hosted.
            let withdrawn = cancelled(record, "withdrawn") > 0;
            let full = cancelled(record, "full") > 0;
            let left = report.left.contains(id);
            let flipped = report.flips.contains_key(id)
                && (cancelled(record, "unavailable") > 0 || ended_hosts.contains(id));
            (!left && !withdrawn && !full && !flipped).then(|| {
                format!(
                    "{id} is nowhere but never left a session nor lost a join prompt \
                     (withdrawn or full) nor went offline: {record}"
                )
            })
        }
    }
}
