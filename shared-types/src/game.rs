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
#[schema(example = json!({"id": "5e1f4c3a-7b2d-4e8f-9a6b-1c2d3e4f5a6b", "kind": "join", "candidates": ["alice"], "host": "alice", "session_id": "0b9b5ce1-55a3-4b8c-a1f5-6d1c3b2a9e10", "expires_at": "2026-11-23T10:01:00Z", "mode": "default"}))]
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
    /// The mode of the session it leads to (one of `GAME_MODES`).
    #[serde(default = "default_mode_name")]
    #[schema(example = "default")]
    pub mode: String,
}

/// The mode of prompts stored before modes existed.
fn default_mode_name() -> String {
    "default".to_owned()
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
#[schema(example = json!({"id": "0b9b5ce1-55a3-4b8c-a1f5-6d1c3b2a9e10", "kind": "multiplayer", "mode": "default", "state": "active", "host": "alice", "players": ["alice", "bob"], "pending": [], "created_at": "2026-11-23T10:00:00Z", "join_token": "eyJ0eXAiOiJKV1QiLCJhbGciOiJFZERTQSIsImtpZCI6Ik5hU2pUbGFHb0lUcE1mWHJDdzh3R1V4SmtnOVNCa0RCZTZsS1QwbDBZWTQifQ.eyJpc3MiOiJnYW1lLXBsYXRmb3JtIiwiYXVkIjoiZ2FtZS1zZXJ2ZXIiLCJzdWIiOiJib2IiLCJzaWQiOiIwYjliNWNlMS01NWEzLTRiOGMtYTFmNS02ZDFjM2IyYTllMTAiLCJraW5kIjoibXVsdGlwbGF5ZXIiLCJtb2RlIjoiZGVmYXVsdCIsImlhdCI6MTc5NTQyNDAwMCwiZXhwIjoxNzk1NDI0OTAwfQ.c2lnbmF0dXJl", "reason": null, "ended_reason": null}))]
pub struct Session {
    pub id: Uuid,
    pub kind: SessionKind,
    /// The kind of match; `default` for every session today.
    #[schema(example = "default")]
    pub mode: String,
    pub state: SessionState,
    pub host: UserId,
    pub players: Vec<UserId>,
    /// Invitees who have not answered yet.
    pub pending: Vec<UserId>,
    pub created_at: DateTime<Utc>,
    /// The requesting player's own credential for the game server: a compact
    /// JWS (EdDSA) verifiable with `GET /v1/join-tokens/jwks.json`. Empty for
    /// a viewer who is not one of its players, and once the session ended. A
    /// later read may return a newer token; every unexpired one verifies.
    pub join_token: String,
    /// Why a session is solo (or turned solo); null for multiplayer sessions.
    pub reason: Option<Reason>,
    /// Why the session ended; null while it has not.
    pub ended_reason: Option<EndedReason>,
}

/// Why a session ended. Stable values: clients switch on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(example = json!("finished"))]
pub enum EndedReason {
    /// Every player left.
    Left,
    /// The game server ended it: the match is over.
    Finished,
    /// The game server ended it early.
    Aborted,
    /// Nobody showed life for `SESSION_IDLE_SECS`.
    Abandoned,
}

/// How a game server ends a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(example = json!("finished"))]
pub enum Outcome {
    Finished,
    Aborted,
}

impl From<Outcome> for EndedReason {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Finished => Self::Finished,
            Outcome::Aborted => Self::Aborted,
        }
    }
}

/// Body of `POST /v1/sessions/{id}/end`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"outcome": "finished"}))]
pub struct EndBody {
    pub outcome: Outcome,
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
    /// The player went offline in the IM service.
    Unavailable,
    /// The session reached its mode's most players.
    Full,
}

/// Body of `POST /v1/connect` (optional): the kind of match the player wants.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"mode": "default"}))]
pub struct ConnectBody {
    /// One of `GAME_MODES` (default: the first listed).
    #[schema(example = "default", min_length = 1, max_length = 32)]
    pub mode: Option<String>,
}

