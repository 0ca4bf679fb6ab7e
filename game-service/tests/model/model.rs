//! A small reference model of the game's state machine (docs/CONTRACT.md: the flow, the rules, the session lifecycle and the choices it writes down), written without the engine.
//!
//! Players, prompts and sessions are plain indices. Time is whole seconds since
//! the start of the case. Expiry and abandonment happen only in a sweep of
//! every due job, which in the test follows every move of the clock. Every
//! change also records the events each player should hear of it.

use std::collections::{BTreeMap, BTreeSet};

use shared_types::game::{EndedReason, PromptKind, Reason, SessionKind, SessionState};

/// `INVITE_TTL_SECS`, the documented default.
pub const TTL: i64 = 60;

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

pub type Player = usize;
pub type PromptId = usize;
pub type SessionId = usize;

/// What a command answers: success, or which refusal (docs/CONTRACT.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Ok,
    /// 404: a prompt the player never had, a session they may not see.
    NotFound,
    /// 400: `with` is empty or names a non-candidate.
    Invalid,
    /// 409 `already_answered`: the contrary answer to an answered prompt.
    AlreadyAnswered,
    /// 409 `prompt_closed`: the prompt was closed without an answer.
    Closed(Reason),
}

/// What a prompt offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// Play with these partners?
    Invite(BTreeSet<Player>),
    /// Join this lobby?
    Join(SessionId),
}

#[derive(Debug, Clone)]
pub struct Prompt {
    pub id: PromptId,
    pub offer: Offer,
    pub expires: i64,
}

/// How a prompt stopped being open; decisions are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closed {
    Accepted,
    Rejected,
    Cancelled(Reason),
    /// An invite prompt replaced by this join prompt: answers go there.
    Superseded(PromptId),
}

#[derive(Debug, Clone)]
pub struct Session {
    pub kind: SessionKind,
    pub state: SessionState,
    pub host: Player,
    pub players: Vec<Player>,
    /// Invitees who have not answered, with the instant their invitation runs out.
    pub pending: BTreeMap<Player, i64>,
    pub reason: Option<Reason>,
    pub ended: Option<EndedReason>,
    /// The last sign of life recorded (creation at first); recorded at most once per resolution.
    life: i64,
    /// The idle check scheduled: when it is due, and the life recorded when it was scheduled.
    /// A session is abandoned once its recorded life is the idle time plus a
    /// resolution old (recorded life lags real life by up to one resolution).
    check: Option<(i64, i64)>,
    /// Everyone ever invited (they may read the session).
    invitees: BTreeSet<Player>,
    /// Some invitee's invitation ran out (else every invitee said no).
    someone_expired: bool,
}

#[derive(Debug, Clone, Default)]
struct Slot {
    prompt: Option<Prompt>,
    /// The player's live session (never an ended one).
    session: Option<SessionId>,
    closed: BTreeMap<PromptId, Closed>,
}

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
}

#[derive(Debug, Clone)]
pub struct Model {
    now: i64,
    /// `SESSION_IDLE_SECS` (a multiple of 8, so that its resolution is whole seconds).
    idle: i64,
    im_down: bool,
    /// Who each player talks to in the IM service (available, recent, open).
    talks: Vec<BTreeSet<Player>>,
    slots: Vec<Slot>,
    sessions: Vec<Session>,
    prompts: usize,
    /// Per player, the events not yet taken by the checker, in order.
    events: Vec<Vec<Event>>,
}

impl Model {
    pub fn new(talks: Vec<BTreeSet<Player>>, idle: i64) -> Self {
        assert!(
            idle > 0 && idle % 8 == 0,
            "idle time {idle}: a positive multiple of 8"
        );
        Self {
            now: 0,
            idle,
            im_down: false,
            slots: vec![Slot::default(); talks.len()],
            events: vec![Vec::new(); talks.len()],
            talks,
            sessions: Vec::new(),
            prompts: 0,
        }
    }

    /// Life is recorded at most once per this long: an eighth of the idle time.
    pub fn resolution(&self) -> i64 {
        self.idle / 8
    }

    /// How long after its last recorded life a session is abandoned: the idle
    /// time plus two resolutions (recorded life lags by up to one, and an open
    /// stream first notes life one resolution after it opened).
    pub fn idle_for(&self) -> i64 {
        self.idle + 2 * self.resolution()
    }

    /// The events `p` heard since the last call.
    pub fn take_events(&mut self, p: Player) -> Vec<Event> {
        std::mem::take(&mut self.events[p])
    }

    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    pub fn set_im_down(&mut self, down: bool) {
        self.im_down = down;
    }

    /// Lobbies a connect could turn into a join prompt for `p` right now.
    pub fn joinable(&self, p: Player) -> Vec<SessionId> {
        (0..self.sessions.len())
            .filter(|&s| self.sessions[s].pending.contains_key(&p))
            .collect()
    }

