//! How prompts and sessions come and go in the model: new prompts, invitees dropping out, solo sessions, endings and withdrawn invitations.

use std::collections::{BTreeMap, BTreeSet};

use shared_types::game::{EndedReason, Reason, SessionKind, SessionState};

use super::{Closed, Event, Model, Offer, Player, Prompt, Session, SessionId};

impl Model {
    /// An invitee is out (rejected or expired). A waiting lobby left with nobody
    /// pending turns into the host's solo session in place (README).
    pub(super) fn drop_invitee(&mut self, s: SessionId, invitee: Player, expired: bool) {
        let session = &mut self.sessions[s];
        if session.pending.remove(&invitee).is_none() {
            return;
        }
        session.someone_expired |= expired;
        if session.state == SessionState::Waiting && session.pending.is_empty() {
            session.kind = SessionKind::Solo;
            session.state = SessionState::Active;
            session.reason = Some(if session.someone_expired {
                Reason::Expired
            } else {
                Reason::Declined
            });
        }
        self.announce(s);
    }

    pub(super) fn solo(&mut self, p: Player, reason: Reason) {
        self.sessions.push(Session {
            kind: SessionKind::Solo,
            state: SessionState::Active,
            host: p,
            players: vec![p],
            pending: BTreeMap::new(),
            reason: Some(reason),
            ended: None,
            mode: self.modes[0].0,
            max: self.max_players(self.modes[0].0),
            life: self.now,
            check: Some((self.now + self.idle_for(), self.now)),
            invitees: BTreeSet::new(),
            someone_expired: false,
        });
        let s = self.sessions.len() - 1;
        self.slots[p].session = Some(s);
        self.played[p] = true;
        self.tell(p, Event::Session(self.session_view(s)));
    }

    /// Ends a session (docs/CONTRACT.md, "Ending a session", "Abandoned sessions"):
    /// its pending invitations are withdrawn, its players are free, and each of
    /// them hears it once. Its players stay listed, as who was in it at the end.
    pub(super) fn end_session(&mut self, s: SessionId, reason: EndedReason) {
        let pending = std::mem::take(&mut self.sessions[s].pending);
        for &invitee in pending.keys() {
            self.withdraw(invitee, s, Reason::Withdrawn);
        }
        for q in self.sessions[s].players.clone() {
            let slot = &mut self.slots[q];
            if slot.session == Some(s) {
                slot.session = None;
            }
        }
        let session = &mut self.sessions[s];
        session.state = SessionState::Ended;
        session.ended = Some(reason);
        self.announce(s);
    }

    /// An invitation to an ending session (`withdrawn`) or to one that just filled up
    /// (`full`) goes away, with the join prompt it gave; a join prompt already past its
    /// deadline expired instead (docs/CONTRACT.md, "Choices this contract makes"). Here a
    /// sweep follows every move of the clock, so no join prompt is ever past its deadline.
    /// The caller takes the invitation out of the session's `pending`.
    pub(super) fn withdraw(&mut self, invitee: Player, s: SessionId, reason: Reason) {
        let now = self.now;
        let slot = &mut self.slots[invitee];
        let Some(prompt) = slot.prompt.take_if(|pr| pr.offer == Offer::Join(s)) else {
            return;
        };
        if prompt.expires <= now {
            slot.closed
                .insert(prompt.id, Closed::Cancelled(Reason::Expired));
            self.cancelled(invitee, prompt.id, Reason::Expired);
            self.solo(invitee, Reason::Expired);
        } else {
            slot.closed.insert(prompt.id, Closed::Cancelled(reason));
            self.cancelled(invitee, prompt.id, reason);
        }
    }

    /// Puts a new prompt to `p`.
    pub(super) fn put_prompt(&mut self, p: Player, prompt: Prompt) {
        self.tell(p, Event::Prompt(self.prompt_view(&prompt)));
        self.slots[p].prompt = Some(prompt);
    }

    pub(super) fn new_prompt(&mut self, offer: Offer, mode: &'static str, expires: i64) -> Prompt {
        self.prompts += 1;
        Prompt {
            id: self.prompts,
            offer,
            mode,
            expires,
        }
    }
}
