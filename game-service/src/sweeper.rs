//! The expiry sweeper: each replica claims due expiry jobs and runs them, and finishes commits left half-way.

use std::{sync::Arc, time::Duration};

use futures_util::{StreamExt, stream};

use crate::{domain::records::ExpiryJob, game::Game, metrics};

/// Jobs one sweep claims; the rest wait for the next sweep.
const SWEEP_BATCH: usize = 256;
/// Jobs of a sweep run at once: each is a transition of its own players, so they wait on
/// Redis side by side (one at a time, a replica drained ~300 jobs/s, bound by round trips).
const SWEEP_CONCURRENCY: usize = 32;
/// A claimed job not finished within this lease is handed out again.
const JOB_LEASE: Duration = Duration::from_secs(30);
/// A commit prepared this long ago and not finished is orphaned: its writer's
/// locks (a 2 s lease, on which each of its writes is fenced) are gone, with
/// room to spare for replicas' clocks that disagree a little. Finishing one
/// too early is harmless anyway: its writer's locks keep the sweep out.
pub const ORPHANED_AFTER: Duration = Duration::from_secs(5);
/// Orphaned commits one sweep claims.
const ORPHAN_BATCH: usize = 64;

/// Claims due expiry jobs from the store (each goes to exactly one replica) and runs them.
pub async fn sweep_expiries(game: Arc<Game>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // A full claim left more due: the next sweep goes at once, not a tick later.
        while sweep(&game, SWEEP_BATCH)
            .await
            .is_some_and(|backlog| backlog > SWEEP_BATCH as u64)
        {}
    }
}

/// One sweep: finishes orphaned commits, claims up to `batch` due jobs,
/// records the backlog it found (`game_expiry_backlog`) and runs the jobs.
/// Returns that backlog, `None` when the store could not tell.
pub async fn sweep(game: &Game, batch: usize) -> Option<u64> {
    let now = game.now();
    finish_orphans(game, now).await;
    let jobs = match game.store().claim_due(now, batch, JOB_LEASE).await {
        Ok(jobs) => jobs,
        Err(err) => {
            metrics::count_store_failure(&err);
            tracing::debug!(%err, "cannot claim expiry jobs now");
            return None;
        }
    };
    let backlog = backlog(game, now, jobs.len(), batch).await;
    if let Some(backlog) = backlog {
        metrics::EXPIRY_BACKLOG.set(i64::try_from(backlog).unwrap_or(i64::MAX));
    }
    // Activity reports go out together: one call to the IM service for the whole sweep.
    let (activity, jobs): (Vec<ExpiryJob>, Vec<ExpiryJob>) = jobs
        .into_iter()
        .partition(|job| matches!(job, ExpiryJob::Activity { .. }));
    if !activity.is_empty() {
        match game.report_activity(&activity).await {
            Ok(()) => finish(game, &activity).await,
            Err(err) => {
                metrics::count_failure(&err);
                tracing::warn!(%err, "activity reports failed; retried after their lease");
            }
        }
    }
    let done: Vec<ExpiryJob> = stream::iter(jobs)
        .map(|job| async move {
            match game.expire(&job).await {
                Ok(()) => Some(job),
                Err(err) => {
                    metrics::count_failure(&err);
                    tracing::warn!(%err, ?job, "expiry failed; retried after its lease");
                    None
                }
            }
        })
        .buffer_unordered(SWEEP_CONCURRENCY)
        .filter_map(|done| async move { done })
        .collect()
        .await;
    finish(game, &done).await;
    backlog
}

/// Finishes the commits left half-way before `now - ORPHANED_AFTER`
/// (`game_orphaned_commits_finished_total`). On a cluster one store call per
/// job shard when there are none; elsewhere none at all.
async fn finish_orphans(game: &Game, now: chrono::DateTime<chrono::Utc>) {
    let before = chrono::Duration::from_std(ORPHANED_AFTER)
        .ok()
        .and_then(|age| now.checked_sub_signed(age))
        .unwrap_or(now);
    match game
        .store()
        .finish_orphaned_intents(before, ORPHAN_BATCH)
        .await
    {
        Ok(swept) => {
            metrics::count_orphan_sweep(&swept);
            if swept.rolled_forward + swept.aborted > 0 {
                tracing::info!(?swept, "finished orphaned commits");
            }
        }
        Err(err) => {
            metrics::count_store_failure(&err);
            tracing::debug!(%err, "cannot look for orphaned commits now");
        }
    }
}

/// Removes the jobs that ran, all at once (one call per job shard).
async fn finish(game: &Game, jobs: &[ExpiryJob]) {
    if jobs.is_empty() {
        return;
    }
    if let Err(err) = game.store().finish_jobs(jobs).await {
        metrics::count_store_failure(&err);
        tracing::warn!(%err, "finishing jobs; they will run again (harmlessly)");
    }
}

