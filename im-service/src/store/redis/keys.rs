//! Key names: every key carries one entity's hash tag (`{c.<id>}`, `{u.<user>}` or `{feed.<shard>}`), so it lives in that entity's slot.

use shared_types::UserId;
use uuid::Uuid;

use crate::domain::IdempotencyKey;

/// TTL of an idempotency key's record, in ms: the window from its first request (a day, or the
/// retention when shorter), never refreshed.
pub(super) fn key_window_ms(retention_ms: i64) -> i64 {
    let window = i64::try_from(crate::domain::idempotency::WINDOW.as_millis()).unwrap_or(i64::MAX);
    window.min(retention_ms)
}

/// A client's idempotency key as it goes into a key name: `%`, `{` and `}` escaped, so that
/// the name keeps its one hash tag and two keys never share a name.
fn escaped(key: &IdempotencyKey) -> String {
    key.as_str()
        .replace('%', "%25")
        .replace('{', "%7B")
        .replace('}', "%7D")
}

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
    /// What `sender`'s idempotency key `key` posted in the conversation: the message and what
    /// the request asked (in the conversation's slot, beside what the append writes).
    pub(super) fn conversation_keyed_message(
        &self,
        id: Uuid,
        sender: &UserId,
        key: &IdempotencyKey,
    ) -> String {
        format!(
            "{}:{{c.{id}}}:idem.msg.{sender}:{}",
            self.prefix,
            escaped(key)
        )
    }
    /// The conversation `user`'s idempotency key `key` opened, and what the request asked (in
    /// the creator's slot, beside the open-conversation slot the creation takes).
    pub(super) fn user_keyed_conversation(&self, user: &UserId, key: &IdempotencyKey) -> String {
        format!("{}:{{u.{user}}}:idem.conv:{}", self.prefix, escaped(key))
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

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn a_client_key_keeps_the_one_hash_tag_and_its_own_name() {
        let keys = Keys::new("im");
        let alice = UserId::parse("alice").unwrap();
        let key = |raw: &str| IdempotencyKey::parse(raw.as_bytes()).unwrap();
        let braces = keys.user_keyed_conversation(&alice, &key("}{x}%"));
        assert_eq!(braces, "im:{u.alice}:idem.conv:%7D%7Bx%7D%25");
        assert_ne!(
            braces,
            keys.user_keyed_conversation(&alice, &key("%7D%7Bx%7D%25"))
        );
        let id = Uuid::nil();
        assert_eq!(
            keys.conversation_keyed_message(id, &alice, &key("k:1")),
            format!("im:{{c.{id}}}:idem.msg.alice:k:1")
        );
    }
}
