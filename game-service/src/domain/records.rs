//! What the store keeps: one record per player and one per session, plus expiry jobs.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared_types::{
    UserId,
    activity::ActivityReport,
    game::{EndedReason, Prompt, PromptKind, Reason, Session, SessionKind, SessionState},
};
use uuid::Uuid;

/// The mode of every session until modes are configurable.
pub const DEFAULT_MODE: &str = "default";

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
    /// The `seq` of the newest game-activity report about this player (it orders them).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub activity_seq: u64,
    /// The `seq` of the newest IM presence change applied to this player (older ones,
    /// delivered again or late, are ignored).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub presence_seq: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PromptRecord {
    pub id: Uuid,
    pub kind: PromptKind,
    pub candidates: Vec<UserId>,
    /// Join prompts: the lobby they lead to.
    pub lobby: Option<SessionRef>,
    pub expires_at: DateTime<Utc>,
    /// The mode of the session it leads to.
    #[serde(default = "default_mode")]
    pub mode: String,
    /// Invite prompts: the conversation through which each candidate was found (where
    /// the lobby is announced).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub via: Vec<Via>,
}

/// A candidate and the conversation in which the IM service found them talking to the player.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Via {
    pub partner: UserId,
    pub conversation: Uuid,
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
    #[serde(default = "default_mode")]
    pub mode: String,
    #[serde(default)]
    pub ended_reason: Option<EndedReason>,
    /// The last recorded sign of life (a player's request or open stream, a
    /// game server's heartbeat); `None` means `created_at`. Recorded at most
    /// once per life resolution, so it lags real life by up to that much.
    #[serde(default)]
    pub life_at: Option<DateTime<Utc>>,
}

pub(crate) fn default_mode() -> String {
    DEFAULT_MODE.to_owned()
}

impl SessionRecord {
    /// A new solo session for `host`, active at once, of `mode` (the default mode: the first
    /// `GAME_MODES` lists).
    pub fn solo(host: &UserId, reason: Reason, now: DateTime<Utc>, mode: &str) -> Self {
        Self {
            id: Uuid::new_v4(),
            kind: SessionKind::Solo,
            state: SessionState::Active,
            host: host.clone(),
            players: vec![host.clone()],
            pending: Vec::new(),
            invitees: Vec::new(),
            expired: Vec::new(),
            created_at: now,
            reason: Some(reason),
            mode: mode.to_owned(),
            ended_reason: None,
            life_at: None,
        }
    }

    pub fn reference(&self) -> SessionRef {
        SessionRef {
            id: self.id,
            host: self.host.clone(),
        }
    }

    /// Its players and pending invitees: the records a live session keeps alive.
    pub fn members(&self) -> impl Iterator<Item = &UserId> {
        self.players
            .iter()
            .chain(self.pending.iter().map(|q| &q.player))
    }

    pub fn is_pending(&self, player: &UserId) -> bool {
        self.pending.iter().any(|p| &p.player == player)
    }

    /// Host, players and invitees may read a session; nobody else learns it exists.
    pub fn visible_to(&self, player: &UserId) -> bool {
        &self.host == player || self.players.contains(player) || self.invitees.contains(player)
    }

    /// Not ended, and `player` is one of its players: the session `player` is in.
    pub fn is_live_for(&self, player: &UserId) -> bool {
        self.state != SessionState::Ended && self.players.contains(player)
    }

    pub fn last_life(&self) -> DateTime<Utc> {
        self.life_at.unwrap_or(self.created_at)
    }

    /// The wire form, without a join token (the game runner signs one per
    /// viewer: [`crate::join_tokens::JoinTokens::attach`]).
    pub fn view(&self) -> Session {
        Session {
            id: self.id,
            kind: self.kind,
            mode: self.mode.clone(),
            state: self.state,
            host: self.host.clone(),
            players: self.players.clone(),
            pending: self.pending.iter().map(|p| p.player.clone()).collect(),
            created_at: self.created_at,
            join_token: String::new(),
            reason: self.reason,
            ended_reason: self.ended_reason,
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
            mode: self.mode.clone(),
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

    /// Every session this record points at: its session, its join prompt's
    /// lobby, the lobbies that invited it. The store keeps each of them at
    /// least as long as the record.
    pub fn points_at(&self) -> impl Iterator<Item = &SessionRef> {
        self.session
            .iter()
            .chain(self.prompt.iter().filter_map(|pr| pr.lobby.as_ref()))
            .chain(self.invitations.iter().map(|inv| &inv.lobby))
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
    /// Is this session still alive? Due when it would be abandoned if
    /// nothing showed life since `life_at` (millis; part of the job's
    /// identity, so the check it schedules next is another job).
    Idle { session: SessionRef, life_at: i64 },
    /// Post the lobby's `game` message into a conversation of the IM service; `attempt`
    /// counts the tries before this one (part of the job's identity: a retry is another job).
    Announce {
        lobby: SessionRef,
        conversation: Uuid,
        attempt: u32,
    },
    /// Tell the IM service that players began or stopped playing (one transition's reports).
    Activity {
        reports: Vec<ActivityReport>,
        attempt: u32,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ScheduledJob {
    pub job: ExpiryJob,
    pub due: DateTime<Utc>,
}
