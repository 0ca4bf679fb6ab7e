//! The model's state as the API renders it, in model ids: a player's state, a session, a prompt, and who may read a session.

use shared_types::game::{EndedReason, PromptKind, Reason, SessionKind, SessionState};

use super::{Model, Offer, Player, Prompt, PromptId, SessionId};

/// A player's state as `GET /v1/me` shows it, in model ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayerView {
    pub prompt: Option<PromptView>,
    pub session: Option<SessionView>,
    pub degraded: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptView {
    pub id: PromptId,
    pub kind: PromptKind,
    /// Sorted.
    pub candidates: Vec<Player>,
    pub host: Option<Player>,
    pub session: Option<SessionId>,
    pub mode: String,
    pub expires: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    pub id: SessionId,
    pub kind: SessionKind,
    pub state: SessionState,
    pub host: Player,
    /// Sorted.
    pub players: Vec<Player>,
    /// Sorted.
    pub pending: Vec<Player>,
    pub reason: Option<Reason>,
    pub ended: Option<EndedReason>,
    pub mode: String,
}

impl Model {
    /// Host, players and invitees may read a session (a player was always one of the other two).
    pub fn visible(&self, p: Player, s: SessionId) -> bool {
        let session = &self.sessions[s];
        session.host == p || session.invitees.contains(&p)
    }

    pub fn view(&self, p: Player) -> PlayerView {
        let slot = &self.slots[p];
        let session = slot.session.map(|s| self.session_view(s));
        PlayerView {
            prompt: slot.prompt.as_ref().map(|pr| self.prompt_view(pr)),
            degraded: session
                .as_ref()
                .is_some_and(|s| s.reason == Some(Reason::ImUnavailable)),
            session,
        }
    }

    pub fn session_view(&self, s: SessionId) -> SessionView {
        let session = &self.sessions[s];
        let mut players = session.players.clone();
        players.sort_unstable();
        SessionView {
            id: s,
            kind: session.kind,
            state: session.state,
            host: session.host,
            players,
            pending: session.pending.keys().copied().collect(),
            reason: session.reason,
            ended: session.ended,
            mode: session.mode.to_owned(),
        }
    }

    pub(super) fn prompt_view(&self, prompt: &Prompt) -> PromptView {
        match &prompt.offer {
            Offer::Invite(candidates) => PromptView {
                id: prompt.id,
                kind: PromptKind::Invite,
                candidates: candidates.iter().copied().collect(),
                host: None,
                session: None,
                mode: prompt.mode.to_owned(),
                expires: prompt.expires,
            },
            Offer::Join(s) => PromptView {
                id: prompt.id,
                kind: PromptKind::Join,
                candidates: vec![self.sessions[*s].host],
                host: Some(self.sessions[*s].host),
                session: Some(*s),
                mode: prompt.mode.to_owned(),
                expires: prompt.expires,
            },
        }
    }
}
