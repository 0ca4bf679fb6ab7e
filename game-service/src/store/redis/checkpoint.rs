//! The presence-feed checkpoint on Redis: a lease and a cursor in one slot (`{feed}`).

use std::time::Duration;

use async_trait::async_trait;
use redis::{AsyncCommands, Script};

use super::{RedisStore, plan::millis, replies::from_redis};
use crate::store::{FeedCheckpoint, StoreResult};

/// The cursor outlives any outage worth resuming from; every save renews it.
const CURSOR_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

const HOLD: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0";

const SAVE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1";

#[async_trait]
impl FeedCheckpoint for RedisStore {
    async fn hold_feed(&self, holder: &str, lease: Duration) -> StoreResult<bool> {
        let held: i64 = Script::new(HOLD)
            .key(self.keys.feed_lease().name)
            .arg(holder)
            .arg(millis(lease))
            .invoke_async(&mut self.conn())
            .await
            .map_err(from_redis)?;
        Ok(held == 1)
    }

    async fn feed_cursor(&self) -> StoreResult<Option<String>> {
        self.conn()
            .get(self.keys.feed_cursor().name)
            .await
            .map_err(from_redis)
    }

    async fn save_feed_cursor(&self, holder: &str, cursor: &str) -> StoreResult<bool> {
        let saved: i64 = Script::new(SAVE)
            .key(self.keys.feed_lease().name)
            .key(self.keys.feed_cursor().name)
            .arg(holder)
            .arg(cursor)
            .arg(millis(CURSOR_TTL))
            .invoke_async(&mut self.conn())
            .await
            .map_err(from_redis)?;
        Ok(saved == 1)
    }
}
