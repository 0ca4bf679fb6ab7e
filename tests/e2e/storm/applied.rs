//! After the storm, the IM service's presence feed against the game's records: every flip applied (a flipped player's record keeps the `seq` of their last offline change, or a later one's), nobody else's presence changed anything, `unavailable` closed only flipped players' prompts, and only a flipped host's lobby ended without its host leaving.

use std::collections::{HashMap, HashSet};

use anyhow::ensure;
use reqwest::Method;
use shared_types::activity::PresenceChanges;

use super::{capacity::cancelled, players::GroupReport};
use crate::helpers::{
    Service, TestWorld,
    invariants::{Records, fail_if_any, text},
};

/// Changes read per call of the feed (its most).
const FEED_PAGE: usize = 1000;
/// Calls before giving up on reaching the feed's end.
const FEED_PAGES: usize = 100;

/// What the records say the flips did, for the report.
#[derive(Debug, Default)]
pub(super) struct FlipTally {
    /// Prompts the records remember as cancelled `unavailable`.
    pub(super) cancelled_unavailable: usize,
    /// Lobbies that ended while their host never left: a flipped host's waiting lobby.
    pub(super) lobbies_ended_offline: usize,
    /// Flipped players whose record has applied their last offline change.
    pub(super) applied: usize,
}

/// Every change in the feed, per user: `(seq, status)`, in order.
pub(super) async fn read_feed(
    world: &TestWorld,
) -> anyhow::Result<HashMap<String, Vec<(u64, String)>>> {
    let auth = format!("Bearer {}", world.service_token()?);
    let mut changes: HashMap<String, Vec<(u64, String)>> = HashMap::new();
    let mut after: Option<String> = None;
    for _ in 0..FEED_PAGES {
        let path = match &after {
            Some(cursor) => format!("/v1/presence/changes?limit={FEED_PAGE}&after={cursor}"),
            None => format!("/v1/presence/changes?limit={FEED_PAGE}"),
        };
        let page: PresenceChanges = world
            .raw(Service::Im, Method::GET, &path, Some(auth.as_str()), None)
            .await?
            .ok()?
            .json()?;
        if page.changes.is_empty() {
            return Ok(changes);
        }
        for change in page.changes {
            changes
                .entry(change.user_id.as_str().to_owned())
                .or_default()
                .push((change.seq, change.status.as_str().to_owned()));
        }
        after = Some(page.next);
    }
    anyhow::bail!("the presence feed did not end within {FEED_PAGES} pages of {FEED_PAGE}")
}

/// The flips as the records and the feed tell them (see the module's doc).
pub(super) fn check_flip_records(
    records: &Records,
    report: &GroupReport,
    feed: &HashMap<String, Vec<(u64, String)>>,
) -> anyhow::Result<FlipTally> {
    let mut tally = FlipTally::default();
    let mut violations = Vec::new();
    for (player, record) in &records.players {
        let flip = report.flips.get(player);
        let unavailable = cancelled(record, "unavailable");
        tally.cancelled_unavailable += unavailable;
        if flip.is_none() && unavailable > 0 {
            violations.push(format!(
                "{player} never went offline but a prompt of theirs was cancelled \
                 `unavailable`: {record}"
            ));
        }
        let applied = record
            .get("presence_seq")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or_default();
        let changes = feed.get(player).map(Vec::as_slice).unwrap_or_default();
        let last_offline = changes.iter().rev().find(|(_, s)| s == "offline");
        match (flip, changes.last()) {
            (Some(flip), Some((_, status))) => {
                // Their last offline change applied, or a later one (a game that records the
                // other statuses too); and the feed ends with the status they set last.
                let expected = if flip.offline_at_end {
                    "offline"
                } else {
                    "available"
                };
                let known = changes.iter().any(|(seq, _)| *seq == applied);
                let caught_up = last_offline.is_some_and(|(seq, _)| applied >= *seq);
                if !known || !caught_up || status != expected {
                    violations.push(format!(
                        "{player} flipped to {expected} last; the feed has {changes:?} and \
                         their record applied seq {applied}"
                    ));
                } else {
                    tally.applied += 1;
                }
            }
            (Some(_), None) => violations.push(format!("{player} flipped, but not in the feed")),
            // The storm's setup made everyone available once, maybe applied (when the player
            // had connected by then), never anything else.
            (None, _) => {
                let statuses: HashSet<&str> = changes.iter().map(|(_, s)| s.as_str()).collect();
                let known = applied == 0 || changes.iter().any(|(seq, _)| *seq == applied);
                if !known || statuses.iter().any(|s| *s != "available") {
                    violations.push(format!(
                        "{player} never flipped, yet the feed has {changes:?} and their record \
                         applied seq {applied}"
                    ));
                }
            }
        }
    }
    for (id, session) in &records.sessions {
        let host = text(session, "host");
        if text(session, "state") != "ended" || report.left.contains(host) {
            continue;
        }
        if report.flips.contains_key(host) {
            tally.lobbies_ended_offline += 1;
        } else {
            violations.push(format!(
                "session {id} ended though its host {host} never left nor went offline: \
                 {session}"
            ));
        }
    }
    fail_if_any(
        "the flips as the records and the feed tell them",
        &violations,
    )?;
    ensure!(
        tally.applied == report.flips.len(),
        "{} flipped players, {} with their last offline change applied",
        report.flips.len(),
        tally.applied
    );
    Ok(tally)
}
