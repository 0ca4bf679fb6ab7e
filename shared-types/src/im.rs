//! Conversations, messages and the "who is this user talking to" answer.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{UserId, presence::PresenceStatus};

/// Most people in one conversation, the caller included.
pub const MAX_PARTICIPANTS: usize = 16;
/// Longest message text, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4096;

/// Body of `POST /v1/conversations`; the caller is added to `participants`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"participants": ["bob"]}))]
pub struct NewConversation {
    /// Other participants (the caller is added): 2-16 people in all.
    #[schema(min_items = 1, max_items = 16)]
    pub participants: Vec<UserId>,
}

/// A conversation between 2 and 16 users.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[schema(example = json!({"id": "c7d2a1e4-3f5b-4a6c-8d9e-0f1a2b3c4d5e", "participants": ["alice", "bob"], "created_at": "2026-11-23T09:58:00Z", "last_activity_at": "2026-11-23T09:59:30Z", "closed": false}))]
pub struct Conversation {
    pub id: Uuid,
    /// Its creator first.
    pub participants: Vec<UserId>,
    pub created_at: DateTime<Utc>,
    /// When its newest message was posted; `null` until someone posts: opening a conversation
    /// is not activity.
    pub last_activity_at: Option<DateTime<Utc>>,
    /// A closed conversation no longer counts as talking.
    pub closed: bool,
}

impl Conversation {
    /// What "newest activity first" sorts by: the newest message, or the creation while
    /// nobody has posted.
    pub fn activity_key(&self) -> DateTime<Utc> {
        self.last_activity_at.unwrap_or(self.created_at)
    }
}

/// The caller's conversations, newest activity first (newest message, or creation while
/// nobody has posted).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"conversations": [{"id": "c7d2a1e4-3f5b-4a6c-8d9e-0f1a2b3c4d5e", "participants": ["alice", "bob"], "created_at": "2026-11-23T09:58:00Z", "last_activity_at": "2026-11-23T09:59:30Z", "closed": false}]}))]
pub struct ConversationList {
    pub conversations: Vec<Conversation>,
}

/// What a message is: people's `text`, or a `game` the game service announces.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[schema(example = "game")]
pub enum MessageKind {
    #[default]
    Text,
    Game,
}

/// What a `game` message announces: a session its readers may join.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"session_id": "0b9b5ce1-55a3-4b8c-a1f5-6d1c3b2a9e10", "host": "alice", "mode": "default", "state": "waiting"}))]
pub struct GameAnnouncement {
    pub session_id: Uuid,
    pub host: UserId,
    /// The kind of match.
    #[schema(example = "default")]
    pub mode: String,
    /// The session's state when it was announced.
    pub state: crate::game::SessionState,
}

/// Body of `POST /v1/conversations/{id}/messages`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"text": "fancy a game?"}))]
pub struct NewMessage {
    #[schema(min_length = 1, max_length = 4096)]
    pub text: String,
    /// `text` (the default) from participants; `game` from a `service` token only, with `game`.
    #[serde(default)]
    pub kind: MessageKind,
    /// The announced session: with `kind: game` only.
    #[serde(default)]
    pub game: Option<GameAnnouncement>,
}

/// Longest game `mode` name accepted when launching a game from a conversation.
pub const MAX_MODE_CHARS: usize = 32;

/// Body of `POST /v1/conversations/{id}/games`: launch a multiplayer game from the
/// conversation. `{}` (or no body at all) asks for the game service's default mode.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"mode": "default"}))]
pub struct LaunchGame {
    /// One of the game service's `GAME_MODES` (default: the first it lists).
    #[serde(default)]
    #[schema(example = "default", min_length = 1, max_length = 32)]
    pub mode: Option<String>,
}