    /// Steps 2-6 of the flow. Resume what is open; else a join prompt for an invitation
    /// (`prefer` when it is one of several, since the contract does not say which);
    /// else ask the IM service.
    pub fn connect(&mut self, p: Player, prefer: Option<SessionId>) -> Reply {
        let reply = self.arrive(p, prefer);
        self.shows_life(p, reply)
    }

    fn arrive(&mut self, p: Player, prefer: Option<SessionId>) -> Reply {
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
            let expires = self.sessions[lobby].pending[&p];
            let prompt = self.new_prompt(Offer::Join(lobby), expires);
            self.put_prompt(p, prompt);
        } else if self.im_down {
            self.solo(p, Reason::ImUnavailable);
        } else if self.talks[p].is_empty() {
            self.solo(p, Reason::NoPartner);
        } else {
            let prompt = self.new_prompt(Offer::Invite(self.talks[p].clone()), self.now + TTL);
            self.put_prompt(p, prompt);
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
                self.host_lobby(p, prompt.id, chosen);
                Reply::Ok
            }
            // A join prompt takes no `with`; the subset of an invite prompt
            // superseded by this join prompt does not matter either (docs/CONTRACT.md, "Both at once").
            Offer::Join(lobby) => {
                let slot = &mut self.slots[p];
                slot.prompt = None;
                let session = &mut self.sessions[lobby];
                if session.pending.remove(&p).is_none() {
                    // Unreachable: a join prompt closes when its invitation does.
                    slot.closed
                        .insert(prompt.id, Closed::Cancelled(Reason::Withdrawn));
                    self.cancelled(p, prompt.id, Reason::Withdrawn);
                    return Reply::Closed(Reason::Withdrawn);
                }
                session.players.push(p);
                session.state = SessionState::Active;
                slot.closed.insert(prompt.id, Closed::Accepted);
                slot.session = Some(lobby);
                self.announce(lobby);
                Reply::Ok
            }
        }
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
        }
    }

    fn prompt_view(&self, prompt: &Prompt) -> PromptView {
        match &prompt.offer {
            Offer::Invite(candidates) => PromptView {
                id: prompt.id,
                kind: PromptKind::Invite,
                candidates: candidates.iter().copied().collect(),
                host: None,
                session: None,
                expires: prompt.expires,
            },
            Offer::Join(s) => PromptView {
                id: prompt.id,
                kind: PromptKind::Join,
                candidates: vec![self.sessions[*s].host],
                host: Some(self.sessions[*s].host),
                session: Some(*s),
                expires: prompt.expires,
            },
        }
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

    /// Step 5 of the flow: a waiting lobby; each invitee gets an invitation, and an
    /// invitee whose invite prompt names the host has it replaced by a join prompt.
    fn host_lobby(&mut self, host: Player, accepted: PromptId, chosen: BTreeSet<Player>) {
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
    fn drop_invitee(&mut self, s: SessionId, invitee: Player, expired: bool) {
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

    fn solo(&mut self, p: Player, reason: Reason) {
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
    fn end_session(&mut self, s: SessionId, reason: EndedReason) {
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

    /// After a request that renders the player's state: life on the session
    /// they are in now (connect, me, answering a prompt, leaving).
    fn shows_life(&mut self, p: Player, reply: Reply) -> Reply {
        if reply == Reply::Ok
            && let Some(s) = self.slots[p].session
        {
            self.note_life(p, s);
        }
        reply
    }

    /// A request of `p` about `s` is a sign of life only if `p` plays in it.
    fn note_life(&mut self, p: Player, s: SessionId) {
        if self.sessions[s].players.contains(&p) {
            self.touch(s);
        }
    }

    /// Records life on a session that has not ended, unless some was recorded
    /// less than a resolution ago.
    fn touch(&mut self, s: SessionId) {
        let resolution = self.resolution();
        let session = &mut self.sessions[s];
        if session.ended.is_none() && self.now - session.life >= resolution {
            session.life = self.now;
        }
    }

    /// Every player of the session hears its new state.
    fn announce(&mut self, s: SessionId) {
        let view = self.session_view(s);
        for q in self.sessions[s].players.clone() {
            self.tell(q, Event::Session(view.clone()));
        }
    }

    fn tell(&mut self, p: Player, event: Event) {
        self.events[p].push(event);
    }

    fn cancelled(&mut self, p: Player, prompt: PromptId, reason: Reason) {
        self.tell(
            p,
            Event::Cancelled {
                prompt,
                reason,
                replaced_by: None,
            },
        );
    }

    /// Puts a new prompt to `p`.
    fn put_prompt(&mut self, p: Player, prompt: Prompt) {
        self.tell(p, Event::Prompt(self.prompt_view(&prompt)));
        self.slots[p].prompt = Some(prompt);
    }

    fn new_prompt(&mut self, offer: Offer, expires: i64) -> Prompt {
        self.prompts += 1;
        Prompt {
            id: self.prompts,
            offer,
            expires,
        }
    }
}
