//! A store that refuses writes for a while (a failover: 503 `store_unavailable` with `Retry-After`): which refusals a storm tolerates, how it retries them, and what the services showed of the outage.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::ensure;
use reqwest::StatusCode;
use shared_types::problem::{Problem, ProblemCode};

use crate::helpers::Reply;

/// How long one request is retried while the store refuses it: a failover and the old node
/// rejoining as a replica (Sentinel reconfigures it about 11 s after its restart).
const OUTAGE_LIMIT: Duration = Duration::from_secs(45);
/// The pause between two tries of a refused request: sooner than the `Retry-After` (1 s) asks,
/// so that the storm sees when writes are back to within a fraction of a second.
pub(super) const OUTAGE_RETRY: Duration = Duration::from_millis(250);

/// The refusals seen, for storms on a store that may fail over; a storm that tolerates none
/// (the default) fails on the first.
#[derive(Default)]
pub(super) struct Outages {
    tolerated: bool,
    /// Game requests refused `store_unavailable` (each try counts).
    game_refused: AtomicUsize,
    /// IM writes refused `store_unavailable` (the storm's chat: never retried).
    im_refused: AtomicUsize,
    /// Game requests refused at least once that went through on a later try.
    retried_through: AtomicUsize,
    /// Game requests answered since the last refusal: the storm played on after the outage.
    answered_since: AtomicUsize,
    /// Checks of an answer skipped because it may be a retry's (see [`Self::unless_refused`]).
    loosened: AtomicUsize,
    times: Mutex<Times>,
    /// Refusals after this are a service that does not recover: they fail the storm at once.
    recover_by: Mutex<Option<Instant>>,
}

#[derive(Default, Clone, Copy)]
struct Times {
    first_refused: Option<Instant>,
    last_refused: Option<Instant>,
    /// The last moment a refused request went through.
    last_through: Option<Instant>,
}

/// What the services showed of an outage, for the report.
#[derive(Debug, Clone, Copy)]
pub(super) struct Seen {
    pub(super) game_refused: usize,
    pub(super) im_refused: usize,
    pub(super) retried_through: usize,
    pub(super) answered_since: usize,
    pub(super) loosened: usize,
    pub(super) first_refused: Option<Instant>,
    pub(super) last_refused: Option<Instant>,
    pub(super) last_through: Option<Instant>,
}

impl Seen {
    /// From the first refusal to the moment the last refused request went through.
    pub(super) fn duration(&self) -> Option<Duration> {
        Some(
            self.last_through?
                .saturating_duration_since(self.first_refused?),
        )
    }
}

impl Outages {
    /// Tolerating refusals: game requests are retried, IM writes counted.
    pub(super) fn tolerating() -> Self {
        Self {
            tolerated: true,
            ..Self::default()
        }
    }

    /// From `at` on, a refusal means a service that does not recover by itself: the store is
    /// whole again by then.
    pub(super) fn expect_recovery_by(&self, at: Instant) {
        if let Ok(mut recover_by) = self.recover_by.lock() {
            *recover_by = Some(at);
        }
    }

    /// Fails if refusals go on past [`Self::expect_recovery_by`], or one request's for longer
    /// than [`OUTAGE_LIMIT`].
    fn ensure_recovering(&self, reply: &Reply, since: Instant) -> anyhow::Result<()> {
        let recover_by = self.recover_by.lock().ok().and_then(|at| *at);
        let late = recover_by.filter(|at| Instant::now() > *at);
        ensure!(
            late.is_none() && since.elapsed() <= OUTAGE_LIMIT,
            "{} {} still answers 503 store_unavailable {:.1?} after its first try{}: the \
             service does not recover from the failover by itself: {}",
            reply.method,
            reply.path,
            since.elapsed(),
            late.map(|at| format!(", {:.1?} past the store's recovery", at.elapsed()))
                .unwrap_or_default(),
            reply.body
        );
        Ok(())
    }

    /// Whether `reply` is a refusal to retry: a 503 `store_unavailable` (which must say when to
    /// retry) while the storm tolerates them; fails if the service should have recovered by
    /// now (see [`Self::ensure_recovering`]). Counts it.
    pub(super) fn retry(&self, reply: &Reply, since: Instant) -> anyhow::Result<bool> {
        if !self.is_refusal(reply)? {
            return Ok(false);
        }
        self.ensure_recovering(reply, since)?;
        self.game_refused.fetch_add(1, Ordering::Relaxed);
        self.answered_since.store(0, Ordering::Relaxed);
        self.note(|t, now| {
            t.first_refused.get_or_insert(now);
            t.last_refused = Some(now);
        });
        Ok(true)
    }

    /// A game request answered after `refused` refusals (none, mostly).
    pub(super) fn answered(&self, refused: u32) {
        self.answered_since.fetch_add(1, Ordering::Relaxed);
        if refused > 0 {
            self.retried_through.fetch_add(1, Ordering::Relaxed);
            self.note(|t, now| t.last_through = Some(now));
        }
    }

    /// Whether an IM write's `reply` is a refusal the storm tolerates (counted): it may or may
    /// not have happened, and is not retried. Fails past [`Self::expect_recovery_by`].
    pub(super) fn im_refused(&self, reply: &Reply) -> anyhow::Result<bool> {
        let refused = self.is_refusal(reply)?;
        if refused {
            self.ensure_recovering(reply, Instant::now())?;
            self.im_refused.fetch_add(1, Ordering::Relaxed);
        }
        Ok(refused)
    }

    fn is_refusal(&self, reply: &Reply) -> anyhow::Result<bool> {
        if !self.tolerated || reply.status != StatusCode::SERVICE_UNAVAILABLE {
            return Ok(false);
        }
        let Ok(problem) = reply.json::<Problem>() else {
            return Ok(false);
        };
        if problem.code != ProblemCode::StoreUnavailable {
            return Ok(false);
        }
        ensure!(
            reply.headers.contains_key("retry-after"),
            "a 503 store_unavailable without Retry-After: {reply:?}"
        );
        Ok(true)
    }

    /// How many game requests were refused so far: a mark for [`Self::unless_refused`].
    pub(super) fn mark(&self) -> usize {
        self.game_refused.load(Ordering::Relaxed)
    }

    /// `check` of an answer, unless a game request was refused since `mark`: the answer may
    /// then be a retry's, which shows the state of its moment (the others in the group may
    /// have moved on since the first try applied), not the outcome of applying it. The
    /// store's invariants are checked afterwards all the same.
    pub(super) fn unless_refused(
        &self,
        mark: usize,
        check: anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        if self.mark() == mark {
            return check;
        }
        if check.is_err() {
            self.loosened.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    pub(super) fn seen(&self) -> Seen {
        let times = self.times.lock().map(|t| *t).unwrap_or_default();
        Seen {
            game_refused: self.game_refused.load(Ordering::Relaxed),
            im_refused: self.im_refused.load(Ordering::Relaxed),
            retried_through: self.retried_through.load(Ordering::Relaxed),
            answered_since: self.answered_since.load(Ordering::Relaxed),
            loosened: self.loosened.load(Ordering::Relaxed),
            first_refused: times.first_refused,
            last_refused: times.last_refused,
            last_through: times.last_through,
        }
    }

    fn note(&self, update: impl FnOnce(&mut Times, Instant)) {
        if let Ok(mut times) = self.times.lock() {
            update(&mut times, Instant::now());
        }
    }
}
