//! Turns a transition's changes into calls of `commit.lua`, grouped by slot, and makes those calls.
//!
//! Standalone Redis: one group, one atomic call. Redis Cluster: one group per
//! hash tag, applied by the two-phase protocol in `mod.rs`; each group then
//! also carries its "applied" marker and, for a locked player's slot, the
//! intent to clear, so that applying a group twice is harmless. The groups
//! that clear an intent come last: while any group is left to apply, some
//! slot still holds the intent and the plan that recovery applies it from.

use std::{collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize};
use shared_types::{UserId, game::SessionState};

use super::{
    intents::Listing,
    keys::{Key, Keys},
    replies::{corrupt, from_redis},
};
use crate::{
    domain::tx::Changes,
    store::{EVENTS_KEPT, Retention, StoreError, StoreResult},
};

/// Intents and applied markers must outlive any wait before recovery finds
/// them: a player may come back hours later.
pub const INTENT_TTL: Duration = Duration::from_secs(24 * 3600);

impl super::RedisStore {
    /// One call of `commit.lua`: `group`'s writes, fenced on `token`.
    pub(super) async fn apply(&self, group: &Group, token: &str) -> StoreResult<()> {
        let mut invocation = self.scripts.commit.prepare_invoke();
        for key in &group.keys {
            invocation.key(key);
        }
        invocation
            .arg(token)
            .arg(serde_json::to_string(&group.plan).map_err(|e| corrupt(e, "a plan"))?)
            .invoke_async::<i64>(&mut self.conn())
            .await
            .map_err(from_redis)?;
        Ok(())
    }
}

pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One call of `commit.lua`: keys of a single slot (or all keys, standalone).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Group {
    pub keys: Vec<String>,
    pub plan: Plan,
}

/// What `commit.lua` does, as the JSON it decodes (numbers index the group's
/// keys, 1-based); see the script for each field. Typed rather than a
/// `serde_json::Value` tree: building that tree was ~5 % of the game
/// service's CPU under load.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub fences: Vec<usize>,
    /// (key, value, ttl ms, never shorten the key's current lifetime)
    pub sets: Vec<(usize, String, u64, bool)>,
    /// (key, ttl ms): an existing key lives at least this long from now
    pub extend: Vec<(usize, u64)>,
    /// (key, player, event JSON)
    pub events: Vec<(usize, String, String)>,
    /// (key, due ms, job JSON)
    pub jobs: Vec<(usize, i64, String)>,
    pub unlock: Vec<usize>,
    pub marker: usize,
    pub intent: Vec<usize>,
    pub tx: String,
    pub channel: String,
    pub maxlen: usize,
    pub events_ttl: u64,
    pub jobs_ttl: u64,
    pub marker_ttl: u64,
}

/// What a two-phase commit leaves in each locked player's slot for recovery.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TwoPhasePlan {
    pub tx: String,
    pub players: Vec<UserId>,
    pub groups: Vec<Group>,
    /// Where the transaction is listed for the sweep (none in plans written
    /// before there was a listing).
    #[serde(default)]
    pub listing: Option<Listing>,
}

#[derive(Default)]
struct Builder {
    keys: Vec<String>,
    fences: Vec<usize>,
    sets: Vec<(usize, String, u64, bool)>,
    extend: Vec<(usize, u64)>,
    events: Vec<(usize, String, String)>,
    jobs: Vec<(usize, i64, String)>,
    unlock: Vec<usize>,
    marker: usize,
    intent: Vec<usize>,
}

impl Builder {
    fn index(&mut self, key: &Key) -> usize {
        if let Some(i) = self.keys.iter().position(|k| *k == key.name) {
            return i + 1;
        }
        self.keys.push(key.name.clone());
        self.keys.len()
    }

    /// Keeps one extension per key, the longest, and none for a key this
    /// group sets for at least as long anyway.
    fn prune_extensions(&mut self) {
        let mut longest: BTreeMap<usize, u64> = BTreeMap::new();
        for &(key, ttl) in &self.extend {
            let entry = longest.entry(key).or_default();
            *entry = (*entry).max(ttl);
        }
        let sets = &self.sets;
        longest.retain(|key, ttl| !sets.iter().any(|s| s.0 == *key && s.2 >= *ttl));
        self.extend = longest.into_iter().collect();
    }
}

