//! The embedded store: one process, nothing to install, same semantics as
//! Redis, lifetimes included ([`Retention`], in real time).

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use service_kit::events::{EventBuffer, EventLog};
use shared_types::{
    UserId,
    game::{GameEvent, SessionState},
};
use tokio::sync::broadcast;
use uuid::Uuid;

use super::{
    Locked, Relayed, Retention, Scope, Store, StoreError, StoreResult, StoredEvent, event_message,
    job_key,
};
use crate::domain::{
    records::{ExpiryJob, PlayerRecord, SessionRecord, SessionRef},
    tx::Changes,
};

/// How often a commit also drops what has expired (reads ignore it before that).
const PURGE_EVERY: Duration = Duration::from_secs(1);

/// A value with its end of life, as a Redis key with a TTL.
struct Expiring<T> {
    value: T,
    until: Instant,
}

/// A map whose entries expire: reads see only live ones.
struct Ttl<K, V>(HashMap<K, Expiring<V>>);

impl<K, V> Default for Ttl<K, V> {
    fn default() -> Self {
        Self(HashMap::new())
    }
}

impl<K: std::hash::Hash + Eq, V> Ttl<K, V> {
    fn get(&self, key: &K) -> Option<&V> {
        let now = Instant::now();
        self.0.get(key).filter(|e| e.until > now).map(|e| &e.value)
    }

    fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let now = Instant::now();
        self.0
            .get_mut(key)
            .filter(|e| e.until > now)
            .map(|e| &mut e.value)
    }

    /// Stores `value` for `ttl`; `keep` never shortens a live entry's lifetime.
    fn set(&mut self, key: K, value: V, ttl: Duration, keep: bool) {
        let now = Instant::now();
        let mut until = now + ttl;
        if keep && let Some(old) = self.0.get(&key).filter(|e| e.until > now) {
            until = until.max(old.until);
        }
        self.0.insert(key, Expiring { value, until });
    }

    /// A live entry lives at least `ttl` from now.
    fn extend(&mut self, key: &K, ttl: Duration) {
        let now = Instant::now();
        if let Some(entry) = self.0.get_mut(key).filter(|e| e.until > now) {
            entry.until = entry.until.max(now + ttl);
        }
    }

    fn purge(&mut self, now: Instant) {
        self.0.retain(|_, e| e.until > now);
    }
}

struct State {
    locks: HashMap<UserId, (String, Instant)>,
    players: Ttl<UserId, PlayerRecord>,
    sessions: Ttl<Uuid, SessionRecord>,
    streams: Ttl<UserId, EventBuffer<GameEvent>>,
    /// job key → (due, job); `due` moves forward while a claim is leased.
    /// Jobs are kept until finished (Redis keeps their sets at least as long).
    jobs: HashMap<String, (DateTime<Utc>, ExpiryJob)>,
    purged: Instant,
}

pub struct MemoryStore {
    state: Mutex<State>,
    events: broadcast::Sender<Relayed>,
    retention: Retention,
    feed: Mutex<Feed>,
}

