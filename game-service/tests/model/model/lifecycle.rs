//! How prompts and sessions come and go in the model: new prompts, lobbies and their invitees, solo sessions, endings and withdrawn invitations.

use std::collections::{BTreeMap, BTreeSet};

use shared_types::game::{EndedReason, Reason, SessionKind, SessionState};

use super::{Closed, Event, Model, Offer, Player, Prompt, PromptId, Session, SessionId, TTL};

impl Model {
    /// Step 5 of the flow: a waiting lobby; each invitee gets an invitation, and an
    /// invitee whose invite prompt names the host has it replaced by a join prompt.
    pub(super) fn host_lobby(
        &mut self,
        host: Player,
        accepted: PromptId,
        chosen: BTreeSet<Player>,
    ) {
        let expires = self.now + TTL;
        let lobby = self.sessions.len();
        self.sessions.push(Session {
            kind: SessionKind::Multiplayer,
            state: SessionState::Waiting,
            host,
            players: vec![host],
            pending: chosen.iter().map(|&c| (c, expires)).collect(),
            reason: None,
            ended: None,
            life: self.now,
            check: Some((self.now + self.idle_for(), self.now)),
            invitees: chosen.clone(),
            someone_expired: false,
        });
        let slot = &mut self.slots[host];
        slot.prompt = None;
        slot.closed.insert(accepted, Closed::Accepted);
        slot.session = Some(lobby);
        self.tell(host, Event::Session(self.session_view(lobby)));
        for c in chosen {
            let names_host = self.slots[c].prompt.as_ref().is_some_and(
                |pr| matches!(&pr.offer, Offer::Invite(cands) if cands.contains(&host)),
            );
            if names_host {
                let join = self.new_prompt(Offer::Join(lobby), expires);
                let slot = &mut self.slots[c];
                if let Some(old) = slot.prompt.replace(join.clone()) {
                    slot.closed.insert(old.id, Closed::Superseded(join.id));
                    self.tell(
                        c,
                        Event::Cancelled {
                            prompt: old.id,
                            reason: Reason::Superseded,
                            replaced_by: Some(join.id),
                        },
                    );
                }
                self.tell(c, Event::Prompt(self.prompt_view(&join)));
            }
        }
    }

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
            life: self.now,
            check: Some((self.now + self.idle_for(), self.now)),
            invitees: BTreeSet::new(),
            someone_expired: false,
        });
        let s = self.sessions.len() - 1;
        self.slots[p].session = Some(s);
        self.tell(p, Event::Session(self.session_view(s)));
    }

    /// Ends a session (docs/CONTRACT.md, "Ending a session", "Abandoned sessions"):
    /// its pending invitations are withdrawn, its players are free, and each of
    /// them hears it once. Its players stay listed, as who was in it at the end.
    pub(super) fn end_session(&mut self, s: SessionId, reason: EndedReason) {
        let pending = std::mem::take(&mut self.sessions[s].pending);
        for &invitee in pending.keys() {
            self.withdraw(invitee, s);
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

    /// An invitation to an ending session goes away, with the join prompt it
    /// gave; a join prompt already past its deadline expired instead
    /// (docs/CONTRACT.md, "Choices this contract makes"). Here a sweep follows
    /// every move of the clock, so no join prompt is ever past its deadline.
    fn withdraw(&mut self, invitee: Player, s: SessionId) {
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
            slot.closed
                .insert(prompt.id, Closed::Cancelled(Reason::Withdrawn));
            self.cancelled(invitee, prompt.id, Reason::Withdrawn);
        }
    }

    /// Puts a new prompt to `p`.
    pub(super) fn put_prompt(&mut self, p: Player, prompt: Prompt) {
        self.tell(p, Event::Prompt(self.prompt_view(&prompt)));
        self.slots[p].prompt = Some(prompt);
    }

    pub(super) fn new_prompt(&mut self, offer: Offer, expires: i64) -> Prompt {
        self.prompts += 1;
        Prompt {
            id: self.prompts,
            offer,
            expires,
        }
    }
}
