//! IM events in Redis: each user's stream in their own slot, appended (once, however often a
//! fan-out is retried) after the change it tells of, read back and relayed by service-kit.
//!
//! A fan-out that fails does not fail the request: the change is stored, and answering 503
//! would make the client retry it (a second message, a second conversation). It is logged
//! and counted (`im_events_unsent_total`); clients read their views again when their stream
//! (re)opens.

use redis::Script;
use shared_types::{UserId, im::ImEvent, presence::Presence};

use super::{RedisStore, commands::ScriptCall};
use crate::store::StoreError;

/// How long a user's events stay replayable after their newest (as the game's).
pub(super) const EVENTS_TTL_MS: u64 = 3_600_000;

impl RedisStore {
    /// Appends `event` to each of `users`' streams, each once: `mark` names the event (the
    /// same mark on a retry writes nothing). One script per user, all in one batch.
    pub(super) async fn notify<'a>(
        &self,
        users: impl IntoIterator<Item = &'a UserId>,
        event: &ImEvent,
        mark: &str,
    ) {
        let Ok(json) = encode(event) else {
            return unsent("encoding an event");
        };
        let now_ms = chrono::Utc::now().timestamp_millis().to_string();
        let calls = users
            .into_iter()
            .map(|user| {
                let keys = vec![
                    self.keys.user_events(user),
                    self.keys.user_event_marks(user),
                ];
                let mut args = self.event_args(user, &json);
                args.extend([now_ms.clone(), mark.to_owned()]);
                (keys, args)
            })
            .collect();
        if let Err(err) = self
            .fan_out("appending an event", &self.scripts.notify, calls)
            .await
        {
            tracing::warn!(%err, mark, "an event was not appended (the change it tells of was)");
            unsent("appending an event");
        }
    }

    /// Tells `watchers` (the contacts `user` does not block, read with the change) that
    /// `presence` changed, but for those who block `user` (checked in each watcher's slot).
    pub(super) async fn notify_presence(&self, presence: &Presence, watchers: &[String]) {
        self.notify_presences(&[(presence.clone(), watchers.to_vec())])
            .await;
    }

    /// [`RedisStore::notify_presence`] for several changes at once, in one batch: each of
    /// different users (one user's changes in order go in successive batches).
    pub(super) async fn notify_presences(&self, told: &[(Presence, Vec<String>)]) {
        let mut calls = Vec::new();
        for (presence, watchers) in told {
            let Ok(json) = encode(&ImEvent::Presence(presence.clone())) else {
                return unsent("encoding an event");
            };
            calls.extend(
                watchers
                    .iter()
                    .filter_map(|watcher| UserId::parse(watcher).ok())
                    .map(|watcher| {
                        let keys = vec![
                            self.keys.user_events(&watcher),
                            self.keys.user_blocks(&watcher),
                        ];
                        let mut args = self.event_args(&watcher, &json);
                        args.push(presence.user_id.to_string());
                        (keys, args)
                    }),
            );
        }
        if let Err(err) = self
            .fan_out(
                "appending a presence event",
                &self.scripts.notify_presence,
                calls,
            )
            .await
        {
            tracing::warn!(%err, "a presence event was not appended (the change was)");
            unsent("appending a presence event");
        }
    }

    /// Runs `script` once per `(keys, args)`, each in its own slot, all in one batch
    /// ([`RedisStore::invoke_each`]).
    async fn fan_out(
        &self,
        doing: &'static str,
        script: &Script,
        calls: Vec<ScriptCall>,
    ) -> Result<(), StoreError> {
        if calls.is_empty() {
            return Ok(());
        }
        self.invoke_each(doing, script, &calls).await.map(drop)
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

/// Counts events a fan-out could not append.
fn unsent(doing: &str) {
    tracing::debug!(doing, "event not appended");
    crate::metrics::EVENTS_UNSENT.inc();
}
