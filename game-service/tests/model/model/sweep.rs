//! The model's clock and its sweep of every job due: invite prompts and invitations running out, and idle checks abandoning sessions.

use shared_types::game::{EndedReason, Reason};

use super::{Closed, Model, Offer, Player, Prompt};

impl Model {
    pub fn now(&self) -> i64 {
        self.now
    }

    /// The clock moves on; nothing runs until [`Model::sweep`].
    pub fn tick(&mut self, secs: i64) {
        self.now += secs;
    }

    /// When the next invite prompt or invitation (with its join prompt) runs out.
    pub fn next_expiry(&self) -> Option<i64> {
        let prompts = self.slots.iter().filter_map(|slot| {
            slot.prompt
                .as_ref()
                .filter(|pr| matches!(pr.offer, Offer::Invite(_)))
                .map(|pr| pr.expires)
        });
        let invitations = self
            .sessions
            .iter()
            .flat_map(|session| session.pending.values().copied());
        prompts.chain(invitations).min()
    }

    /// When the next idle check is due. A session that ended keeps its
    /// scheduled check until it is due; it then does nothing.
    pub fn next_idle_check(&self) -> Option<i64> {
        self.sessions
            .iter()
            .filter_map(|session| session.check.map(|(due, _)| due))
            .min()
    }

    /// Every job due now runs. The test sweeps only when the jobs due are all
    /// expiries or all idle checks: the order in which the store hands them
    /// out then does not matter.
    pub fn sweep(&mut self) {
        let now = self.now;
        let idle_for = self.idle_for();
        // Unanswered invite prompts: the player gets a solo session.
        for p in 0..self.slots.len() {
            let slot = &mut self.slots[p];
            let due = |pr: &mut Prompt| matches!(pr.offer, Offer::Invite(_)) && pr.expires <= now;
            if let Some(prompt) = slot.prompt.take_if(due) {
                slot.closed
                    .insert(prompt.id, Closed::Cancelled(Reason::Expired));
                self.cancelled(p, prompt.id, Reason::Expired);
                self.solo(p, Reason::Expired);
            }
        }
        // Unanswered invitations count as rejections; a join prompt goes with its invitation.
        for s in 0..self.sessions.len() {
            let due: Vec<Player> = self.sessions[s]
                .pending
                .iter()
                .filter(|&(_, &at)| at <= now)
                .map(|(&q, _)| q)
                .collect();
            for q in due {
                self.drop_invitee(s, q, true);
                let slot = &mut self.slots[q];
                if let Some(prompt) = slot.prompt.take_if(|pr| pr.offer == Offer::Join(s)) {
                    slot.closed
                        .insert(prompt.id, Closed::Cancelled(Reason::Expired));
                    self.cancelled(q, prompt.id, Reason::Expired);
                    self.solo(q, Reason::Expired);
                }
            }
        }
        // Idle checks: a session with no life recorded since its check was
        // scheduled, or whose deadline has passed anyway, is abandoned; one
        // that lived since is checked again at its new deadline.
        for s in 0..self.sessions.len() {
            let session = &mut self.sessions[s];
            let Some((_, life_then)) = session.check.filter(|&(due, _)| due <= now) else {
                continue;
            };
            session.check = None;
            if session.ended.is_some() {
                continue;
            }
            let deadline = session.life + idle_for;
            if session.life != life_then && deadline > now {
                session.check = Some((deadline, session.life));
            } else {
                self.end_session(s, EndedReason::Abandoned);
            }
        }
    }
}