/// Body of `POST /v1/lobbies` (`service` scope: the IM service launching a game from a chat).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"host": "alice", "invitees": ["bob", "carol"], "mode": "default", "conversation_id": "c7d2a1e4-3f5b-4a6c-8d9e-0f1a2b3c4d5e"}))]
pub struct NewLobby {
    /// Who launched the game: the lobby's host.
    pub host: UserId,
    /// Whom to invite (1-15, not the host): the IM service has checked they are the host's partners.
    #[schema(min_items = 1, max_items = 15)]
    pub invitees: Vec<UserId>,
    /// One of `GAME_MODES` (default: the first listed).
    #[serde(default)]
    #[schema(example = "default", min_length = 1, max_length = 32)]
    pub mode: Option<String>,
    /// The conversation it was launched from: the lobby is announced there.
    pub conversation_id: Uuid,
}

/// Body of `POST /v1/prompts/{id}/accept` for an invite prompt.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"with": ["bob"]}))]
pub struct AcceptBody {
    /// Subset of the prompt's candidates to invite (at least one; to invite
    /// nobody, reject); all of them when absent.
    #[serde(default, rename = "with")]
    #[schema(min_items = 1)]
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

impl crate::events::Payload for GameEvent {
    fn name(&self) -> &'static str {
        match self {
            Self::Prompt(_) => "prompt",
            Self::PromptCancelled(_) => "prompt_cancelled",
            Self::Session(_) => "session",
        }
    }

    fn data(&self) -> String {
        match self {
            Self::Prompt(prompt) => serde_json::to_string(prompt),
            Self::PromptCancelled(cancelled) => serde_json::to_string(cancelled),
            Self::Session(session) => serde_json::to_string(session),
        }
        .unwrap_or_default()
    }
}

/// The audience of every join token: game servers, not these services.
pub const JOIN_TOKEN_AUDIENCE: &str = "game-server";

/// The claims of a join token, for game servers that verify it themselves.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JoinTokenClaims {
    /// `JWT_ISSUER` of the game service.
    pub iss: String,
    /// Always [`JOIN_TOKEN_AUDIENCE`].
    pub aud: String,
    /// The player.
    pub sub: UserId,
    /// The session.
    pub sid: Uuid,
    pub kind: SessionKind,
    pub mode: String,
    pub iat: u64,
    pub exp: u64,
}

/// Body of `POST /v1/join-tokens/verify`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"token": "eyJ0eXAiOiJKV1QiLCJhbGciOiJFZERTQSJ9.e30.c2lnbmF0dXJl"}))]
pub struct VerifyBody {
    /// A `join_token` as a player presented it.
    #[schema(max_length = 4096)]
    pub token: String,
}

/// Why a join token does not verify. Stable values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(example = json!("expired"))]
pub enum JoinTokenError {
    /// Not a compact JWS with the expected header and claims.
    Malformed,
    /// Its `kid` names no key this service signs or verifies with.
    UnknownKey,
    BadSignature,
    Expired,
    WrongAudience,
    WrongIssuer,
}

/// The answer of `POST /v1/join-tokens/verify`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[schema(example = json!({"valid": true, "player_id": "bob", "session_id": "0b9b5ce1-55a3-4b8c-a1f5-6d1c3b2a9e10", "member": true, "expires_at": "2026-11-23T10:15:00Z", "error": null}))]
pub struct Verification {
    /// The signature, issuer, audience and expiry check out.
    pub valid: bool,
    pub player_id: Option<UserId>,
    pub session_id: Option<Uuid>,
    /// The player is still one of the session's players and it has not ended.
    pub member: bool,
    pub expires_at: Option<DateTime<Utc>>,
    /// Why the token is not valid; null when it is.
    pub error: Option<JoinTokenError>,
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
