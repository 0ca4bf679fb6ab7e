//! Expiry jobs: members of sorted sets by due time, spread over [`JOB_SHARDS`] shards (each its own slot on a cluster), claimed with a lease.

use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::AsyncCommands;

use super::{
    RedisStore,
    keys::JOB_SHARDS,
    plan::millis,
    replies::{corrupt, from_redis},
};
use crate::{domain::records::ExpiryJob, store::StoreResult};

impl RedisStore {
    /// [`crate::store::Store::claim_due`]: one `claim.lua` call per shard until `limit`.
    pub(super) async fn claim_jobs(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease: Duration,
    ) -> StoreResult<Vec<ExpiryJob>> {
        let mut claimed = Vec::new();
        for shard in 0..JOB_SHARDS {
            if claimed.len() >= limit {
                break;
            }
            let members: Vec<String> = self
                .scripts
                .claim
                .key(&self.keys.jobs(shard).name)
                .arg(now.timestamp_millis())
                .arg(millis(lease))
                .arg(limit - claimed.len())
                .invoke_async(&mut self.conn())
                .await
                .map_err(from_redis)?;
            for member in members {
                match serde_json::from_str::<ExpiryJob>(&member) {
                    Ok(job) => claimed.push(job),
                    Err(err) => tracing::warn!(%err, member, "skipping an undecodable job"),
                }
            }
        }
        Ok(claimed)
    }

    /// [`crate::store::Store::finish_jobs`].
    pub(super) async fn remove_jobs(&self, jobs: &[ExpiryJob]) -> StoreResult<()> {
        let mut by_shard: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for job in jobs {
            let member = serde_json::to_string(job).map_err(|e| corrupt(e, "a job"))?;
            by_shard
                .entry(self.keys.jobs_for(job).name)
                .or_default()
                .push(member);
        }
        // One ZREM per shard (each its own slot on a cluster), all at once.
        let removals = by_shard.into_iter().map(|(key, members)| {
            let mut conn = self.conn();
            async move { conn.zrem::<_, _, i64>(key, members).await }
        });
        for removed in futures_util::future::join_all(removals).await {
            removed.map_err(from_redis)?;
        }
        Ok(())
    }

    /// [`crate::store::Store::due_count`].
    pub(super) async fn count_due_jobs(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        // One ZCOUNT per shard (each its own slot on a cluster), like `claim_due`.
        let mut due = 0;
        for shard in 0..JOB_SHARDS {
            let count: u64 = self
                .conn()
                .zcount(&self.keys.jobs(shard).name, "-inf", now.timestamp_millis())
                .await
                .map_err(from_redis)?;
            due += count;
        }
        Ok(due)
    }
}
