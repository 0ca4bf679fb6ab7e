//! IM events in Redis: each user's stream in their own slot, appended (once, however often a
//! fan-out is retried) after the change it tells of, read back and relayed by service-kit.

use futures_util::future::try_join_all;
use shared_types::{UserId, im::ImEvent, presence::Presence};

use super::RedisStore;
use crate::store::StoreError;

/// How long a user's events stay replayable after their newest (as the game's).
pub(super) const EVENTS_TTL_MS: u64 = 3_600_000;

impl RedisStore {
    /// Appends `event` to each of `users`' streams, each once: `mark` names the event (the
    /// same mark on a retry writes nothing). One script per user, all at once.
    pub(super) async fn notify<'a>(
        &self,
        users: impl IntoIterator<Item = &'a UserId>,
        event: &ImEvent,
        mark: &str,
    ) -> Result<(), StoreError> {
        let json = encode(event)?;
        let now_ms = chrono::Utc::now().timestamp_millis().to_string();
        try_join_all(users.into_iter().map(|user| {
            let keys = [
                self.keys.user_events(user),
                self.keys.user_event_marks(user),
            ];
            let mut args = self.event_args(user, &json);
            args.extend([now_ms.clone(), mark.to_owned()]);
            async move {
                self.invoke::<i64>("appending an event", &self.scripts.notify, &keys, &args)
                    .await
            }
        }))
        .await
        .map(drop)
    }

    /// Tells `user`'s contacts (who may see their presence) that it changed, but for those
    /// `user` blocks and those who block `user`.
    pub(super) async fn notify_presence(&self, presence: &Presence) -> Result<(), StoreError> {
        let user = &presence.user_id;
        let contacts: Vec<String> = self
            .run("reading contacts", |mut conn| {
                let key = self.keys.user_contacts(user);
                async move { redis::cmd("SMEMBERS").arg(key).query_async(&mut conn).await }
            })
            .await?;
        if contacts.is_empty() {
            return Ok(());
        }
        let blocked: Vec<String> = self
            .whole_sorted_set("reading blocks", &self.keys.user_blocks(user), false)
            .await?;
        let json = encode(&ImEvent::Presence(presence.clone()))?;
        let watchers = contacts
            .iter()
            .filter(|contact| !blocked.contains(contact))
            .filter_map(|contact| UserId::parse(contact).ok());
        try_join_all(watchers.map(|watcher| {
            let keys = [
                self.keys.user_events(&watcher),
                self.keys.user_blocks(&watcher),
            ];
            let mut args = self.event_args(&watcher, &json);
            args.push(user.to_string());
            async move {
                self.invoke::<i64>(
                    "appending a presence event",
                    &self.scripts.notify_presence,
                    &keys,
                    &args,
                )
                .await
            }
        }))
        .await
        .map(drop)
    }

    fn event_args(&self, user: &UserId, json: &str) -> Vec<String> {
        vec![
            user.to_string(),
            json.to_owned(),
            service_kit::events::EVENTS_KEPT.to_string(),
            EVENTS_TTL_MS.to_string(),
            self.keys.events_channel(),
        ]
    }
}

fn encode(event: &ImEvent) -> Result<String, StoreError> {
    serde_json::to_string(event)
        .map_err(|err| StoreError::Unexpected(anyhow::Error::new(err).context("encoding an event")))
}
