//! Lobbies in the model: opening one (an accepted invite prompt, or a launch from a chat), joining it, and its other invitations withdrawn (`full`) once its mode's seats are taken.

use std::collections::BTreeSet;

use shared_types::game::{Reason, SessionKind, SessionState};

use super::{Closed, Event, Model, Offer, Player, PromptId, Reply, Session, SessionId, TTL};

impl Model {
    /// Step 5 of the flow: the host accepted their invite prompt, for a lobby of its mode.
    pub(super) fn host_lobby(
        &mut self,
        host: Player,
        accepted: PromptId,
        mode: &'static str,
        chosen: BTreeSet<Player>,
    ) {
        let slot = &mut self.slots[host];
        slot.prompt = None;
        slot.closed.insert(accepted, Closed::Accepted);
        self.open_lobby(host, mode, chosen, false);
    }

    /// A waiting lobby of `mode` hosted by `host`; each invitee gets an invitation, and an
    /// invitee whose invite prompt names the host has it replaced by a join prompt. A launch
    /// from a chat (`prompt_idle`) also puts a join prompt to each invitee with nothing open.
    pub(super) fn open_lobby(
        &mut self,
        host: Player,
        mode: &'static str,
        chosen: BTreeSet<Player>,
        prompt_idle: bool,
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
            mode,
            max: self.max_players(mode),
            life: self.now,
            check: Some((self.now + self.idle_for(), self.now)),
            invitees: chosen.clone(),
            someone_expired: false,
        });
        self.slots[host].session = Some(lobby);
        self.tell(host, Event::Session(self.session_view(lobby)));
        for c in chosen {
            let slot = &self.slots[c];
            let names_host = slot.prompt.as_ref().is_some_and(
                |pr| matches!(&pr.offer, Offer::Invite(cands) if cands.contains(&host)),
            );
            let idle = slot.prompt.is_none() && slot.session.is_none();
            if names_host {
                let join = self.new_prompt(Offer::Join(lobby), mode, expires);
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
            } else if prompt_idle && idle {
                let join = self.new_prompt(Offer::Join(lobby), mode, expires);
                self.put_prompt(c, join);
            }
        }
    }

    /// `p` accepts their join prompt `prompt` for `lobby`. The join that takes the mode's
    /// last seat withdraws every other invitation (`full`): their join prompts are cancelled,
    /// and nobody is pending any more.
    pub(super) fn join(&mut self, p: Player, prompt: PromptId, lobby: SessionId) -> Reply {
        let slot = &mut self.slots[p];
        slot.prompt = None;
        let session = &mut self.sessions[lobby];
        if session.pending.remove(&p).is_none() {
            // Unreachable: a join prompt closes when its invitation does.
            slot.closed
                .insert(prompt, Closed::Cancelled(Reason::Withdrawn));
            self.cancelled(p, prompt, Reason::Withdrawn);
            return Reply::Closed(Reason::Withdrawn);
        }
        if session.players.len() >= session.max {
            // Unreachable: `GAME_MODES` is fixed for a case and filling a lobby empties
            // its pending (the store refuses this way when the mode shrank since).
            slot.closed.insert(prompt, Closed::Cancelled(Reason::Full));
            self.cancelled(p, prompt, Reason::Full);
            return Reply::Closed(Reason::Full);
        }
        session.players.push(p);
        session.state = SessionState::Active;
        slot.closed.insert(prompt, Closed::Accepted);
        slot.session = Some(lobby);
        if session.players.len() >= session.max {
            let rest = std::mem::take(&mut session.pending);
            for &q in rest.keys() {
                self.withdraw(q, lobby, Reason::Full);
            }
        }
        self.announce(lobby);
        Reply::Ok
    }
}
