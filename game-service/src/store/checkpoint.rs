//! Where the game service stands in the IM service's presence feed: one cursor, moved by
//! whichever replica holds the feed's lease (so one replica follows the feed at a time, and
//! another takes over, from the cursor, when it dies).

use std::time::Duration;

use async_trait::async_trait;

use super::StoreResult;

#[async_trait]
pub trait FeedCheckpoint: Send + Sync {
    /// Takes the lease for `holder`, or renews it; `false` while another holder has it.
    async fn hold_feed(&self, holder: &str, lease: Duration) -> StoreResult<bool>;

    /// The cursor after the last change applied; `None` before the first.
    async fn feed_cursor(&self) -> StoreResult<Option<String>>;

    /// Moves the cursor if `holder` still holds the lease (`false`, and nothing moved, if not).
    async fn save_feed_cursor(&self, holder: &str, cursor: &str) -> StoreResult<bool>;
}
