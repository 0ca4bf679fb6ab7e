//! Key names: every key carries one entity's hash tag (`{c.<id>}`, `{u.<user>}` or `{feed.<shard>}`), so it lives in that entity's slot.

use shared_types::UserId;
use uuid::Uuid;

/// The names of every key the store writes, under the configured prefix (the layout is
/// listed in the parent module's doc).
pub(super) struct Keys {
    prefix: String,
}

impl Keys {
    pub(super) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }
    pub(super) fn conversation_meta(&self, id: Uuid) -> String {
        format!("{}:{{c.{id}}}:meta", self.prefix)
    }
    pub(super) fn conversation_messages(&self, id: Uuid) -> String {
        format!("{}:{{c.{id}}}:msgs", self.prefix)
    }
    /// The game sessions announced in the conversation, scored by the `seq` of their message.
    pub(super) fn conversation_games(&self, id: Uuid) -> String {
        format!("{}:{{c.{id}}}:games", self.prefix)
    }
    pub(super) fn user_conversations(&self, user: &UserId) -> String {
        format!("{}:{{u.{user}}}:convs", self.prefix)
    }
    pub(super) fn user_open(&self, user: &UserId) -> String {
        format!("{}:{{u.{user}}}:open", self.prefix)
    }
    pub(super) fn user_contacts(&self, user: &UserId) -> String {
        format!("{}:{{u.{user}}}:contacts", self.prefix)
    }
    pub(super) fn user_blocks(&self, user: &UserId) -> String {
        format!("{}:{{u.{user}}}:blocks", self.prefix)
    }
    pub(super) fn user_presence(&self, user: &UserId) -> String {
        format!("{}:{{u.{user}}}:presence", self.prefix)
    }
    /// The `seq` of the user's newest status change, and the changes not yet known to be in
    /// the presence feed.
    pub(super) fn user_presence_seq(&self, user: &UserId) -> String {
        format!("{}:{{u.{user}}}:presence_seq", self.prefix)
    }
    /// The user's game activity and the `seq` of the newest report applied.
    pub(super) fn user_activity(&self, user: &UserId) -> String {
        format!("{}:{{u.{user}}}:activity", self.prefix)
    }
    /// One shard of the presence feed: a stream of changes.
    pub(super) fn feed_changes(&self, shard: usize) -> String {
        format!("{}:{{feed.{shard}}}:changes", self.prefix)
    }
    /// The newest `seq` appended to that shard per user: a change is appended once, in order.
    pub(super) fn feed_appended(&self, shard: usize) -> String {
        format!("{}:{{feed.{shard}}}:appended", self.prefix)
    }
    pub(super) fn user_events(&self, user: &UserId) -> String {
        format!("{}:{{u.{user}}}:events", self.prefix)
    }
    /// Marks of the events appended to `user`'s stream (a retried fan-out finds its own).
    pub(super) fn user_event_marks(&self, user: &UserId) -> String {
        format!("{}:{{u.{user}}}:event_marks", self.prefix)
    }
    /// Where every replica hears of the events any replica appends.
    pub(super) fn events_channel(&self) -> String {
        format!("{}:events", self.prefix)
    }
}
