//! Resolves who runs a command and which prompt or session it names, from what the players have been shown so far.

use proptest::sample::Index;
use uuid::Uuid;

use super::Run;
use crate::{
    commands::{PromptTarget, SessionTarget, Who},
    model::Player,
};

/// An id no prompt or session ever gets.
const NEVER_ISSUED: Uuid = Uuid::from_u128(1);

impl<'h> Run<'h> {
    pub(super) fn who(&self, who: &Who) -> Player {
        let pick_among = |found: Vec<Player>, index: &Index| {
            (!found.is_empty()).then(|| found[index.index(found.len())])
        };
        let everyone = || (0..self.players).collect::<Vec<_>>();
        let (first, second, index) = match who {
            Who::Player(p) => return *p,
            Who::Prompted(index) => (
                everyone()
                    .into_iter()
                    .filter(|&p| self.last[p].prompt.is_some())
                    .collect(),
                everyone()
                    .into_iter()
                    .filter(|&p| !self.seen_prompts[p].is_empty())
                    .collect(),
                index,
            ),
            Who::Seated(index) => (
                everyone()
                    .into_iter()
                    .filter(|&p| self.last[p].session.is_some())
                    .collect(),
                everyone()
                    .into_iter()
                    .filter(|&p| !self.seen_sessions[p].is_empty())
                    .collect(),
                index,
            ),
            Who::Idle(index) => (
                everyone()
                    .into_iter()
                    .filter(|&p| self.last[p].prompt.is_none() && self.last[p].session.is_none())
                    .collect(),
                everyone(),
                index,
            ),
        };
        pick_among(first, index)
            .or_else(|| pick_among(second, index))
            .unwrap_or_else(|| index.index(self.players))
    }

    pub(super) fn prompt_target(&self, p: Player, target: &PromptTarget) -> (Uuid, String) {
        let current = self.last[p]
            .prompt
            .as_ref()
            .map(|pr| pr.id)
            .or_else(|| self.seen_prompts[p].last().copied());
        let id = match target {
            PromptTarget::Current => current,
            PromptTarget::Previous => self.seen_prompts[p]
                .iter()
                .rev()
                .nth(1)
                .copied()
                .or(current),
            PromptTarget::Seen(i) => pick(&self.seen_prompts[p], i).or(current),
            PromptTarget::Anyones(i) => pick(&self.all_prompts, i),
            PromptTarget::Unknown => None,
        };
        match id {
            Some(id) => (id, format!("prompt #{}", self.prompts.bind_label(id))),
            None => (NEVER_ISSUED, "a never-issued prompt".to_owned()),
        }
    }

    pub(super) fn session_target(&self, p: Player, target: &SessionTarget) -> (Uuid, String) {
        if let SessionTarget::Unknown = target {
            return (NEVER_ISSUED, "a never-issued session".to_owned());
        }
        let current = self.last[p]
            .session
            .as_ref()
            .map(|s| s.id)
            .or_else(|| self.seen_sessions[p].last().copied())
            .or_else(|| self.all_sessions.last().copied());
        let id = match target {
            SessionTarget::Current => current,
            SessionTarget::Seen(i) => pick(&self.seen_sessions[p], i).or(current),
            SessionTarget::Anyones(i) => pick(&self.all_sessions, i),
            SessionTarget::Unknown => None,
        };
        match id {
            Some(id) => (id, format!("session #{}", self.sessions.bind_label(id))),
            None => (NEVER_ISSUED, "a never-issued session".to_owned()),
        }
    }
}

fn pick(ids: &[Uuid], index: &Index) -> Option<Uuid> {
    (!ids.is_empty()).then(|| ids[index.index(ids.len())])
}
