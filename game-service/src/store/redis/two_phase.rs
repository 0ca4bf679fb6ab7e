//! The cluster's two-phase commit with roll-forward (the protocol is in the [`super`] module's documentation): prepare, apply, recovery of an interrupted transaction or its abort, and the simulated crashes tests interrupt it with.

use std::time::Duration;

use redis::AsyncCommands;
use shared_types::UserId;

use super::{
    RedisStore,
    intents::{Listing, Orphan},
    locks::LockReply,
    plan::{Group, INTENT_TTL, TwoPhasePlan, millis},
    replies::{corrupt, from_redis},
};
use crate::store::{StoreError, StoreResult};

/// How long recovery waits for the locks of an interrupted transaction.
const RECOVERY_WAIT: Duration = Duration::from_secs(3);
pub(super) const RECOVERY_LEASE: Duration = Duration::from_secs(5);

/// How a recovery finished an interrupted transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Recovered {
    /// Every slot was prepared: every group is applied now.
    RolledForward,
    /// Some slot never was: the intents are gone and nothing was applied.
    Aborted,
}

/// Where a simulated replica death interrupts the next two-phase commit (tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// After preparing this many players' slots.
    AfterPrepared(usize),
    /// After applying this many groups.
    AfterApplied(usize),
    /// After applying all groups but this many (none: before the transaction
    /// is unlisted).
    AppliedAllBut(usize),
    /// Not a crash: once every slot is prepared the locks' lease runs out (a
    /// commit slowed by a failover), and the commit goes on without it.
    LeaseExpiresWhenDecided,
}

impl RedisStore {
    /// Makes the next two-phase commit stop at `point` as if the replica died:
    /// its locks are released (as their lease would run out) and it fails.
    #[doc(hidden)]
    pub fn crash_next_commit_at(&self, point: CrashPoint) {
        if let Ok(mut crash) = self.crash.lock() {
            *crash = Some(point);
        }
    }

    async fn crash_here(
        &self,
        point: CrashPoint,
        locked: &[UserId],
        token: &str,
    ) -> StoreResult<()> {
        let armed = self
            .crash
            .lock()
            .ok()
            .and_then(|mut c| c.take_if(|p| *p == point));
        if armed.is_none() {
            return Ok(());
        }
        for player in locked {
            self.unlock_one(player, token).await?;
        }
        if point == CrashPoint::LeaseExpiresWhenDecided {
            return Ok(());
        }
        Err(StoreError::Unavailable(anyhow::anyhow!(
            "simulated crash at {point:?}"
        )))
    }

    pub(super) async fn commit_two_phase(
        &self,
        locked: &[UserId],
        token: &str,
        groups: Vec<Group>,
    ) -> StoreResult<()> {
        let listing = match locked {
            [] => None,
            _ => Some(self.listing(token, locked)?),
        };
        let plan = TwoPhasePlan {
            tx: token.to_owned(),
            players: locked.to_vec(),
            groups,
            listing,
        };
        let encoded = serde_json::to_string(&plan).map_err(|e| corrupt(e, "a plan"))?;
        for (i, player) in locked.iter().enumerate() {
            self.crash_here(CrashPoint::AfterPrepared(i), locked, token)
                .await?;
            let prepare = self.prepare_one(player, token, &encoded);
            let prepared = match (i, &plan.listing) {
                // Listed before the last slot is prepared (the one that decides).
                (0, Some(listing)) if locked.len() > 1 => {
                    let (listed, prepared) =
                        futures_util::future::join(self.list(listing), prepare).await;
                    listed.and(prepared)
                }
                (0, Some(listing)) => match self.list(listing).await {
                    Ok(()) => prepare.await,
                    Err(err) => Err(err),
                },
                _ => prepare.await,
            };
            if let Err(err) = prepared {
                // Not decided yet: undo the intents written so far (recovery
                // would too); a listing left behind is dropped by a sweep.
                if let Err(abort) = self.abort(&locked[..=i], token).await {
                    tracing::warn!(%abort, "aborting a two-phase commit; recovery will");
                }
                return Err(err);
            }
        }
        // Decided: every group is applied now or, if we die, by recovery.
        self.crash_here(CrashPoint::LeaseExpiresWhenDecided, locked, token)
            .await?;
        let mut complete = true;
        let count = plan.groups.len();
        for (i, group) in plan.groups.iter().enumerate() {
            self.crash_here(CrashPoint::AfterApplied(i), locked, token)
                .await?;
            self.crash_here(CrashPoint::AppliedAllBut(count - i), locked, token)
                .await?;
            match self.apply(group, token).await {
                Ok(()) => {}
                Err(StoreError::LeaseLost) => complete = false,
                Err(err) => return Err(err),
            }
        }
        self.crash_here(CrashPoint::AppliedAllBut(0), locked, token)
            .await?;
        match (complete, &plan.listing) {
            (true, Some(listing)) => {
                if let Err(err) = self.unlist(listing).await {
                    // Committed all the same: a sweep drops a listing whose intents are gone.
                    tracing::warn!(%err, "unlisting a finished two-phase commit; a sweep will");
                }
            }
            // Decided but not all applied: finished here, as a sweep would, before the
            // answer acknowledges it (a read must see what the answer said).
            (false, Some(listing)) => match self.finish_decided(locked, token, listing).await {
                Ok(Orphan::Busy) => tracing::warn!(
                    "a decided commit lost its lease; the next holder of its locks finishes it"
                ),
                Ok(_) => {}
                Err(err) => tracing::warn!(
                    %err,
                    "finishing a decided commit that lost its lease; a sweep will"
                ),
            },
            (_, None) => {}
        }
        Ok(())
    }

