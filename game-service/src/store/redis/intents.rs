//! The listing of two-phase transactions under way, and the sweep that finishes those whose writer left them unfinished (see the protocol in the [`super`] module's documentation).
//!
//! A transaction is listed in one job shard's slot (`{jobs.<n>}:intents`, `n`
//! from its id), scored by when it was prepared, before any slot holds all of
//! its intents, and unlisted once it is complete: by its writer after the last
//! group, or by whoever recovered it. A script may touch one slot only, so the
//! listing is a call of its own; it goes out together with the first prepare
//! when there are more (a transaction is decided only once its last slot is
//! prepared, which waits for both), else before it.
//!
//! A sweep claims the listings prepared before a given time (older than any
//! lease their writer held) and, for each, locks its players one by one as the
//! next transition would: the first whose slot still holds the intent runs the
//! ordinary recovery (roll forward or abort) under that lock. A listing whose
//! intents are all gone is dropped. A busy player defers the listing to a later
//! sweep (whoever holds that lock recovers the transaction on the way anyway).

use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use shared_types::UserId;
use uuid::Uuid;

use super::{
    RedisStore,
    keys::JOB_SHARDS,
    locks::LockReply,
    plan::{INTENT_TTL, millis},
    replies::{corrupt, from_redis_while},
    two_phase::{RECOVERY_LEASE, Recovered},
};
use crate::store::{OrphanSweep, StoreResult};

/// A listing a sweep claimed is handed out again after this long (its players
/// were busy, or the sweep failed or died with it).
const CLAIM_LEASE: Duration = Duration::from_secs(10);

/// Where a transaction is listed: the shard's sorted set and the member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    pub key: String,
    pub member: String,
}

/// A listing's member: the transaction and the players whose slots get its intent.
#[derive(Serialize, Deserialize)]
struct Listed {
    tx: String,
    players: Vec<UserId>,
}

/// What became of a listing a sweep claimed.
pub(super) enum Orphan {
    /// Its intent was found and the transaction recovered.
    Finished(Recovered),
    /// No slot held its intent any more: only the listing was left.
    Gone,
    /// One of its players was locked by someone else.
    Busy,
}

impl RedisStore {
    /// Where transaction `tx` of `players` is to be listed.
    pub(super) fn listing(&self, tx: &str, players: &[UserId]) -> StoreResult<Listing> {
        let listed = Listed {
            tx: tx.to_owned(),
            players: players.to_vec(),
        };
        Ok(Listing {
            key: self.keys.intents_for(tx).name,
            member: serde_json::to_string(&listed).map_err(|e| corrupt(e, "a listing"))?,
        })
    }

    /// Lists a transaction, as prepared now (this replica's clock).
    pub(super) async fn list(&self, listing: &Listing) -> StoreResult<()> {
        self.scripts
            .list
            .key(&listing.key)
            .arg(Utc::now().timestamp_millis())
            .arg(&listing.member)
            .arg(millis(INTENT_TTL))
            .invoke_async::<i64>(&mut self.conn())
            .await
            .map_err(from_redis_while("listing a two-phase commit"))?;
        Ok(())
    }

    pub(super) async fn unlist(&self, listing: &Listing) -> StoreResult<()> {
        let _: i64 = self
            .conn()
            .zrem(&listing.key, &listing.member)
            .await
            .map_err(from_redis_while("unlisting a two-phase commit"))?;
        Ok(())
    }

    /// [`crate::store::Store::finish_orphaned_intents`]: one read per job
    /// shard; where it finds listings due, a claim, then each claimed one.
    pub(super) async fn sweep_intents(
        &self,
        prepared_before: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<OrphanSweep> {
        let mut swept = OrphanSweep::default();
        if !self.two_phase {
            // One atomic call per commit: no intents, nothing listed.
            return Ok(swept);
        }
        let mut claimed = 0;
        for shard in 0..JOB_SHARDS {
            if claimed >= limit {
                break;
            }
            let key = self.keys.intents(shard).name;
            let before = prepared_before.timestamp_millis();
            let due: Vec<String> = self
                .conn()
                .zrangebyscore_limit(&key, "-inf", before, 0, 1)
                .await
                .map_err(from_redis_while("looking for orphaned two-phase commits"))?;
            if due.is_empty() {
                continue;
            }
            let members: Vec<String> = self
                .scripts
                .claim
                .key(&key)
                .arg(before)
                .arg(millis(CLAIM_LEASE))
                .arg(limit - claimed)
                .invoke_async(&mut self.conn())
                .await
                .map_err(from_redis_while("claiming orphaned two-phase commits"))?;
            claimed += members.len();
            for member in members {
                let listing = Listing {
                    key: key.clone(),
                    member,
                };
                match self.finish_orphan(&listing).await {
                    Ok(Orphan::Finished(Recovered::RolledForward)) => swept.rolled_forward += 1,
                    Ok(Orphan::Finished(Recovered::Aborted)) => swept.aborted += 1,
                    Ok(Orphan::Gone) => swept.cleared += 1,
                    Ok(Orphan::Busy) => swept.deferred += 1,
                    Err(err) => {
                        tracing::warn!(%err, listing = listing.member, "finishing an orphaned commit; retried after its claim");
                        swept.failed.push(err);
                    }
                }
            }
        }
        Ok(swept)
    }

    pub(super) async fn finish_orphan(&self, listing: &Listing) -> StoreResult<Orphan> {
        let listed: Listed = match serde_json::from_str(&listing.member) {
            Ok(listed) => listed,
            Err(err) => {
                tracing::warn!(%err, listing = listing.member, "dropping an undecodable listing");
                self.unlist(listing).await?;
                return Ok(Orphan::Gone);
            }
        };
        let token = format!("sweep-{}", Uuid::new_v4());
        let mut players = listed.players;
        players.sort();
        players.dedup();
        // Once we held a player's lock, its writer can never prepare that slot
        // again (prepares are fenced on the writer's lock): a slot seen without
        // the intent stays without it.
        for player in &players {
            match self.lock_one(player, &[], &token, RECOVERY_LEASE).await? {
                LockReply::Busy => return Ok(Orphan::Busy),
                LockReply::Taken {
                    intent: Some(tx), ..
                } if tx == listed.tx => {
                    tracing::info!(tx, "a sweep found an orphaned commit");
                    let recovered = self.recover(player, &tx, &token).await;
                    if let Err(err) = self.unlock_one(player, &token).await {
                        tracing::debug!(%err, "releasing a sweep's lock; it expires anyway");
                    }
                    return recovered.map(Orphan::Finished);
                }
                LockReply::Taken { .. } => self.unlock_one(player, &token).await?,
            }
        }
        self.unlist(listing).await?;
        Ok(Orphan::Gone)
    }

    /// How many transactions are listed (tests: none once every commit is finished).
    #[doc(hidden)]
    pub async fn listed_intents(&self) -> StoreResult<u64> {
        let mut listed = 0;
        for shard in 0..JOB_SHARDS {
            let count: u64 = self
                .conn()
                .zcard(&self.keys.intents(shard).name)
                .await
                .map_err(from_redis_while("counting listed two-phase commits"))?;
            listed += count;
        }
        Ok(listed)
    }
}
