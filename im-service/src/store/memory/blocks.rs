//! The memory store's blocks: putting one (limit checked in the same critical section) and listing them.

use chrono::{DateTime, Utc};
use shared_types::{UserId, im::Block};

use super::MemoryStore;
use crate::store::BlockOutcome;

impl MemoryStore {
    /// [`crate::store::Store::block`].
    pub(super) fn put_block(
        &self,
        blocker: &UserId,
        blocked: &UserId,
        at: DateTime<Utc>,
    ) -> BlockOutcome {
        let mut state = self.state();
        let blocks = state.blocks.entry(blocker.clone()).or_default();
        if blocks.contains_key(blocked) {
            return BlockOutcome::AlreadyBlocked;
        }
        if blocks.len() >= self.limits.max_blocks {
            return BlockOutcome::Limit;
        }
        blocks.insert(blocked.clone(), at);
        BlockOutcome::Blocked
    }

    /// [`crate::store::Store::blocks`]: newest first.
    pub(super) fn list_blocks(&self, blocker: &UserId) -> Vec<Block> {
        let mut found: Vec<Block> = self
            .state()
            .blocks
            .get(blocker)
            .into_iter()
            .flatten()
            .map(|(user_id, at)| Block {
                user_id: user_id.clone(),
                blocked_at: *at,
            })
            .collect();
        crate::store::newest_block_first(&mut found);
        found
    }
}
