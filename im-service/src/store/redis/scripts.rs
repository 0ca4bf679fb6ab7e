//! The Lua scripts, one for each change that lives in one slot; each `lua/*.lua` file says which keys and arguments it takes.

use redis::Script;
use service_kit::{events::redis::with_append_event, redis_replication::read_only};

pub(super) struct Scripts {
    pub(super) set_presence: Script,
    pub(super) apply_activity: Script,
    pub(super) append_feed: Script,
    pub(super) reserve: Script,
    pub(super) index_participant: Script,
    pub(super) touch_participant: Script,
    pub(super) add_contacts: Script,
    pub(super) create_conversation: Script,
    pub(super) append_message: Script,
    pub(super) read_messages: Script,
    pub(super) close_conversation: Script,
    pub(super) block: Script,
    pub(super) unblock: Script,
    pub(super) notify: Script,
    pub(super) notify_presence: Script,
}

impl Scripts {
    pub(super) fn load() -> Self {
        Self {
            set_presence: Script::new(include_str!("lua/set_presence.lua")),
            apply_activity: Script::new(include_str!("lua/apply_activity.lua")),
            append_feed: Script::new(include_str!("lua/append_feed.lua")),
            reserve: Script::new(include_str!("lua/reserve.lua")),
            index_participant: Script::new(include_str!("lua/index_participant.lua")),
            touch_participant: Script::new(include_str!("lua/touch_participant.lua")),
            add_contacts: Script::new(include_str!("lua/add_contacts.lua")),
            create_conversation: Script::new(include_str!("lua/create_conversation.lua")),
            append_message: Script::new(include_str!("lua/append_message.lua")),
            read_messages: read_only(Script::new(include_str!("lua/read_messages.lua"))),
            close_conversation: Script::new(include_str!("lua/close_conversation.lua")),
            block: Script::new(include_str!("lua/block.lua")),
            unblock: Script::new(include_str!("lua/unblock.lua")),
            // Events are appended and published the way both services do.
            notify: with_append_event(include_str!("lua/notify.lua")),
            notify_presence: with_append_event(include_str!("lua/notify_presence.lua")),
        }
    }
}
