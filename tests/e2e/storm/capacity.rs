//! After the storm: what Redis holds keeps the modes (sizes, configured modes, each lobby of its invite's mode, each join prompt of its lobby's), and the `full` outcomes counted.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::{
    modes::{DEFAULT_MODE, max_players, prompt_problem, session_problem},
    players::GroupReport,
};
use crate::helpers::invariants::{Records, fail_if_any, ids_of, text};

/// What the store says about modes and `full`, for the report.
#[derive(Debug, Default)]
pub(super) struct Tally {
    /// Sessions stored, per mode.
    pub(super) sessions_by_mode: BTreeMap<String, usize>,
    /// Sessions stored holding as many players as their mode allows, per mode.
    pub(super) at_cap_by_mode: BTreeMap<String, usize>,
    /// Lobbies whose mode was compared with the invite prompt they came from.
    pub(super) lobbies_matched: usize,
    /// Join prompts whose mode was compared with their lobby's.
    pub(super) joins_matched: usize,
    /// Solo sessions that were never a lobby, all of the default mode.
    pub(super) solo_default: usize,
    /// Lobbies turned solo (everyone declined), of their invite's mode.
    pub(super) lobbies_turned_solo: usize,
    /// Prompts the records remember as cancelled `full` (the newest answers of each player).
    pub(super) cancelled_full: usize,
    /// Players holding nothing whose records remember a prompt cancelled `full`.
    pub(super) nothing_after_full: usize,
}

/// How many of `record`'s remembered answers are a cancellation for `reason`.
pub(super) fn cancelled(record: &serde_json::Value, reason: &str) -> usize {
    record
        .get("answered")
        .and_then(|a| a.as_array())
        .map_or(0, |answers| {
            answers
                .iter()
                .filter(|a| {
                    a.get("answer")
                        .and_then(|x| x.get("cancelled"))
                        .and_then(|r| r.as_str())
                        == Some(reason)
                })
                .count()
        })
}

/// Every stored session and prompt keeps the mode rules; every lobby the storm saw opened is
/// stored with its invite's mode, and every stored multiplayer session is one of those.
pub(super) fn check_stored_modes(records: &Records, report: &GroupReport) -> anyhow::Result<Tally> {
    let mut tally = Tally::default();
    let mut violations = Vec::new();
    for (id, session) in &records.sessions {
        let (kind, mode) = (text(session, "kind"), text(session, "mode"));
        let players = ids_of(session, "players").len();
        let pending = session
            .get("pending")
            .and_then(|p| p.as_array())
            .map_or(0, Vec::len);
        *tally.sessions_by_mode.entry(mode.to_owned()).or_default() += 1;
        if max_players(mode) == Some(players) {
            *tally.at_cap_by_mode.entry(mode.to_owned()).or_default() += 1;
        }
        if let Some(problem) = session_problem(kind == "solo", mode, players, pending) {
            violations.push(format!(
                "stored session {id} ({kind}): {problem}: {session}"
            ));
        }
        let seen_opened = Uuid::parse_str(id)
            .ok()
            .and_then(|uuid| report.lobbies.get(&uuid));
        match (kind, seen_opened) {
            ("multiplayer", None) => violations.push(format!(
                "stored multiplayer session {id} was never answered to an accepted invite \
                 prompt as its host's lobby: {session}"
            )),
            ("solo", Some(_)) => tally.lobbies_turned_solo += 1,
            ("solo", None) if mode == DEFAULT_MODE => tally.solo_default += 1,
            ("solo", None) => violations.push(format!(
                "stored solo session {id} was never a lobby but has mode {mode:?}, not the \
                 default {DEFAULT_MODE}: {session}"
            )),
            _ => {}
        }
    }
    for (lobby, invite_mode) in &report.lobbies {
        match records.sessions.get(&lobby.to_string()) {
            None => violations.push(format!("lobby {lobby} ({invite_mode}) is not stored")),
            Some(stored) if text(stored, "mode") != invite_mode => violations.push(format!(
                "lobby {lobby} came from a {invite_mode} invite prompt but is stored as {:?}: \
                 {stored}",
                text(stored, "mode")
            )),
            Some(_) => tally.lobbies_matched += 1,
        }
    }
    for (lobby, join_mode) in &report.join_modes {
        match report.lobbies.get(lobby) {
            None => violations.push(format!(
                "a {join_mode} join prompt led to lobby {lobby}, which no accepted invite opened"
            )),
            Some(mode) if mode != join_mode => violations.push(format!(
                "a join prompt for lobby {lobby} ({mode}) had mode {join_mode}"
            )),
            Some(_) => tally.joins_matched += 1,
        }
    }
    for (player, record) in &records.players {
        if let Some(prompt) = record.get("prompt").filter(|p| !p.is_null()) {
            let mode = text(prompt, "mode");
            if let Some(problem) = prompt_problem(mode) {
                violations.push(format!("{player}'s stored prompt: {problem}: {prompt}"));
            }
            let lobby = prompt.get("lobby").filter(|l| !l.is_null());
            if let Some(stored) = lobby.and_then(|l| records.sessions.get(text(l, "id")))
                && text(stored, "mode") != mode
            {
                violations.push(format!(
                    "{player}'s stored join prompt has mode {mode:?}, its lobby {:?}: {prompt}",
                    text(stored, "mode")
                ));
            }
        }
        let full = cancelled(record, "full");
        tally.cancelled_full += full;
        let nothing =
            records.player_prompt(player).is_none() && records.player_session(player).is_none();
        if nothing && full > 0 {
            tally.nothing_after_full += 1;
        }
    }
    fail_if_any(
        "the stored sessions and prompts break the modes",
        &violations,
    )?;
    Ok(tally)
}
