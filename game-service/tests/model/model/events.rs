//! The events each player should hear of the model's changes (docs/CONTRACT.md, "Events"), queued until the checker takes them.

use shared_types::game::{Reason, SessionState};

use super::{Model, Player, PromptId, PromptView, SessionId, SessionView};

/// What a player hears, in model ids (docs/CONTRACT.md, "Events").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Prompt(PromptView),
    Cancelled {
        prompt: PromptId,
        reason: Reason,
        replaced_by: Option<PromptId>,
    },
    /// The session as it stands when the event is sent.
    Session(SessionView),
}

impl Model {
    /// The events `p` heard since the last call.
    pub fn take_events(&mut self, p: Player) -> Vec<Event> {
        std::mem::take(&mut self.events[p])
    }

    /// Every player of the session hears its new state (and a player of an active session
    /// is one the game remembers).
    pub(super) fn announce(&mut self, s: SessionId) {
        let view = self.session_view(s);
        let active = self.sessions[s].state == SessionState::Active;
        for q in self.sessions[s].players.clone() {
            self.played[q] |= active;
            self.tell(q, Event::Session(view.clone()));
        }
    }

    pub(super) fn tell(&mut self, p: Player, event: Event) {
        self.events[p].push(event);
    }

    pub(super) fn cancelled(&mut self, p: Player, prompt: PromptId, reason: Reason) {
        self.tell(
            p,
            Event::Cancelled {
                prompt,
                reason,
                replaced_by: None,
            },
        );
    }
}
