//! The transition runner: takes the locks a transition needs (sorted, all or none), runs it on what they hold, widens the lock set when it asks for more, and commits under the lease.

use std::{
    collections::BTreeSet,
    future::Future,
    time::{Duration, Instant},
};

use shared_types::UserId;
use uuid::Uuid;

use super::{Game, GameError, Op};
use crate::{
    domain::{
        engine::Outcome,
        records::SessionRef,
        tx::{Tx, TxError},
    },
    store::{IfOpen, Locked, Scope, StoreError},
};

/// How long a transition may hold its locks; commits fence on it (a commit
/// after it answers "lease lost" and the transition runs again). A transition
/// under its locks only talks to Redis, whose replies time out after 2 s.
const LOCK_LEASE: Duration = Duration::from_secs(2);
/// How long a transition waits for another one's locks before answering 503.
/// Longer than the lease: locks whose holder is gone (a replica killed, or a
/// lock script Redis ran after its caller had given up, e.g. during a pause)
/// are outlived by the wait instead of failing the next request.
const LOCK_WAIT: Duration = Duration::from_secs(3);
/// How many times a transition may widen its lock set (bounded by the players it can name).
const MAX_ATTEMPTS: usize = 8;

impl Game {
    /// Lock, load, run `op`, commit; widen the lock set when `op` asks for more.
    ///
    /// The store predicts the lock set from the actor's record (the players
    /// and sessions it points at, see [`crate::store::predict`]) in the same
    /// step that takes the locks. A wrong guess costs one more attempt, never
    /// correctness: `op` reads only what is locked and asks for the rest.
    pub(super) async fn run(
        &self,
        actor: &UserId,
        scope: Scope,
        op: &Op<'_>,
    ) -> Result<(Outcome, Tx), GameError> {
        self.run_holding(actor, scope, op, None).await
    }

    /// As [`Game::run`] with scope [`Scope::Record`], unless the actor's record holds
    /// nothing open: then `None`, with nothing locked and `op` not run. The first lock step
    /// decides ([`crate::store::Store::lock_if_open`]): no read before it.
    pub(super) async fn run_if_open(
        &self,
        actor: &UserId,
        op: &Op<'_>,
    ) -> Result<Option<(Outcome, Tx)>, GameError> {
        let token = Uuid::new_v4().to_string();
        let held = self
            .waiting_for_locks(|| async {
                Ok(
                    match self.store.lock_if_open(actor, &token, LOCK_LEASE).await? {
                        Some(IfOpen::NothingOpen) => Some(None),
                        Some(IfOpen::Locked(held)) => Some(Some(held)),
                        None => None,
                    },
                )
            })
            .await?;
        match held {
            None => Ok(None),
            Some(held) => self
                .run_holding(actor, Scope::Record, op, Some((held, token)))
                .await
                .map(Some),
        }
    }

    /// [`Game::run`], its first attempt on `first` (locks taken already, and their token)
    /// when given.
    async fn run_holding(
        &self,
        actor: &UserId,
        scope: Scope,
        op: &Op<'_>,
        mut first: Option<(Locked, String)>,
    ) -> Result<(Outcome, Tx), GameError> {
        let mut players = BTreeSet::from([actor.clone()]);
        let mut sessions: BTreeSet<SessionRef> = BTreeSet::new();
        for _ in 0..MAX_ATTEMPTS {
            let (held, token) = match first.take() {
                Some(given) => given,
                None => {
                    let token = Uuid::new_v4().to_string();
                    let wanted: Vec<UserId> = players.iter().cloned().collect();
                    let hosted: Vec<SessionRef> = sessions.iter().cloned().collect();
                    let held = self
                        .lock_all(&wanted, &hosted, (actor, scope), &token)
                        .await?;
                    (held, token)
                }
            };
            let locked: Vec<UserId> = held.players.keys().cloned().collect();
            let mut tx = Tx::new(self.now(), held.players, held.sessions);
            let ran = self
                .engine
                .settle(&mut tx)
                .and_then(|()| op(&self.engine, &mut tx))
                .and_then(|outcome| self.engine.report_activity(&mut tx).map(|()| outcome));
            match ran {
                Ok(outcome) => {
                    let mut changes = tx.changes();
                    self.sign_events(&mut changes);
                    let committed = self.store.commit(&locked, &token, &changes).await;
                    match committed {
                        Ok(()) => {
                            crate::metrics::record(&tx, &changes);
                            return Ok((outcome, tx));
                        }
                        Err(StoreError::LeaseLost) => {
                            tracing::warn!("lock lease lost before commit; retrying");
                            continue;
                        }
                        Err(err) => {
                            self.release(&locked, &token).await;
                            return Err(err.into());
                        }
                    }
                }
                Err(TxError::Need {
                    players: more_players,
                    sessions: more_sessions,
                }) => {
                    self.release(&locked, &token).await;
                    players.extend(locked);
                    players.extend(more_players);
                    sessions.extend(more_sessions);
                }
            }
        }
        Err(GameError::Busy)
    }

    /// Takes every lock of `players`, and of what the actor's record points
    /// at, at once (the store's all-or-none), waiting (bounded, with jittered
    /// backoff) while another transition holds one.
    async fn lock_all(
        &self,
        players: &[UserId],
        sessions: &[SessionRef],
        predict: (&UserId, Scope),
        token: &str,
    ) -> Result<Locked, GameError> {
        self.waiting_for_locks(|| async {
            Ok(self
                .store
                .lock(players, sessions, Some(predict), token, LOCK_LEASE)
                .await?)
        })
        .await
    }

    /// Tries `take` until it answers `Some` (`None`: another transition holds a lock),
    /// for at most [`LOCK_WAIT`].
    async fn waiting_for_locks<T, F, Fut>(&self, take: F) -> Result<T, GameError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Option<T>, GameError>>,
    {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(1);
        loop {
            if let Some(held) = take().await? {
                return Ok(held);
            }
            if started.elapsed() >= LOCK_WAIT {
                return Err(GameError::Busy);
            }
            // Jitter keeps two transitions that collided from colliding again in step.
            let jitter = rand::random_range(0..=backoff.as_micros() as u64);
            tokio::time::sleep(backoff / 2 + Duration::from_micros(jitter / 2)).await;
            backoff = (backoff * 2).min(Duration::from_millis(20));
        }
    }

    async fn release(&self, players: &[UserId], token: &str) {
        // Best effort: a lock we fail to release expires with its lease.
        if let Err(err) = self.store.unlock(players, token).await {
            tracing::debug!(%err, "releasing locks");
        }
    }
}
