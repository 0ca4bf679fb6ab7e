//! A store that refuses writes for a while (a failover: 503 `store_unavailable` with `Retry-After`), or a service that is gone for a moment (the soak restarts them): which refusals a storm tolerates, how it retries them, and what the services showed of the outage.

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
    /// Requests that got no answer (the service was killed, or not yet back) are refusals too.
    crashes_tolerated: bool,
    /// Requests that got no answer, among the refusals (each try counts).
    unanswered: AtomicUsize,
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
    pub(super) unanswered: usize,
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

    /// Tolerating refusals and requests a killed service never answered: both may or may not
    /// have happened.
    pub(super) fn tolerating_crashes() -> Self {
        Self {
            tolerated: true,
            crashes_tolerated: true,
            ..Self::default()
        }
    }

    /// Whether `error` (a request that got no answer) is one to treat as a refusal: the service
    /// was killed, or is starting again. Counts it.
    fn unanswered(&self, error: &anyhow::Error) -> bool {
        // A request that timed out got no answer from a service that is there: not a crash.
        let no_answer = error.downcast_ref::<reqwest::Error>().is_some_and(|err| {
            !err.is_timeout() && (err.is_connect() || err.is_request() || err.is_body())
        });
        let tolerated = self.crashes_tolerated && no_answer;
        if tolerated {
            self.unanswered.fetch_add(1, Ordering::Relaxed);
        }
        tolerated
    }

    /// A game request's outcome: its reply, `None` for a refusal to retry (a 503
    /// `store_unavailable`, or no answer from a killed service, while the storm tolerates them;
    /// see [`Self::retry`]), or the error.
    pub(super) fn game_reply(
        &self,
        outcome: anyhow::Result<Reply>,
        since: Instant,
    ) -> anyhow::Result<Option<Reply>> {
        let reply = match outcome {
            Ok(reply) => reply,
            Err(err) if self.unanswered(&err) => {
                self.refused(since, &format!("{err:#}"))?;
                return Ok(None);
            }
            Err(err) => return Err(err),
        };
        Ok((!self.retry(&reply, since)?).then_some(reply))
    }

    /// An IM write's outcome: its reply, `None` for a refusal the storm tolerates (counted; see
    /// [`Self::im_refused`]), or the error.
    pub(super) fn im_reply(&self, outcome: anyhow::Result<Reply>) -> anyhow::Result<Option<Reply>> {
        match outcome {
            Ok(reply) => Ok((!self.im_refused(&reply)?).then_some(reply)),
            Err(err) if self.unanswered(&err) => {
                self.ensure_recovering_from(&format!("no answer: {err:#}"), Instant::now())?;
                self.im_refused.fetch_add(1, Ordering::Relaxed);
                Ok(None)
            }
            Err(err) => Err(err),
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
        let refusal = format!(
            "{} {} still answers 503 store_unavailable: {}",
            reply.method, reply.path, reply.body
        );
        self.ensure_recovering_from(&refusal, since)
    }

    fn ensure_recovering_from(&self, refusal: &str, since: Instant) -> anyhow::Result<()> {
        let recover_by = self.recover_by.lock().ok().and_then(|at| *at);
        let late = recover_by.filter(|at| Instant::now() > *at);
        ensure!(
            late.is_none() && since.elapsed() <= OUTAGE_LIMIT,
            "{:.1?} after its first try{}, the service does not recover from the fault by \
             itself: {refusal}",
            since.elapsed(),
            late.map(|at| format!(", {:.1?} past the store's recovery", at.elapsed()))
                .unwrap_or_default(),
        );
        Ok(())
    }

    /// Whether `reply` is a refusal to retry: a 503 `store_unavailable` (which must say when to
    /// retry) while the storm tolerates them; fails if the service should have recovered by
    /// now (see [`Self::ensure_recovering`]). Counts it.
    fn retry(&self, reply: &Reply, since: Instant) -> anyhow::Result<bool> {
        if !self.is_refusal(reply)? {
            return Ok(false);
        }
        self.ensure_recovering(reply, since)?;
        self.count_refusal();
        Ok(true)
    }

    /// A game request that got no answer, while the storm tolerates crashes.
    fn refused(&self, since: Instant, error: &str) -> anyhow::Result<()> {
        self.ensure_recovering_from(&format!("no answer: {error}"), since)?;
        self.count_refusal();
        Ok(())
    }

    fn count_refusal(&self) {
        self.game_refused.fetch_add(1, Ordering::Relaxed);
        self.answered_since.store(0, Ordering::Relaxed);
        self.note(|t, now| {
            t.first_refused.get_or_insert(now);
            t.last_refused = Some(now);
        });
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
    fn im_refused(&self, reply: &Reply) -> anyhow::Result<bool> {
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
            unanswered: self.unanswered.load(Ordering::Relaxed),
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
