//! What became of the changes handed to a [`Store`](super::Store): created, appended, blocked, or why not.

use shared_types::{activity::PresenceChange, im::Message, presence::Presence};

use crate::domain::ConversationRecord;

/// What became of a conversation handed to [`Store::create_conversation_keyed`](super::Store::create_conversation_keyed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// Stored; `hidden_from` says which participants never see it. With an idempotency key
    /// already used for the same participants: the conversation that first request opened,
    /// as it was opened.
    Created(ConversationRecord),
    /// The creator already has as many open conversations as allowed; nothing was stored.
    Limit,
    /// The creator already used this idempotency key to open a conversation with other
    /// participants; nothing was stored.
    KeyReused,
}

/// What became of a message handed to [`Store::append_message_keyed`](super::Store::append_message_keyed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Stored; with an idempotency key the sender already used here for the same message: that
    /// first message, same `seq` (nothing appended again).
    Appended(Message),
    /// Closed conversations take no more messages.
    Closed,
    /// No such conversation (never created, or expired).
    Missing,
    /// The sender's first message here would answer one conversation more than they may have
    /// open; nothing was stored.
    Limit,
    /// The sender already used this idempotency key here for another message; nothing was
    /// stored.
    KeyReused,
}

/// What became of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockOutcome {
    Blocked,
    /// Already blocked: nothing changed (the block keeps its first time).
    AlreadyBlocked,
    /// The blocker already blocks as many users as allowed; nothing changed.
    Limit,
}

/// What [`Store::record_presence`](super::Store::record_presence) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceRecorded {
    /// The user's presence now, their activity included.
    pub presence: Presence,
    /// The user's status changes not yet known to be in the presence feed, oldest first: this
    /// one when the status changed, and any that an interruption left out (the marker).
    pub unfed: Vec<PresenceChange>,
}