/// One message; `seq` orders messages within a conversation and pages with `after`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[schema(example = json!({"seq": 3, "conversation_id": "c7d2a1e4-3f5b-4a6c-8d9e-0f1a2b3c4d5e", "sender": "alice", "text": "fancy a game?", "sent_at": "2026-11-23T09:59:30Z", "kind": "text", "game": null}))]
pub struct Message {
    pub seq: u64,
    pub conversation_id: Uuid,
    pub sender: UserId,
    pub text: String,
    pub sent_at: DateTime<Utc>,
    #[serde(default)]
    pub kind: MessageKind,
    /// The announced session, for `kind: game`; `null` otherwise.
    #[serde(default)]
    pub game: Option<GameAnnouncement>,
}

/// A page of messages, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"messages": [{"seq": 3, "conversation_id": "c7d2a1e4-3f5b-4a6c-8d9e-0f1a2b3c4d5e", "sender": "alice", "text": "fancy a game?", "sent_at": "2026-11-23T09:59:30Z"}]}))]
pub struct MessagePage {
    pub messages: Vec<Message>,
}

/// Someone the user is talking to right now.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[schema(example = json!({"user_id": "bob", "status": "available", "conversation_id": "c7d2a1e4-3f5b-4a6c-8d9e-0f1a2b3c4d5e", "last_activity_at": "2026-11-23T09:59:30Z", "activity": null}))]
pub struct Partner {
    pub user_id: UserId,
    pub status: PresenceStatus,
    /// The most recent open conversation in which both have posted.
    pub conversation_id: Uuid,
    /// Its newest message.
    pub last_activity_at: DateTime<Utc>,
    /// What the partner is doing in the game (`in_game`), `null` when not playing.
    #[serde(default)]
    pub activity: Option<crate::activity::Activity>,
}

/// Answer of `GET /v1/users/{user_id}/partners`: partners newest activity first, at most
/// `limit` of them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[schema(example = json!({"user_id": "alice", "status": "available", "partners": [{"user_id": "bob", "status": "available", "conversation_id": "c7d2a1e4-3f5b-4a6c-8d9e-0f1a2b3c4d5e", "last_activity_at": "2026-11-23T09:59:30Z", "activity": null}]}))]
pub struct PartnersResponse {
    pub user_id: UserId,
    pub status: PresenceStatus,
    pub partners: Vec<Partner>,
}

/// Someone the caller blocked.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[schema(example = json!({"user_id": "mallory", "blocked_at": "2026-11-23T09:58:00Z"}))]
pub struct Block {
    pub user_id: UserId,
    /// When the block was first put (blocking again does not move it).
    pub blocked_at: DateTime<Utc>,
}

/// Answer of `GET /v1/blocks`: the caller's blocks, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[schema(example = json!({"blocks": [{"user_id": "mallory", "blocked_at": "2026-11-23T09:58:00Z"}]}))]
pub struct BlockList {
    pub blocks: Vec<Block>,
}

/// One event on a user's IM stream (`GET /v1/events` of the IM service); the
/// SSE `event:` line is the variant's name, `data:` its payload.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
#[schema(example = json!({"type": "message", "data": {"seq": 3, "conversation_id": "c7d2a1e4-3f5b-4a6c-8d9e-0f1a2b3c4d5e", "sender": "bob", "text": "sure", "sent_at": "2026-11-23T09:59:30Z"}}))]
pub enum ImEvent {
    /// A message was posted in one of the user's conversations (their own included).
    Message(Message),
    /// One of the user's conversations was opened or closed (`closed` says which).
    Conversation(Conversation),
    /// Someone the user talks with changed their presence: their status, or their game
    /// activity (began or stopped playing).
    Presence(crate::presence::Presence),
}

impl crate::events::Payload for ImEvent {
    fn name(&self) -> &'static str {
        match self {
            Self::Message(_) => "message",
            Self::Conversation(_) => "conversation",
            Self::Presence(_) => "presence",
        }
    }

    fn data(&self) -> String {
        match self {
            Self::Message(message) => serde_json::to_string(message),
            Self::Conversation(conversation) => serde_json::to_string(conversation),
            Self::Presence(presence) => serde_json::to_string(presence),
        }
        .unwrap_or_default()
    }
}
