//! Blocks: blocking (the limit checked in the same script), unblocking and listing a user's blocks.

use anyhow::Context;
use chrono::{DateTime, Utc};
use redis::Cmd;
use shared_types::{UserId, im::Block};

use super::{
    RedisStore,
    values::{from_millis, millis, score_millis},
};
use crate::store::{BlockOutcome, StoreError};

/// The command that asks whether `blocker` blocks `blocked`: since when (a score) if so, nil
/// if not.
pub(super) fn lookup(store: &RedisStore, blocker: &UserId, blocked: &UserId) -> Cmd {
    let mut cmd = redis::cmd("ZSCORE");
    cmd.arg(store.keys.user_blocks(blocker))
        .arg(blocked.as_str());
    cmd
}

pub(super) async fn block(
    store: &RedisStore,
    blocker: &UserId,
    blocked: &UserId,
    at: DateTime<Utc>,
) -> Result<BlockOutcome, StoreError> {
    let outcome: i64 = store
        .invoke(
            "blocking a user",
            &store.scripts.block,
            &[store.keys.user_blocks(blocker)],
            &[
                blocked.to_string(),
                millis(at).to_string(),
                store.retention_ms.to_string(),
                store.limits.max_blocks.to_string(),
            ],
        )
        .await?;
    Ok(match outcome {
        0 => BlockOutcome::Blocked,
        1 => BlockOutcome::AlreadyBlocked,
        _ => BlockOutcome::Limit,
    })
}

pub(super) async fn unblock(
    store: &RedisStore,
    blocker: &UserId,
    blocked: &UserId,
) -> Result<(), StoreError> {
    store
        .invoke::<i64>(
            "unblocking a user",
            &store.scripts.unblock,
            &[store.keys.user_blocks(blocker)],
            &[blocked.to_string(), store.retention_ms.to_string()],
        )
        .await
        .map(drop)
}

/// The users `blocker` blocks, newest block first.
pub(super) async fn list(store: &RedisStore, blocker: &UserId) -> Result<Vec<Block>, StoreError> {
    let entries: Vec<(String, f64)> = store
        .whole_sorted_set("listing blocks", &store.keys.user_blocks(blocker), true)
        .await?;
    let mut blocks = entries
        .into_iter()
        .map(|(user, score)| {
            Ok(Block {
                user_id: UserId::parse(&user)
                    .with_context(|| format!("a blocked user id {user:?}"))?,
                blocked_at: from_millis(score_millis(score))?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    crate::store::newest_block_first(&mut blocks);
    Ok(blocks)
}
