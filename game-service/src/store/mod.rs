//! Where players, sessions, event streams and expiry jobs live, behind one trait
//! with two backends: [`memory::MemoryStore`] (quickstart, one process) and
//! [`redis::RedisStore`] (production, shared by replicas).
//!
//! Concurrency protocol: a transition takes the arbiter lock of every player it
//! touches at once, all or none (so no transition holds some locks while
//! waiting for others: no deadlock), reading their records and the sessions
//! they host under them; computes; then commits all its writes in one atomic
//! step that first checks it still holds every lock (a fence against an
//! expired lease) and releases them. On standalone Redis each of the two
//! steps is one script call; on a cluster, locks are taken one player at a
//! time in sorted order and the commit spans slots (see [`redis`]).

mod checkpoint;
pub mod memory;
pub mod redis;

pub use checkpoint::FeedCheckpoint;

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use shared_types::{UserId, game::GameEvent};
use uuid::Uuid;

use crate::domain::{
    records::{ExpiryJob, PlayerRecord, SessionRecord, SessionRef},
    tx::Changes,
};

pub use service_kit::events::{BROADCAST_CAPACITY, EVENTS_KEPT, parse_event_id};

/// How long the store keeps what it holds, in real time (Redis TTLs; the
/// memory store expires the same things after the same times).
///
/// Lifetimes are coupled so that nobody is stuck: whatever a player record
/// points at lives at least as long as the record, a live session's players'
/// records at least as long as the session, and writing a session never
/// shortens its lifetime. Both stores apply this in the commit's atomic step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Player records and live sessions, after their last change (`RECORD_TTL_SECS`).
    pub record_ttl: Duration,
    /// Ended sessions stay readable this long.
    pub ended_session_ttl: Duration,
    /// A player's events stay replayable this long after their last one.
    pub events_ttl: Duration,
    /// Job sets outlive the furthest job they can hold.
    pub jobs_ttl: Duration,
}

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

impl Default for Retention {
    fn default() -> Self {
        Self {
            record_ttl: DAY,
            ended_session_ttl: HOUR,
            events_ttl: HOUR,
            jobs_ttl: DAY,
        }
    }
}

impl Retention {
    /// Records and live sessions kept `record_ttl`; job sets kept at least
    /// twice `horizon`, the furthest a job is ever scheduled ahead.
    pub fn new(record_ttl: Duration, horizon: Duration) -> Self {
        Self {
            record_ttl,
            jobs_ttl: DAY.max(horizon.saturating_mul(2)),
            ..Self::default()
        }
    }
}

/// A game event as stored in a player's stream (ids `<millis>-<seq>`, increasing per player).
pub type StoredEvent = service_kit::events::StoredEvent<GameEvent>;

/// What a store relays to its subscribers.
pub type Relayed = service_kit::events::Relayed<GameEvent>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    #[error("a lock lease expired before the commit; nothing was written")]
    LeaseLost,
    #[error("could not take the locks needed to finish an interrupted commit")]
    Contended,
    #[error("corrupt data in the store: {0:#}")]
    Corrupt(anyhow::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Which players a transition will likely need locked besides its actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Those the actor's record points at: its session's host, its prompt's
    /// lobby host, the hosts that invited it.
    Record,
    /// Also the candidates of an invite prompt (accepting one invites them).
    WithCandidates,
}

/// The players and sessions a transition of `actor` will likely need,
/// besides `players` and `sessions`: the actor, and what its record points at.
/// `lock_all.lua` does the same in Redis.
pub fn predict(
    actor: &UserId,
    record: &PlayerRecord,
    scope: Scope,
    players: &[UserId],
    sessions: &[SessionRef],
) -> (Vec<UserId>, Vec<SessionRef>) {
    let mut wanted_sessions: BTreeSet<SessionRef> = sessions.iter().cloned().collect();
    wanted_sessions.extend(record.points_at().cloned());
    let mut wanted_players: BTreeSet<UserId> = players.iter().cloned().collect();
    wanted_players.insert(actor.clone());
    wanted_players.extend(wanted_sessions.iter().map(|at| at.host.clone()));
    if scope == Scope::WithCandidates
        && let Some(prompt) = record.prompt.as_ref().filter(|pr| pr.lobby.is_none())
    {
        wanted_players.extend(prompt.candidates.iter().cloned());
    }
    (
        wanted_players.into_iter().collect(),
        wanted_sessions.into_iter().collect(),
    )
}

/// What one [`Store::finish_orphaned_intents`] did with the commits it claimed.
#[derive(Debug, Default)]
pub struct OrphanSweep {
    /// Every part had been prepared: applied in full now.
    pub rolled_forward: u64,
    /// Not every part had been prepared: undone, nothing of it applied.
    pub aborted: u64,
    /// Found finished already (its writer or a lock got there first): only
    /// its listing was left, dropped now.
    pub cleared: u64,
    /// A player was locked by someone else: claimed again by a later sweep.
    pub deferred: u64,
    /// The store failed on these: claimed again by a later sweep.
    pub failed: Vec<StoreError>,
}

/// What [`Store::lock_if_open`] did.
#[derive(Debug)]
pub enum IfOpen {
    /// The actor's record holds nothing open (no prompt, session or invitation): no lock
    /// was taken.
    NothingOpen,
    /// It does: the locks are taken, as [`Store::lock`] takes them.
    Locked(Locked),
}

/// Whether `record` holds nothing a connect would resume: no prompt, session or invitation.
/// `lock_all.lua` decides the same in Redis.
pub fn nothing_open(record: &PlayerRecord) -> bool {
    record.prompt.is_none() && record.session.is_none() && record.invitations.is_empty()
}

