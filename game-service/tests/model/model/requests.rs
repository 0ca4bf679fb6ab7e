//! What players, game servers and the IM service ask of the model: connecting, reading, answering prompts, leaving, ending sessions, heartbeats and launching lobbies from a chat, each with the reply the contract gives.

use std::collections::BTreeSet;

use shared_types::game::{EndedReason, Reason};

use super::{Closed, Event, Model, Offer, Player, Prompt, PromptId, Reply, SessionId, TTL};

impl Model {
    /// Lobbies a connect could turn into a join prompt for `p` right now.
    pub fn joinable(&self, p: Player) -> Vec<SessionId> {
        (0..self.sessions.len())
            .filter(|&s| self.sessions[s].pending.contains_key(&p))
            .collect()
    }

    /// Steps 2-6 of the flow, for a session of `mode` (`None`: the default; an unknown one
    /// changes nothing). Resume what is open; else a join prompt for an invitation
    /// (`prefer` when it is one of several, since the contract does not say which), for
    /// the lobby's mode; else ask the IM service.
    pub fn connect(&mut self, p: Player, mode: Option<&str>, prefer: Option<SessionId>) -> Reply {
        let Some(mode) = self.choose(mode) else {
            return Reply::UnknownMode;
        };
        let reply = self.arrive(p, mode, prefer);
        self.shows_life(p, reply)
    }

    fn arrive(&mut self, p: Player, mode: &'static str, prefer: Option<SessionId>) -> Reply {
        let slot = &self.slots[p];
        if slot.prompt.is_some() || slot.session.is_some() {
            return Reply::Ok;
        }
        let joinable = self.joinable(p);
        let lobby = match prefer.filter(|s| joinable.contains(s)) {
            Some(s) => Some(s),
            // The newest invitation.
            None => joinable
                .iter()
                .copied()
                .max_by_key(|&s| (self.sessions[s].pending[&p], s)),
        };
        if let Some(lobby) = lobby {
            let session = &self.sessions[lobby];
            let (expires, lobby_mode) = (session.pending[&p], session.mode);
            let prompt = self.new_prompt(Offer::Join(lobby), lobby_mode, expires);
            self.put_prompt(p, prompt);
        } else if self.im_down {
            self.solo(p, Reason::ImUnavailable);
        } else {
            let partners = self.partners(p);
            if partners.is_empty() {
                self.solo(p, Reason::NoPartner);
            } else {
                let prompt = self.new_prompt(Offer::Invite(partners), mode, self.now + TTL);
                self.put_prompt(p, prompt);
            }
        }
        Reply::Ok
    }

    /// `GET /v1/me`: changes nothing but the life of the player's session.
    pub fn me(&mut self, p: Player) -> Reply {
        self.shows_life(p, Reply::Ok)
    }

    /// `GET /v1/sessions/{id}` (`None`: an id nobody was ever shown).
    pub fn read(&mut self, p: Player, session: Option<SessionId>) -> Reply {
        match session {
            Some(s) if self.visible(p, s) => {
                self.note_life(p, s);
                Reply::Ok
            }
            _ => Reply::NotFound,
        }
    }

    /// A game server ends `session`; ending an ended session changes nothing.
    pub fn end(&mut self, session: Option<SessionId>, reason: EndedReason) -> Reply {
        let Some(s) = session else {
            return Reply::NotFound;
        };
        if self.sessions[s].ended.is_none() {
            self.end_session(s, reason);
        }
        Reply::Ok
    }

    /// A game server says the match is alive.
    pub fn heartbeat(&mut self, session: Option<SessionId>) -> Reply {
        let Some(s) = session else {
            return Reply::NotFound;
        };
        self.touch(s);
        Reply::Ok
    }

    /// Accept `prompt` (`None`: an id the player never had).
    pub fn accept(
        &mut self,
        p: Player,
        prompt: Option<PromptId>,
        with: Option<&BTreeSet<Player>>,
    ) -> Reply {
        let reply = self.answer_accept(p, prompt, with);
        self.shows_life(p, reply)
    }

