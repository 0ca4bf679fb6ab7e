//! The memory store's event streams: read back from each user's buffer, relayed in-process.

use async_trait::async_trait;
use service_kit::events::{EventLog, Relayed, StoredEvent};
use shared_types::{UserId, im::ImEvent};
use tokio::sync::broadcast;

use super::MemoryStore;
use crate::store::StoreError;

#[async_trait]
impl EventLog<ImEvent> for MemoryStore {
    type Error = StoreError;

    async fn events_after(
        &self,
        user: &UserId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredEvent<ImEvent>>, StoreError> {
        Ok(self
            .state()
            .events_of(user)
            .map(|events| events.after(after, limit))
            .unwrap_or_default())
    }

    fn subscribe(&self) -> broadcast::Receiver<Relayed<ImEvent>> {
        self.feed.subscribe()
    }
}