/// What [`Store::lock`] read under the locks it took.
#[derive(Debug, Default, Clone)]
pub struct Locked {
    pub players: BTreeMap<UserId, PlayerRecord>,
    pub sessions: BTreeMap<Uuid, Option<SessionRecord>>,
}

/// A store is also where the players' event streams are read back (replay
/// and the live feed), through the machinery both services share.
#[async_trait]
pub trait Store:
    service_kit::events::EventLog<GameEvent, Error = StoreError> + FeedCheckpoint
{
    /// Takes the locks of all `players` for `lease`, all or none: `None`
    /// (holding nothing) when another transition holds one of them. Returns
    /// their records (default when none) and the `sessions` whose host is
    /// among the locked players (`None` when gone), read under those locks.
    ///
    /// With `predict`, the set first grows by what that actor's record points
    /// at ([`predict`]), read in the same atomic step where the backend can
    /// (one script on standalone Redis) or just before (a hint: a transition
    /// asks for whatever it finds missing).
    async fn lock(
        &self,
        players: &[UserId],
        sessions: &[SessionRef],
        predict: Option<(&UserId, Scope)>,
        token: &str,
        lease: Duration,
    ) -> StoreResult<Option<Locked>>;

    /// As [`Store::lock`] of `actor` alone with scope [`Scope::Record`], unless the actor's
    /// record holds nothing open ([`nothing_open`]): then nothing is locked (a connect asks
    /// the IM service before it locks anything). One round trip where the backend can
    /// decide and lock in one step; else a read and then the locks.
    async fn lock_if_open(
        &self,
        actor: &UserId,
        token: &str,
        lease: Duration,
    ) -> StoreResult<Option<IfOpen>> {
        if nothing_open(&self.player(actor).await?.unwrap_or_default()) {
            return Ok(Some(IfOpen::NothingOpen));
        }
        let locked = self
            .lock(
                std::slice::from_ref(actor),
                &[],
                Some((actor, Scope::Record)),
                token,
                lease,
            )
            .await?;
        Ok(locked.map(IfOpen::Locked))
    }

    /// Releases the locks `token` holds among `players`.
    async fn unlock(&self, players: &[UserId], token: &str) -> StoreResult<()>;

    /// Applies `changes` atomically if `token` still holds the lock of every
    /// player in `locked` (else [`StoreError::LeaseLost`] and nothing is
    /// written), appends and publishes the events, schedules the jobs and
    /// releases the locks.
    async fn commit(&self, locked: &[UserId], token: &str, changes: &Changes) -> StoreResult<()>;

    /// A player's record, read without locking.
    async fn player(&self, player: &UserId) -> StoreResult<Option<PlayerRecord>>;

    /// A session, read without locking.
    async fn session(&self, at: &SessionRef) -> StoreResult<Option<SessionRecord>>;

    /// Which player hosts (and so stores) the session with this id.
    async fn session_host(&self, id: Uuid) -> StoreResult<Option<UserId>>;

    /// Claims up to `limit` jobs due at `now`: each is handed to exactly one
    /// caller, and handed out again after `lease` unless [`Store::finish_job`] is called.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease: Duration,
    ) -> StoreResult<Vec<ExpiryJob>>;

    async fn finish_job(&self, job: &ExpiryJob) -> StoreResult<()>;

    /// [`Store::finish_job`] for each of `jobs` (a sweep's): one call per job shard.
    async fn finish_jobs(&self, jobs: &[ExpiryJob]) -> StoreResult<()> {
        for job in jobs {
            self.finish_job(job).await?;
        }
        Ok(())
    }

    /// How many jobs are due at `now` and not claimed (a claimed job is due
    /// again only when its lease ends): the expiry backlog. O(log n) per job
    /// shard on Redis; the sweeper asks only when a claim came back full.
    async fn due_count(&self, now: DateTime<Utc>) -> StoreResult<u64>;

    /// Finishes transitions whose commit was left half-way by its writer (a
    /// replica that died, or lost its lease, mid-commit): up to `limit` of those
    /// prepared before `prepared_before` are rolled forward or undone, under
    /// their players' locks, as the next lock of one of those players would
    /// do. Each goes to one caller at a time. Only a commit spanning Redis
    /// Cluster slots can be left half-way; a store that commits in one atomic
    /// step has nothing to finish (the default, with no store call).
    async fn finish_orphaned_intents(
        &self,
        prepared_before: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<OrphanSweep> {
        let _ = (prepared_before, limit);
        Ok(OrphanSweep::default())
    }

    async fn ping(&self) -> StoreResult<()>;

    /// Gives the calling (worker) thread its own connection where the backend
    /// has one (see `RedisConn::attach_to_this_thread`).
    fn attach_to_this_thread(&self) {}
}

/// A stable key for a job (dedupes scheduling, names it in the store).
pub fn job_key(job: &ExpiryJob) -> String {
    match job {
        ExpiryJob::Invite { player, prompt_id } => format!("invite:{player}:{prompt_id}"),
        ExpiryJob::Invitation { lobby, invitee } => {
            format!("invitation:{}:{}:{invitee}", lobby.host, lobby.id)
        }
        ExpiryJob::Idle { session, life_at } => {
            format!("idle:{}:{}:{life_at}", session.host, session.id)
        }
        ExpiryJob::Announce {
            lobby,
            conversation,
            attempt,
        } => format!(
            "announce:{}:{}:{conversation}:{attempt}",
            lobby.host, lobby.id
        ),
        ExpiryJob::Activity { reports, attempt } => {
            let first = reports.first();
            format!(
                "activity:{}:{}:{attempt}",
                first.map_or("", |r| r.user_id.as_str()),
                first.map_or(0, |r| r.seq)
            )
        }
    }
}

pub(crate) fn event_message(player: &UserId, event: &GameEvent) -> StoredEvent {
    StoredEvent::new(player, event.clone())
}