    fn answer_accept(
        &mut self,
        p: Player,
        prompt: Option<PromptId>,
        with: Option<&BTreeSet<Player>>,
    ) -> Reply {
        let prompt = match self.open_prompt(p, prompt, true) {
            Ok(prompt) => prompt,
            Err(reply) => return reply,
        };
        match prompt.offer {
            Offer::Invite(candidates) => {
                let chosen = match with {
                    None => candidates,
                    Some(subset) if subset.is_empty() || !subset.is_subset(&candidates) => {
                        return Reply::Invalid;
                    }
                    Some(subset) => subset.clone(),
                };
                self.host_lobby(p, prompt.id, prompt.mode, chosen);
                Reply::Ok
            }
            // A join prompt takes no `with`; the subset of an invite prompt
            // superseded by this join prompt does not matter either (docs/CONTRACT.md, "Both at once").
            Offer::Join(lobby) => self.join(p, prompt.id, lobby),
        }
    }

    /// The IM service launches a lobby of `mode` (`None`: the default) from a chat, hosted
    /// by `host` and inviting `invitees` (the host left out): refused while the host has an
    /// open prompt or a live session; else as if the host had accepted an invite prompt
    /// naming them, and invitees with nothing open get a join prompt at once.
    pub fn launch(
        &mut self,
        host: Player,
        invitees: &BTreeSet<Player>,
        mode: Option<&str>,
    ) -> Reply {
        let Some(mode) = self.choose(mode) else {
            return Reply::UnknownMode;
        };
        let slot = &self.slots[host];
        if slot.prompt.is_some() || slot.session.is_some() {
            return Reply::AlreadyPlaying;
        }
        let chosen: BTreeSet<Player> = invitees.iter().copied().filter(|&q| q != host).collect();
        if chosen.is_empty() {
            return Reply::Invalid;
        }
        self.open_lobby(host, mode, chosen, true);
        self.shows_life(host, Reply::Ok)
    }

    /// Reject `prompt`: a solo session; a lobby the player was invited to learns it.
    pub fn reject(&mut self, p: Player, prompt: Option<PromptId>) -> Reply {
        let reply = self.answer_reject(p, prompt);
        self.shows_life(p, reply)
    }

    fn answer_reject(&mut self, p: Player, prompt: Option<PromptId>) -> Reply {
        let prompt = match self.open_prompt(p, prompt, false) {
            Ok(prompt) => prompt,
            Err(reply) => return reply,
        };
        if let Offer::Join(lobby) = prompt.offer {
            self.drop_invitee(lobby, p, false);
        }
        let slot = &mut self.slots[p];
        slot.prompt = None;
        slot.closed.insert(prompt.id, Closed::Rejected);
        self.solo(p, Reason::Rejected);
        Reply::Ok
    }

    /// Leave `session` (`None`: an id nobody was ever shown).
    pub fn leave(&mut self, p: Player, session: Option<SessionId>) -> Reply {
        let reply = self.depart(p, session);
        self.shows_life(p, reply)
    }

    fn depart(&mut self, p: Player, session: Option<SessionId>) -> Reply {
        let Some(s) = session else {
            return Reply::NotFound;
        };
        if self.slots[p].session != Some(s) {
            // Leaving a session one already left is harmless; a stranger learns nothing.
            return if self.visible(p, s) {
                Reply::Ok
            } else {
                Reply::NotFound
            };
        }
        self.slots[p].session = None;
        self.sessions[s].players.retain(|&q| q != p);
        if self.sessions[s].players.is_empty() {
            // A session nobody is in ends; its invitations are withdrawn.
            self.end_session(s, EndedReason::Left);
            self.tell(p, Event::Session(self.session_view(s)));
        } else {
            self.tell(p, Event::Session(self.session_view(s)));
            self.announce(s);
        }
        Reply::Ok
    }

    /// The open prompt an answer applies to, following a superseded invite
    /// prompt to its join prompt; `Err` is the reply when nothing is left to do.
    fn open_prompt(
        &self,
        p: Player,
        prompt: Option<PromptId>,
        accept: bool,
    ) -> Result<Prompt, Reply> {
        let slot = &self.slots[p];
        let mut id = prompt.ok_or(Reply::NotFound)?;
        loop {
            if let Some(open) = slot.prompt.as_ref().filter(|pr| pr.id == id) {
                return Ok(open.clone());
            }
            match slot.closed.get(&id) {
                None => return Err(Reply::NotFound),
                Some(Closed::Superseded(next)) => id = *next,
                // The same answer twice is harmless; the contrary one is a 409.
                Some(Closed::Accepted) if accept => return Err(Reply::Ok),
                Some(Closed::Rejected) if !accept => return Err(Reply::Ok),
                Some(Closed::Accepted | Closed::Rejected) => return Err(Reply::AlreadyAnswered),
                Some(Closed::Cancelled(reason)) => return Err(Reply::Closed(*reason)),
            }
        }
    }
}
