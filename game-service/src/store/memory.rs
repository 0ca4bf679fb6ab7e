//! The embedded store: one process, nothing to install, same semantics as Redis.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use shared_types::UserId;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::{
    EVENTS_KEPT, Locked, Relayed, Scope, Store, StoreError, StoreResult, StoredEvent,
    event_message, job_key, parse_event_id,
};
use crate::domain::{
    records::{ExpiryJob, PlayerRecord, SessionRecord, SessionRef},
    tx::Changes,
};

#[derive(Default)]
struct State {
    locks: HashMap<UserId, (String, Instant)>,
    players: HashMap<UserId, PlayerRecord>,
    sessions: HashMap<Uuid, SessionRecord>,
    streams: HashMap<UserId, VecDeque<StoredEvent>>,
    /// job key → (due, job); `due` moves forward while a claim is leased.
    jobs: HashMap<String, (DateTime<Utc>, ExpiryJob)>,
}

pub struct MemoryStore {
    state: Mutex<State>,
    events: broadcast::Sender<Relayed>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State::default()),
            events: broadcast::channel(super::BROADCAST_CAPACITY).0,
        }
    }

    fn state(&self) -> StoreResult<MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| StoreError::Corrupt(anyhow::anyhow!("memory store mutex poisoned")))
    }
}

impl State {
    fn holds(&self, player: &UserId, token: &str) -> bool {
        self.locks
            .get(player)
            .is_some_and(|(owner, until)| owner == token && *until > Instant::now())
    }

    fn append(&mut self, player: &UserId, mut event: StoredEvent) -> StoredEvent {
        let stream = self.streams.entry(player.clone()).or_default();
        let millis = u64::try_from(Utc::now().timestamp_millis()).unwrap_or_default();
        let last = stream.back().and_then(|e| parse_event_id(&e.id));
        let (ms, seq) = match last {
            Some((last_ms, last_seq)) if last_ms >= millis => (last_ms, last_seq + 1),
            _ => (millis, 0),
        };
        event.id = format!("{ms}-{seq}");
        stream.push_back(event.clone());
        while stream.len() > EVENTS_KEPT {
            stream.pop_front();
        }
        event
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn lock(
        &self,
        players: &[UserId],
        sessions: &[SessionRef],
        predict: Option<(&UserId, Scope)>,
        token: &str,
        lease: Duration,
    ) -> StoreResult<Option<Locked>> {
        let mut state = self.state()?;
        let (players, sessions) = match predict {
            Some((actor, scope)) => {
                let record = state.players.get(actor).cloned().unwrap_or_default();
                super::predict(actor, &record, scope, players, sessions)
            }
            None => (players.to_vec(), sessions.to_vec()),
        };
        let now = Instant::now();
        let free = |player: &UserId| {
            state
                .locks
                .get(player)
                .is_none_or(|(owner, until)| *until <= now || owner == token)
        };
        if !players.iter().all(free) {
            return Ok(None);
        }
        let mut locked = Locked::default();
        for player in &players {
            state
                .locks
                .insert(player.clone(), (token.to_owned(), now + lease));
            let record = state.players.get(player).cloned().unwrap_or_default();
            locked.players.insert(player.clone(), record);
        }
        for at in sessions.iter().filter(|at| players.contains(&at.host)) {
            let session = state
                .sessions
                .get(&at.id)
                .filter(|s| s.host == at.host)
                .cloned();
            locked.sessions.insert(at.id, session);
        }
        Ok(Some(locked))
    }

    async fn unlock(&self, players: &[UserId], token: &str) -> StoreResult<()> {
        let mut state = self.state()?;
        for player in players {
            if state
                .locks
                .get(player)
                .is_some_and(|(owner, _)| owner == token)
            {
                state.locks.remove(player);
            }
        }
        Ok(())
    }

    async fn commit(&self, locked: &[UserId], token: &str, changes: &Changes) -> StoreResult<()> {
        let mut state = self.state()?;
        if !locked.iter().all(|p| state.holds(p, token)) {
            return Err(StoreError::LeaseLost);
        }
        for (player, record) in &changes.players {
            state.players.insert(player.clone(), record.clone());
        }
        for session in &changes.sessions {
            state.sessions.insert(session.id, session.clone());
        }
        for scheduled in &changes.jobs {
            state.jobs.insert(
                job_key(&scheduled.job),
                (scheduled.due, scheduled.job.clone()),
            );
        }
        for (player, event) in &changes.events {
            let stored = state.append(player, event_message(player, event));
            // Nobody listening is fine: the stream keeps it for replay.
            let _ = self.events.send(Relayed::Event(stored));
        }
        for player in locked {
            state.locks.remove(player);
        }
        Ok(())
    }

    async fn player(&self, player: &UserId) -> StoreResult<Option<PlayerRecord>> {
        Ok(self.state()?.players.get(player).cloned())
    }

    async fn session(&self, at: &SessionRef) -> StoreResult<Option<SessionRecord>> {
        Ok(self
            .state()?
            .sessions
            .get(&at.id)
            .filter(|s| s.host == at.host)
            .cloned())
    }

    async fn session_host(&self, id: Uuid) -> StoreResult<Option<UserId>> {
        Ok(self.state()?.sessions.get(&id).map(|s| s.host.clone()))
    }

    async fn events_after(
        &self,
        player: &UserId,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<StoredEvent>> {
        let after = after.and_then(parse_event_id);
        let state = self.state()?;
        let Some(stream) = state.streams.get(player) else {
            return Ok(Vec::new());
        };
        Ok(stream
            .iter()
            .filter(|e| after.is_none_or(|a| parse_event_id(&e.id).is_some_and(|id| id > a)))
            .take(limit)
            .cloned()
            .collect())
    }

    fn subscribe(&self) -> broadcast::Receiver<Relayed> {
        self.events.subscribe()
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease: Duration,
    ) -> StoreResult<Vec<ExpiryJob>> {
        let mut state = self.state()?;
        let due: BTreeMap<(DateTime<Utc>, String), ExpiryJob> = state
            .jobs
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(key, (at, job))| ((*at, key.clone()), job.clone()))
            .collect();
        let until = now + chrono::Duration::from_std(lease).unwrap_or_default();
        let mut claimed = Vec::new();
        for ((_, key), job) in due.into_iter().take(limit) {
            state.jobs.insert(key, (until, job.clone()));
            claimed.push(job);
        }
        Ok(claimed)
    }

    async fn finish_job(&self, job: &ExpiryJob) -> StoreResult<()> {
        self.state()?.jobs.remove(&job_key(job));
        Ok(())
    }

    async fn ping(&self) -> StoreResult<()> {
        self.state().map(|_| ())
    }
}
