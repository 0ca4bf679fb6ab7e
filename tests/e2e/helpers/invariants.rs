//! Invariants read straight from the store, after a scenario has settled: every key has a
//! TTL; no player is a player of two sessions that have not ended; every player's record
//! points to the live session that lists them (and never holds a prompt and a session at
//! once); no two-phase commit was left half-done.

use std::collections::{BTreeMap, HashMap};

use anyhow::{anyhow, ensure};

use super::{StoredKey, TestWorld};

/// Violations shown in a failure message.
const SHOWN: usize = 15;

/// The game service's records, read back from Redis.
pub struct Records {
    /// Player id → player record (JSON).
    pub players: HashMap<String, serde_json::Value>,
    /// Session id → session record (JSON).
    pub sessions: HashMap<String, serde_json::Value>,
    /// Keys per `type/family` (`string/player`, `stream/events`, …), for reports.
    pub families: BTreeMap<String, usize>,
}

impl Records {
    pub fn player_prompt(&self, player: &str) -> Option<String> {
        self.players
            .get(player)
            .and_then(|r| r.get("prompt"))
            .filter(|p| !p.is_null())
            .map(|p| text(p, "id").to_owned())
    }

    pub fn player_session(&self, player: &str) -> Option<String> {
        self.players
            .get(player)
            .and_then(|r| r.get("session"))
            .filter(|s| !s.is_null())
            .map(|s| text(s, "id").to_owned())
    }
}

/// Reads every key of the world and checks the store invariants; returns the records for
/// further checks.
pub async fn check_store(world: &TestWorld) -> anyhow::Result<Records> {
    let keys = world.stored_keys().await?;
    let game_prefix = world.game_key_prefix();
    let im_prefix = world.im_key_prefix();
    let mut violations = Vec::new();
    let mut families: BTreeMap<String, usize> = BTreeMap::new();
    for key in &keys {
        // `prefix:{tag}:family:…` → family (player, lock, events, session, host, due, …).
        let after_tag = key
            .name
            .rsplit_once("}:")
            .map_or(key.name.as_str(), |(_, rest)| rest);
        let family = after_tag.split(':').next().unwrap_or_default();
        *families
            .entry(format!("{}/{family}", key.kind))
            .or_default() += 1;
        if key.pttl_ms == -1 {
            violations.push(format!("{} ({}) has no TTL", key.name, key.kind));
        }
        if !key.name.starts_with(&game_prefix) && !key.name.starts_with(&im_prefix) {
            violations.push(format!("{} is outside both services' prefixes", key.name));
        }
        if family == "intent" || family == "intent-plan" {
            violations.push(format!(
                "{} is a two-phase commit left unfinished after everything settled",
                key.name
            ));
        }
    }
    fail_if_any("keys that break the store's rules", &violations)?;

    let records = records(&keys, &game_prefix, families)?;

    // At most one session that has not ended per player, and it is the one the player's
    // record points to.
    let mut live: HashMap<String, Vec<String>> = HashMap::new();
    for (id, session) in &records.sessions {
        if text(session, "state") == "ended" {
            continue;
        }
        for player in ids_of(session, "players") {
            live.entry(player).or_default().push(id.clone());
        }
    }
    for (player, sessions) in &live {
        if sessions.len() > 1 {
            violations.push(format!(
                "{player} is a player of {} sessions that have not ended: {sessions:?}",
                sessions.len()
            ));
        }
        let pointed = records.player_session(player);
        if pointed.as_deref() != sessions.first().map(String::as_str) {
            violations.push(format!(
                "{player} plays in live session(s) {sessions:?} but their record points to \
                 {pointed:?}"
            ));
        }
    }
    for (player, record) in &records.players {
        let prompt = records.player_prompt(player);
        let session = records.player_session(player);
        if prompt.is_some() && session.is_some() {
            violations.push(format!("{player} holds a prompt and a session: {record}"));
        }
        if let Some(id) = session {
            match records.sessions.get(&id) {
                None => violations.push(format!("{player}'s session {id} is not stored")),
                Some(stored) if text(stored, "state") == "ended" => {
                    violations.push(format!("{player} still points to ended session {id}"));
                }
                Some(stored) if !ids_of(stored, "players").contains(player) => {
                    violations.push(format!(
                        "{player} points to session {id} which lists {:?}",
                        ids_of(stored, "players")
                    ));
                }
                Some(_) => {}
            }
        }
    }
    fail_if_any(
        "the stored records break the one-prompt-one-session rule",
        &violations,
    )?;
    Ok(records)
}

fn records(
    keys: &[StoredKey],
    game_prefix: &str,
    families: BTreeMap<String, usize>,
) -> anyhow::Result<Records> {
    let mut players = HashMap::new();
    let mut sessions = HashMap::new();
    let player_tag = format!("{game_prefix}:{{p.");
    for key in keys.iter().filter(|k| k.kind == "string") {
        let Some(rest) = key.name.strip_prefix(&player_tag) else {
            continue;
        };
        let Some((player, tail)) = rest.split_once("}:") else {
            continue;
        };
        if tail == "player" {
            players.insert(player.to_owned(), key.json()?);
        } else if let Some(id) = tail.strip_prefix("session:") {
            sessions.insert(id.to_owned(), key.json()?);
        }
    }
    ensure!(
        !players.is_empty(),
        "no player records under {game_prefix}: has the key layout changed?"
    );
    Ok(Records {
        players,
        sessions,
        families,
    })
}

/// A string field of a JSON record ("" when missing).
pub fn text<'a>(value: &'a serde_json::Value, field: &str) -> &'a str {
    value
        .get(field)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
}

/// A list of ids in a JSON record.
pub fn ids_of(value: &serde_json::Value, field: &str) -> Vec<String> {
    value
        .get(field)
        .and_then(|v| v.as_array())
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Fails with the first few violations, if there are any.
pub fn fail_if_any(what: &str, violations: &[String]) -> anyhow::Result<()> {
    if violations.is_empty() {
        return Ok(());
    }
    let shown: Vec<&str> = violations.iter().take(SHOWN).map(String::as_str).collect();
    Err(anyhow!(
        "{what}: {} violation(s), the first {}:\n- {}",
        violations.len(),
        shown.len(),
        shown.join("\n- ")
    ))
}