/// The jobs due at `now` and not yet run: the `claimed` ones plus those the
/// claim left. A claim that came back short took every due job, so the store
/// is asked for the rest only when it came back full (a quiet sweep costs no
/// extra round trip).
async fn backlog(
    game: &Game,
    now: chrono::DateTime<chrono::Utc>,
    claimed: usize,
    batch: usize,
) -> Option<u64> {
    let claimed = u64::try_from(claimed).unwrap_or(u64::MAX);
    if claimed < u64::try_from(batch).unwrap_or(u64::MAX) {
        return Some(claimed);
    }
    match game.store().due_count(now).await {
        Ok(left) => Some(claimed.saturating_add(left)),
        Err(err) => {
            metrics::count_store_failure(&err);
            tracing::debug!(%err, "cannot count the expiry backlog now");
            None
        }
    }
}

#[cfg(test)]
#[expect(clippy::expect_used, reason = "tests")]
mod tests {
    use async_trait::async_trait;
    use chrono::Utc;
    use shared_types::UserId;
    use uuid::Uuid;

    use super::*;
    use crate::{
        domain::{
            engine::{Engine, Partners},
            records::{ExpiryJob, ScheduledJob},
            tx::Changes,
        },
        game::SystemClock,
        im_client::ImService,
        join_tokens::{JoinTokens, KeySource},
        store::{Store, memory::MemoryStore},
    };

    struct Nobody;

    #[async_trait]
    impl ImService for Nobody {
        async fn partners(&self, _: &UserId) -> Partners {
            Partners::Found(Vec::new())
        }

        async fn announce(
            &self,
            _: Uuid,
            _: &str,
            _: &shared_types::im::GameAnnouncement,
        ) -> Result<(), crate::im_client::DeliveryError> {
            Ok(())
        }

        async fn report_activity(
            &self,
            _: &[shared_types::activity::ActivityReport],
        ) -> Result<(), crate::im_client::DeliveryError> {
            Ok(())
        }

        async fn presence_changes(
            &self,
            after: Option<&str>,
            _: usize,
        ) -> Result<shared_types::activity::PresenceChanges, crate::im_client::DeliveryError>
        {
            Ok(shared_types::activity::PresenceChanges {
                changes: Vec::new(),
                next: after.unwrap_or_default().to_owned(),
            })
        }
    }

    fn game_on(store: &Arc<dyn Store>) -> Game {
        let tokens = JoinTokens::new(&KeySource::default(), "test", Duration::from_secs(60))
            .expect("an ephemeral key");
        Game::new(
            store.clone(),
            Engine::new(chrono::Duration::seconds(60)),
            Arc::new(Nobody),
            Arc::new(SystemClock),
            Arc::new(tokens),
        )
    }

    /// `n` invite expiries due now, for prompts nobody holds: each runs and changes nothing.
    async fn due_invites(store: &Arc<dyn Store>, n: usize) {
        let jobs = (0..n)
            .map(|i| ScheduledJob {
                job: ExpiryJob::Invite {
                    player: UserId::parse(&format!("p{i}")).expect("valid"),
                    prompt_id: Uuid::new_v4(),
                },
                due: Utc::now(),
            })
            .collect();
        let changes = Changes {
            jobs,
            ..Changes::default()
        };
        store.commit(&[], "t", &changes).await.expect("scheduled");
    }

    #[tokio::test]
    async fn the_backlog_is_what_is_due_claimed_or_not_and_shrinks_as_sweeps_run_it() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let game = game_on(&store);
        due_invites(&store, 5).await;

        assert_eq!(sweep(&game, 2).await, Some(5), "2 claimed + 3 waiting");
        assert_eq!(sweep(&game, 2).await, Some(3), "the first two ran");
        assert_eq!(sweep(&game, 2).await, Some(1), "a short claim took all");
        assert_eq!(sweep(&game, 2).await, Some(0));
    }

    /// More due than one claim takes: the sweeps follow each other at once instead of a
    /// tick apart (the tick here is an hour: only the first sweep waits for nothing).
    #[tokio::test]
    async fn a_backlog_larger_than_a_claim_is_swept_without_waiting_for_the_next_tick() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let game = Arc::new(game_on(&store));
        due_invites(&store, 3 * SWEEP_BATCH + 10).await;
        let sweeper = tokio::spawn(sweep_expiries(game, Duration::from_secs(3600)));
        let drained = tokio::time::timeout(Duration::from_secs(60), async {
            while store.due_count(Utc::now()).await.expect("counted") > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        sweeper.abort();
        assert!(drained.is_ok(), "jobs were left for the next tick");
    }
}
