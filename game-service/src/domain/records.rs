//! What the store keeps: one record per player and one per session, plus expiry jobs.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared_types::{
    UserId,
    game::{Prompt, PromptKind, Reason, Session, SessionKind, SessionState},
};
use uuid::Uuid;

/// Answered or cancelled prompts kept per player so that late answers get the
/// right reply (same answer: harmless; contrary: 409). Older entries are dropped.
pub const ANSWER_HISTORY: usize = 32;

/// A player's slot: at most one of an open prompt or a live session, plus pending invitations.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PlayerRecord {
    pub prompt: Option<PromptRecord>,
    pub session: Option<SessionRef>,
    /// Lobbies this player was invited to and has not answered yet.
    pub invitations: Vec<Invitation>,
    /// Newest last, at most [`ANSWER_HISTORY`].
    pub answered: Vec<Answered>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PromptRecord {
    pub id: Uuid,
    pub kind: PromptKind,
    pub candidates: Vec<UserId>,
    /// Join prompts: the lobby they lead to.
    pub lobby: Option<SessionRef>,
    pub expires_at: DateTime<Utc>,
}

/// A session is stored in its host's slot, so its host is part of its address.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionRef {
    pub id: Uuid,
    pub host: UserId,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Invitation {
    pub lobby: SessionRef,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Accepted,
    Rejected,
    /// Closed without an answer from the player.
    Cancelled(Reason),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Answered {
    pub prompt_id: Uuid,
    pub answer: Answer,
    /// An invite prompt superseded by a join prompt: answers are applied to that one.
    pub replaced_by: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pending {
    pub player: UserId,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: Uuid,
    pub kind: SessionKind,
    pub state: SessionState,
    pub host: UserId,
    pub players: Vec<UserId>,
    pub pending: Vec<Pending>,
    /// Everyone ever invited: they may read the session.
    pub invitees: Vec<UserId>,
    /// Invitees whose invitation ran out (decides `declined` vs `expired`).
    pub expired: Vec<UserId>,
    pub created_at: DateTime<Utc>,
    pub reason: Option<Reason>,
    /// One credential per player for the game server.
    pub join_tokens: Vec<(UserId, String)>,
}

impl SessionRecord {
    pub fn reference(&self) -> SessionRef {
        SessionRef {
            id: self.id,
            host: self.host.clone(),
        }
    }

    pub fn is_pending(&self, player: &UserId) -> bool {
        self.pending.iter().any(|p| &p.player == player)
    }

    /// Host, players and invitees may read a session; nobody else learns it exists.
    pub fn visible_to(&self, player: &UserId) -> bool {
        &self.host == player || self.players.contains(player) || self.invitees.contains(player)
    }

    /// The wire form as `viewer` sees it (their own join token only).
    pub fn view(&self, viewer: &UserId) -> Session {
        let join_token = self
            .join_tokens
            .iter()
            .find(|(player, _)| player == viewer)
            .map(|(_, token)| token.clone())
            .unwrap_or_default();
        Session {
            id: self.id,
            kind: self.kind,
            state: self.state,
            host: self.host.clone(),
            players: self.players.clone(),
            pending: self.pending.iter().map(|p| p.player.clone()).collect(),
            created_at: self.created_at,
            join_token,
            reason: self.reason,
        }
    }
}

impl PromptRecord {
    pub fn view(&self) -> Prompt {
        Prompt {
            id: self.id,
            kind: self.kind,
            candidates: self.candidates.clone(),
            host: self.lobby.as_ref().map(|l| l.host.clone()),
            session_id: self.lobby.as_ref().map(|l| l.id),
            expires_at: self.expires_at,
        }
    }
}

impl PlayerRecord {
    pub fn answered(&self, prompt_id: Uuid) -> Option<&Answered> {
        self.answered
            .iter()
            .rev()
            .find(|a| a.prompt_id == prompt_id)
    }

    pub fn remember(&mut self, prompt_id: Uuid, answer: Answer, replaced_by: Option<Uuid>) {
        self.answered.push(Answered {
            prompt_id,
            answer,
            replaced_by,
        });
        let excess = self.answered.len().saturating_sub(ANSWER_HISTORY);
        self.answered.drain(..excess);
    }

    pub fn drop_invitation(&mut self, lobby: Uuid) {
        self.invitations.retain(|inv| inv.lobby.id != lobby);
    }
}

/// Work the store hands back when its time comes: exactly one replica claims each job.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExpiryJob {
    /// An invite prompt nobody answered.
    Invite { player: UserId, prompt_id: Uuid },
    /// An invitation to a lobby nobody answered (covers the invitee's join prompt).
    Invitation { lobby: SessionRef, invitee: UserId },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ScheduledJob {
    pub job: ExpiryJob,
    pub due: DateTime<Utc>,
}