/// The presence feed's lease (holder, until) and cursor.
type Feed = (Option<(String, Instant)>, Option<String>);

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::with_retention(Retention::default())
    }

    pub fn with_retention(retention: Retention) -> Self {
        Self {
            state: Mutex::new(State {
                locks: HashMap::new(),
                players: Ttl::default(),
                sessions: Ttl::default(),
                streams: Ttl::default(),
                jobs: HashMap::new(),
                purged: Instant::now(),
            }),
            events: broadcast::channel(super::BROADCAST_CAPACITY).0,
            retention,
            feed: Mutex::new((None, None)),
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

    fn append(&mut self, player: &UserId, event: StoredEvent, ttl: Duration) -> StoredEvent {
        if self.streams.get(player).is_none() {
            self.streams
                .set(player.clone(), EventBuffer::default(), ttl, false);
        }
        self.streams.extend(player, ttl);
        let Some(stream) = self.streams.get_mut(player) else {
            return event;
        };
        let millis = u64::try_from(Utc::now().timestamp_millis()).unwrap_or_default();
        stream.append(event, millis)
    }
}

#[async_trait]
impl EventLog<GameEvent> for MemoryStore {
    type Error = StoreError;

    async fn events_after(
        &self,
        player: &UserId,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<StoredEvent>> {
        let state = self.state()?;
        Ok(state
            .streams
            .get(player)
            .map(|stream| stream.after(after, limit))
            .unwrap_or_default())
    }

    fn subscribe(&self) -> broadcast::Receiver<Relayed> {
        self.events.subscribe()
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
        let retention = self.retention;
        // As commit.lua: the sets first, then what they keep alive.
        let mut keep_sessions = Vec::new();
        let mut keep_players = Vec::new();
        for (player, record) in &changes.players {
            state
                .players
                .set(player.clone(), record.clone(), retention.record_ttl, false);
            keep_sessions.extend(record.points_at().map(|at| (at.id, retention.record_ttl)));
        }
        for session in &changes.sessions {
            let ended = session.state == SessionState::Ended;
            let ttl = if ended {
                retention.ended_session_ttl
            } else {
                retention.record_ttl
            };
            state.sessions.set(session.id, session.clone(), ttl, true);
            if !ended {
                keep_players.extend(session.members().map(|p| (p.clone(), ttl)));
            }
        }
        for (id, ttl) in keep_sessions {
            state.sessions.extend(&id, ttl);
        }
        for (player, ttl) in keep_players {
            state.players.extend(&player, ttl);
        }
        for scheduled in &changes.jobs {
            state.jobs.insert(
                job_key(&scheduled.job),
                (scheduled.due, scheduled.job.clone()),
            );
        }
        for (player, event) in &changes.events {
            let stored = state.append(player, event_message(player, event), retention.events_ttl);
            // Nobody listening is fine: the stream keeps it for replay.
            let _ = self.events.send(Relayed::Event(stored));
        }
        for player in locked {
            state.locks.remove(player);
        }
        let now = Instant::now();
        if now.duration_since(state.purged) >= PURGE_EVERY {
            state.players.purge(now);
            state.sessions.purge(now);
            state.streams.purge(now);
            state.purged = now;
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

    async fn due_count(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        // A scan, like `claim_due`: the embedded store serves one process.
        let state = self.state()?;
        let due = state.jobs.values().filter(|(at, _)| *at <= now).count();
        Ok(u64::try_from(due).unwrap_or(u64::MAX))
    }

    async fn ping(&self) -> StoreResult<()> {
        self.state().map(|_| ())
    }
}

#[async_trait]
impl super::FeedCheckpoint for MemoryStore {
    async fn hold_feed(&self, holder: &str, lease: Duration) -> StoreResult<bool> {
        let mut feed = self.feed.lock().map_err(|_| poisoned())?;
        let now = Instant::now();
        let free = feed
            .0
            .as_ref()
            .is_none_or(|(who, until)| who == holder || *until <= now);
        if free {
            feed.0 = Some((holder.to_owned(), now + lease));
        }
        Ok(free)
    }

    async fn feed_cursor(&self) -> StoreResult<Option<String>> {
        Ok(self.feed.lock().map_err(|_| poisoned())?.1.clone())
    }

    async fn save_feed_cursor(&self, holder: &str, cursor: &str) -> StoreResult<bool> {
        let mut feed = self.feed.lock().map_err(|_| poisoned())?;
        let held = feed
            .0
            .as_ref()
            .is_some_and(|(who, until)| who == holder && *until > Instant::now());
        if held {
            feed.1 = Some(cursor.to_owned());
        }
        Ok(held)
    }
}

fn poisoned() -> StoreError {
    StoreError::Corrupt(anyhow::anyhow!("memory store mutex poisoned"))
}