fn encode<T: Serialize>(value: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Corrupt(anyhow::Error::new(e).context(format!("encoding {what}"))))
}

/// Groups the writes of a transition. `two_phase` is the transaction id when
/// the groups are to be applied one slot at a time; `None` yields one group.
///
/// Lifetimes are coupled here, in the same atomic step as the writes: what a
/// written player record points at lives at least as long as the record, the
/// records of a live session's players at least as long as the session, and
/// writing a session never shortens its lifetime (see [`Retention`]).
pub fn groups(
    keys: &Keys,
    retention: &Retention,
    locked: &[UserId],
    changes: &Changes,
    two_phase: Option<&str>,
) -> Result<Vec<Group>, StoreError> {
    let mut by_slot: BTreeMap<String, Builder> = BTreeMap::new();
    let slot_of = |key: &Key| {
        if two_phase.is_some() {
            key.tag.clone()
        } else {
            String::new()
        }
    };
    macro_rules! builder {
        ($key:expr) => {
            by_slot.entry(slot_of($key)).or_default()
        };
    }
    for player in locked {
        let lock = keys.lock(player);
        let b = builder!(&lock);
        let i = b.index(&lock);
        b.fences.push(i);
        b.unlock.push(i);
        if two_phase.is_some() {
            b.intent = vec![
                b.index(&keys.intent(player)),
                b.index(&keys.intent_plan(player)),
            ];
        }
    }
    let record_ttl = millis(retention.record_ttl);
    macro_rules! extend {
        ($key:expr, $ttl:expr) => {{
            let key = $key;
            let b = builder!(&key);
            let i = b.index(&key);
            b.extend.push((i, $ttl));
        }};
    }
    for (player, record) in &changes.players {
        let key = keys.player(player);
        let value = encode(record, "a player record")?;
        let b = builder!(&key);
        let i = b.index(&key);
        b.sets.push((i, value, record_ttl, false));
        for at in record.points_at() {
            extend!(keys.session(&at.host, at.id), record_ttl);
            extend!(keys.session_host(at.id), record_ttl);
        }
    }
    for session in &changes.sessions {
        let ended = session.state == SessionState::Ended;
        let ttl = millis(if ended {
            retention.ended_session_ttl
        } else {
            retention.record_ttl
        });
        let value = encode(session, "a session")?;
        let key = keys.session(&session.host, session.id);
        let b = builder!(&key);
        let i = b.index(&key);
        b.sets.push((i, value, ttl, true));
        let key = keys.session_host(session.id);
        let b = builder!(&key);
        let i = b.index(&key);
        b.sets
            .push((i, session.host.as_str().to_owned(), ttl, true));
        if !ended {
            for member in session.members() {
                extend!(keys.player(member), ttl);
            }
        }
    }
    for (player, event) in &changes.events {
        let key = keys.events(player);
        let value = encode(event, "an event")?;
        let b = builder!(&key);
        let i = b.index(&key);
        b.events.push((i, player.as_str().to_owned(), value));
    }
    for scheduled in &changes.jobs {
        let key = keys.jobs_for(&scheduled.job);
        let member = encode(&scheduled.job, "a job")?;
        let b = builder!(&key);
        let i = b.index(&key);
        b.jobs.push((i, scheduled.due.timestamp_millis(), member));
    }
    let mut groups: Vec<Group> = by_slot
        .into_iter()
        .map(|(tag, mut b)| {
            b.prune_extensions();
            if let Some(tx) = two_phase {
                b.marker = b.index(&keys.applied(&tag, tx));
            }
            Group {
                plan: Plan {
                    fences: b.fences,
                    sets: b.sets,
                    extend: b.extend,
                    events: b.events,
                    jobs: b.jobs,
                    unlock: b.unlock,
                    marker: b.marker,
                    intent: b.intent,
                    tx: two_phase.unwrap_or_default().to_owned(),
                    channel: keys.channel(),
                    maxlen: EVENTS_KEPT,
                    events_ttl: millis(retention.events_ttl),
                    jobs_ttl: millis(retention.jobs_ttl),
                    marker_ttl: millis(INTENT_TTL),
                },
                keys: b.keys,
            }
        })
        .collect();
    // Stable: the slots of locked players (each clears its intent) after the others.
    groups.sort_by_key(|group| !group.plan.intent.is_empty());
    Ok(groups)
}
