//! The game service's wire types: player state, prompts, sessions, reasons and events.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::UserId;

/// Everything a player needs to render: at most one open prompt and one live session.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[schema(example = json!({"player_id": "bob", "prompt": {"id": "5e1f4c3a-7b2d-4e8f-9a6b-1c2d3e4f5a6b", "kind": "join", "candidates": ["alice"], "host": "alice", "session_id": "0b9b5ce1-55a3-4b8c-a1f5-6d1c3b2a9e10", "expires_at": "2026-11-23T10:01:00Z"}, "session": null, "degraded": false}))]
pub struct PlayerState {
    pub player_id: UserId,
    pub prompt: Option<Prompt>,
    pub session: Option<Session>,
    /// True when the IM service could not be asked and the answer is a fallback.
    pub degraded: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(example = json!("invite"))]
pub enum PromptKind {
    /// "Play with these partners?" — answered by the player who arrives first.
    Invite,
    /// "Join this player's session?" — answered by an invitee.
    Join,
}

/// A question put to the player.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[schema(example = json!({"id": "5e1f4c3a-7b2d-4e8f-9a6b-1c2d3e4f5a6b", "kind": "join", "candidates": ["alice"], "host": "alice", "session_id": "0b9b5ce1-55a3-4b8c-a1f5-6d1c3b2a9e10", "expires_at": "2026-11-23T10:01:00Z"}))]
pub struct Prompt {
    pub id: Uuid,
    pub kind: PromptKind,
    /// Invite: the partners proposed. Join: the session's host.
    pub candidates: Vec<UserId>,
    /// Join prompts: the host of the session to join.
    pub host: Option<UserId>,
    /// Join prompts: the session to join.
    pub session_id: Option<Uuid>,
    /// After this instant an unanswered prompt counts as rejected.
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(example = json!("multiplayer"))]
pub enum SessionKind {
    Solo,
    Multiplayer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(example = json!("active"))]
pub enum SessionState {
    /// A multiplayer lobby whose invitees have not joined yet.
    Waiting,
    Active,
    Ended,
}

/// A game session.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[schema(example = json!({"id": "0b9b5ce1-55a3-4b8c-a1f5-6d1c3b2a9e10", "kind": "multiplayer", "state": "active", "host": "alice", "players": ["alice", "bob"], "pending": [], "created_at": "2026-11-23T10:00:00Z", "join_token": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "reason": null}))]
pub struct Session {
    pub id: Uuid,
    pub kind: SessionKind,
    pub state: SessionState,
    pub host: UserId,
    pub players: Vec<UserId>,
    /// Invitees who have not answered yet.
    pub pending: Vec<UserId>,
    pub created_at: DateTime<Utc>,
    /// The requesting player's own credential for the game server hosting the session.
    pub join_token: String,
    /// Why a session is solo (or turned solo); null for multiplayer sessions.
    pub reason: Option<Reason>,
}

/// Why a session is solo or a prompt was cancelled. Stable values: clients switch on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(example = json!("declined"))]
pub enum Reason {
    /// Nobody eligible in the IM service.
    NoPartner,
    /// The IM service was down or slow.
    ImUnavailable,
    /// This player said no.
    Rejected,
    /// Every invitee said no.
    Declined,
    /// Nobody answered in time.
    Expired,
    /// Another session for the same players was created first.
    Superseded,
    /// The host left.
    Withdrawn,
}

/// Body of `POST /v1/prompts/{id}/accept` for an invite prompt.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"with": ["bob"]}))]
pub struct AcceptBody {
    /// Subset of the prompt's candidates to invite; all of them when absent.
    #[serde(default, rename = "with")]
    pub with: Option<Vec<UserId>>,
}

/// Payload of a `prompt_cancelled` event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[schema(example = json!({"prompt_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "reason": "superseded", "replaced_by": "5e1f4c3a-7b2d-4e8f-9a6b-1c2d3e4f5a6b"}))]
pub struct PromptCancelled {
    pub prompt_id: Uuid,
    pub reason: Reason,
    /// The prompt that replaces it, when one does (a join prompt after `superseded`).
    pub replaced_by: Option<Uuid>,
}

/// One event on a player's stream; the SSE `event:` line is the variant's name.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
#[schema(example = json!({"type": "prompt", "data": {"id": "5e1f4c3a-7b2d-4e8f-9a6b-1c2d3e4f5a6b", "kind": "join", "candidates": ["alice"], "host": "alice", "session_id": "0b9b5ce1-55a3-4b8c-a1f5-6d1c3b2a9e10", "expires_at": "2026-11-23T10:01:00Z"}}))]
pub enum GameEvent {
    /// A new prompt was put to the player.
    Prompt(Prompt),
    /// An open prompt was withdrawn without the player answering it.
    PromptCancelled(PromptCancelled),
    /// The player's session was created or changed.
    Session(Session),
}

impl GameEvent {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Prompt(_) => "prompt",
            Self::PromptCancelled(_) => "prompt_cancelled",
            Self::Session(_) => "session",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_serialize_as_stable_snake_case() {
        let json = serde_json::to_string(&[Reason::NoPartner, Reason::ImUnavailable]).ok();
        assert_eq!(json.as_deref(), Some(r#"["no_partner","im_unavailable"]"#));
    }

    #[test]
    fn accept_body_rejects_unknown_fields() {
        assert!(serde_json::from_str::<AcceptBody>(r#"{"with":["bob"]}"#).is_ok());
        assert!(serde_json::from_str::<AcceptBody>(r#"{}"#).is_ok());
        assert!(serde_json::from_str::<AcceptBody>(r#"{"wiht":["bob"]}"#).is_err());
    }
}
