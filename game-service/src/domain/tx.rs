//! One transition's working set: the locked players' records, the sessions they
//! host, and everything the transition will write (records, events, expiry jobs).
//!
//! A transition reads only what it has locked. When it needs more, it returns
//! [`TxError::Need`] and the runner retries with a larger lock set, so the set of
//! players a transition spans is discovered, not guessed.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use shared_types::{
    UserId,
    game::{GameEvent, SessionState},
};
use uuid::Uuid;

use super::records::{PlayerRecord, ScheduledJob, SessionRecord, SessionRef};

/// Why a transition stopped before finishing.
#[derive(Debug)]
pub enum TxError {
    /// Lock (and load) these too, then run the transition again.
    Need {
        players: BTreeSet<UserId>,
        sessions: BTreeSet<SessionRef>,
    },
}

/// The writes of one transition, applied atomically by the store.
#[derive(Debug, Default, Clone)]
pub struct Changes {
    pub players: Vec<(UserId, PlayerRecord)>,
    pub sessions: Vec<SessionRecord>,
    pub events: Vec<(UserId, GameEvent)>,
    pub jobs: Vec<ScheduledJob>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.players.is_empty()
            && self.sessions.is_empty()
            && self.events.is_empty()
            && self.jobs.is_empty()
    }
}

pub struct Tx {
    pub now: DateTime<Utc>,
    players: BTreeMap<UserId, PlayerRecord>,
    sessions: BTreeMap<Uuid, Option<SessionRecord>>,
    /// The state and players of each session as loaded, before this transition wrote it
    /// (what tells a session that became active from one written again, and who began or
    /// stopped playing).
    loaded: BTreeMap<Uuid, (SessionState, Vec<UserId>)>,
    dirty_players: BTreeSet<UserId>,
    dirty_sessions: BTreeSet<Uuid>,
    events: Vec<(UserId, GameEvent)>,
    jobs: Vec<ScheduledJob>,
}

impl Tx {
    /// `players` are locked; `sessions` were loaded while their hosts were locked.
    pub fn new(
        now: DateTime<Utc>,
        players: BTreeMap<UserId, PlayerRecord>,
        sessions: BTreeMap<Uuid, Option<SessionRecord>>,
    ) -> Self {
        let loaded = sessions
            .iter()
            .filter_map(|(id, session)| {
                session
                    .as_ref()
                    .map(|s| (*id, (s.state, s.players.clone())))
            })
            .collect();
        Self {
            now,
            players,
            sessions,
            loaded,
            dirty_players: BTreeSet::new(),
            dirty_sessions: BTreeSet::new(),
            events: Vec::new(),
            jobs: Vec::new(),
        }
    }

    pub fn locked(&self) -> impl Iterator<Item = &UserId> {
        self.players.keys()
    }

    /// Fails with `Need` naming every player of `ids` not locked yet.
    pub fn require<'a>(&self, ids: impl IntoIterator<Item = &'a UserId>) -> Result<(), TxError> {
        let missing: BTreeSet<UserId> = ids
            .into_iter()
            .filter(|id| !self.players.contains_key(*id))
            .cloned()
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(TxError::Need {
                players: missing,
                sessions: BTreeSet::new(),
            })
        }
    }

    /// A copy of a locked player's record; change it and [`Tx::put_player`] it back.
    pub fn player(&self, id: &UserId) -> Result<PlayerRecord, TxError> {
        self.require([id])?;
        Ok(self.players.get(id).cloned().unwrap_or_default())
    }

    pub fn put_player(&mut self, id: &UserId, record: PlayerRecord) {
        self.players.insert(id.clone(), record);
        self.dirty_players.insert(id.clone());
    }

    /// A copy of a session whose host is locked; `None` when it no longer exists.
    pub fn session(&self, at: &SessionRef) -> Result<Option<SessionRecord>, TxError> {
        match self.sessions.get(&at.id) {
            Some(loaded) if self.players.contains_key(&at.host) => Ok(loaded.clone()),
            _ => Err(TxError::Need {
                players: BTreeSet::from([at.host.clone()]),
                sessions: BTreeSet::from([at.clone()]),
            }),
        }
    }

    /// A session loaded in this transaction, for rendering only (no lock needed).
    pub fn cached_session(&self, id: Uuid) -> Option<&SessionRecord> {
        self.sessions.get(&id).and_then(Option::as_ref)
    }

    pub fn put_session(&mut self, session: SessionRecord) {
        self.dirty_sessions.insert(session.id);
        self.sessions.insert(session.id, Some(session));
    }

    /// Events go to a player's stream; the player need not be locked (streams only grow).
    pub fn push_event(&mut self, to: &UserId, event: GameEvent) {
        self.events.push((to.clone(), event));
    }

    pub fn schedule(&mut self, job: ScheduledJob) {
        self.jobs.push(job);
    }

    pub fn changes(&self) -> Changes {
        Changes {
            players: self
                .dirty_players
                .iter()
                .filter_map(|id| self.players.get(id).map(|r| (id.clone(), r.clone())))
                .collect(),
            sessions: self
                .dirty_sessions
                .iter()
                .filter_map(|id| self.sessions.get(id).cloned().flatten())
                .collect(),
            events: self.events.clone(),
            jobs: self.jobs.clone(),
        }
    }

    /// A session's state as this transition loaded it; `None` for a session
    /// it created (or found gone).
    pub fn loaded_state(&self, id: Uuid) -> Option<SessionState> {
        self.loaded.get(&id).map(|(state, _)| *state)
    }

    /// Who began (`true`) or stopped (`false`) playing in a session this transition wrote:
    /// a player plays in a session while it is `active` and they are among its players.
    pub fn playing_changes(&self) -> Vec<(UserId, &SessionRecord, bool)> {
        let mut changes = Vec::new();
        for id in &self.dirty_sessions {
            let Some(Some(now)) = self.sessions.get(id) else {
                continue;
            };
            let before: &[UserId] = match self.loaded.get(id) {
                Some((SessionState::Active, players)) => players,
                _ => &[],
            };
            let after: &[UserId] = if now.state == SessionState::Active {
                &now.players
            } else {
                &[]
            };
            for p in after.iter().filter(|p| !before.contains(p)) {
                changes.push((p.clone(), now, true));
            }
            for p in before.iter().filter(|p| !after.contains(p)) {
                changes.push((p.clone(), now, false));
            }
        }
        changes
    }

    /// Whether the transition tells anybody anything: every change a player
    /// can see is an event (docs/CONTRACT.md, "Every change is an event").
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// The record of a locked player as it stands now (after this transition's changes).
    pub fn current(&self, id: &UserId) -> Option<&PlayerRecord> {
        self.players.get(id)
    }
}