    /// Finishes a decided commit some of whose groups were refused for a lost lease: the
    /// locks still ours are let go, then it is recovered as a sweep recovers an orphan.
    async fn finish_decided(
        &self,
        locked: &[UserId],
        token: &str,
        listing: &Listing,
    ) -> StoreResult<Orphan> {
        for player in locked {
            self.unlock_one(player, token).await?;
        }
        self.finish_orphan(listing).await
    }

    async fn prepare_one(&self, player: &UserId, token: &str, plan: &str) -> StoreResult<()> {
        self.scripts
            .prepare
            .key(&self.keys.lock(player).name)
            .key(&self.keys.intent(player).name)
            .key(&self.keys.intent_plan(player).name)
            .arg(token)
            .arg(token)
            .arg(plan)
            .arg(millis(INTENT_TTL))
            .invoke_async::<i64>(&mut self.conn())
            .await
            .map_err(from_redis)?;
        Ok(())
    }

    async fn abort(&self, players: &[UserId], tx: &str) -> StoreResult<()> {
        for player in players {
            self.scripts
                .abort
                .key(&self.keys.intent(player).name)
                .key(&self.keys.intent_plan(player).name)
                .arg(tx)
                .invoke_async::<i64>(&mut self.conn())
                .await
                .map_err(from_redis)?;
        }
        Ok(())
    }

    /// Finishes or aborts the transaction `tx` whose intent sits in `player`'s
    /// slot, and unlists it. `token` already holds `player`'s lock; locks taken
    /// here for the transaction's other players are released again (re-entrant
    /// ones are not). Run by whoever locks such a player, and by a sweep.
    pub(super) async fn recover(
        &self,
        player: &UserId,
        tx: &str,
        token: &str,
    ) -> StoreResult<Recovered> {
        let raw: Option<String> = self
            .conn()
            .get(&self.keys.intent_plan(player).name)
            .await
            .map_err(from_redis)?;
        let Some(raw) = raw else {
            self.abort(std::slice::from_ref(player), tx).await?;
            return Ok(Recovered::Aborted);
        };
        let plan: TwoPhasePlan = serde_json::from_str(&raw).map_err(|e| corrupt(e, "a plan"))?;
        tracing::info!(tx, players = ?plan.players, "recovering an interrupted commit");
        let mut sorted = plan.players.clone();
        sorted.sort();
        let mut taken_here = Vec::new();
        let outcome = self
            .recover_locked(&plan, &sorted, token, &mut taken_here)
            .await;
        for other in &taken_here {
            if let Err(err) = self.unlock_one(other, token).await {
                tracing::debug!(%err, "releasing a recovery lock; it expires anyway");
            }
        }
        if let (Ok(_), Some(listing)) = (&outcome, &plan.listing)
            && let Err(err) = self.unlist(listing).await
        {
            tracing::warn!(%err, "unlisting a recovered commit; a sweep will");
        }
        outcome
    }

    async fn recover_locked(
        &self,
        plan: &TwoPhasePlan,
        sorted: &[UserId],
        token: &str,
        taken_here: &mut Vec<UserId>,
    ) -> StoreResult<Recovered> {
        let started = std::time::Instant::now();
        for other in sorted {
            loop {
                let already_ours: Option<String> = self
                    .conn()
                    .get(&self.keys.lock(other).name)
                    .await
                    .map_err(from_redis)?;
                if already_ours.as_deref() == Some(token) {
                    break;
                }
                if let LockReply::Taken { .. } =
                    self.lock_one(other, &[], token, RECOVERY_LEASE).await?
                {
                    taken_here.push(other.clone());
                    break;
                }
                if started.elapsed() > RECOVERY_WAIT {
                    return Err(StoreError::Contended);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let mut prepared_everywhere = true;
        for other in sorted {
            let tag = format!("p.{other}");
            let prepared: i64 = self
                .scripts
                .check
                .key(&self.keys.intent(other).name)
                .key(&self.keys.applied(&tag, &plan.tx).name)
                .arg(&plan.tx)
                .invoke_async(&mut self.conn())
                .await
                .map_err(from_redis)?;
            prepared_everywhere &= prepared == 1;
        }
        if !prepared_everywhere {
            tracing::info!(
                tx = plan.tx,
                "interrupted commit was not fully prepared: aborted"
            );
            self.abort(sorted, &plan.tx).await?;
            return Ok(Recovered::Aborted);
        }
        for group in &plan.groups {
            // Our token holds every lock now; the original unlock list is not ours to run.
            let mut group = group.clone();
            group.plan.unlock.clear();
            self.apply(&group, token).await?;
        }
        tracing::info!(tx = plan.tx, "interrupted commit rolled forward");
        Ok(Recovered::RolledForward)
    }
}
