//! The transitions of docs/CONTRACT.md ("The flow", "Rules") as pure functions over a [`Tx`].
//!
//! Invariants kept here: a player holds at most one of {open prompt, live
//! session}; a decision is final; the first lobby created for a pair wins and
//! replaces the other player's invite prompt with a join prompt.
//!
//! # Layout
//! - this module: arriving, answering prompts, solo sessions;
//! - [`lobby`]: opening lobbies (an accepted invite, a launch from a chat), joining, `full`;
//! - [`expiry`]: prompts and invitations running out, jobs from the store;
//! - [`lifecycle`]: leaving, ending, signs of life and abandonment;
//! - [`activity`]: who began or stopped playing, reported to the IM service.

mod activity;
mod expiry;
mod lifecycle;
mod lobby;

use chrono::{DateTime, Duration, Utc};
use shared_types::{
    UserId,
    game::{GameEvent, PromptCancelled, PromptKind, Reason, SessionState},
};
use uuid::Uuid;

use super::{
    modes::Modes,
    records::{
        Answer, DEFAULT_MODE, ExpiryJob, Invitation, PlayerRecord, PromptRecord, ScheduledJob,
        SessionRecord, SessionRef, Via,
    },
    tx::{Tx, TxError},
};

/// Most partners proposed in one invite prompt (a conversation holds at most 16 people).
pub const MAX_CANDIDATES: usize = 15;

/// A request the engine refuses; the transition's other effects (an expiry it
/// noticed on the way) are still committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotFound(&'static str),
    Invalid(String),
    AlreadyAnswered,
    PromptClosed(Reason),
    /// A mode `GAME_MODES` does not list (the detail names those it does).
    UnknownMode(String),
    /// Launching a lobby for a host who has an open prompt or a live session.
    AlreadyPlaying,
}

/// What a transition tells its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Refused(Refusal),
    /// Connect found nothing to resume: ask the IM service, then call [`Engine::arrive`].
    NeedsPartners,
}

/// What the IM service said about the player's partners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Partners {
    Found(Vec<Partner>),
    /// The IM service was down or slower than its timeout.
    Unavailable,
}

/// One partner, and the conversation in which the IM service found them (`None` when it did not say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    pub id: UserId,
    pub conversation: Option<Uuid>,
}

impl Partner {
    pub fn new(id: UserId, conversation: Option<Uuid>) -> Self {
        Self { id, conversation }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Accept,
    Reject,
}

/// The default `SESSION_IDLE_SECS`: half an hour without life ends a session.
pub const DEFAULT_SESSION_IDLE_SECS: i64 = 1800;

pub struct Engine {
    pub invite_ttl: Duration,
    /// A session with no sign of life for this long ends as abandoned.
    pub session_idle: Duration,
    /// `GAME_MODES`: the kinds of match and their most players.
    pub modes: Modes,
}

type Step = Result<Outcome, TxError>;

impl Engine {
    pub fn new(invite_ttl: Duration) -> Self {
        Self {
            invite_ttl,
            session_idle: Duration::seconds(DEFAULT_SESSION_IDLE_SECS),
            modes: Modes::default(),
        }
    }

    pub fn with_modes(mut self, modes: Modes) -> Self {
        self.modes = modes;
        self
    }

    pub fn with_session_idle(mut self, idle: Duration) -> Self {
        self.session_idle = idle;
        self
    }

    /// How coarsely life is recorded: at most one write per session per this
    /// long (an eighth of the idle time), so reads and streams stay cheap.
    pub fn life_resolution(&self) -> Duration {
        self.session_idle / 8
    }

    /// Connect, first half: return what is open, or turn a stored invitation
    /// into a join prompt. A record that points at something gone (a session
    /// that ended or no longer has the player, a join prompt whose lobby is
    /// over) is repaired here, so that connecting always leads somewhere.
    pub fn resume(&self, tx: &mut Tx, p: &UserId) -> Step {
        let mut rec = tx.player(p)?;
        if let Some(prompt) = rec.prompt.clone() {
            if prompt.expires_at <= tx.now {
                self.expire_prompt(tx, p, prompt.clone())?;
                let cleared = tx.player(p)?.prompt.is_none_or(|now| now.id != prompt.id);
                if cleared {
                    return self.resume(tx, p);
                }
                return Ok(Outcome::Done);
            }
            let Some(lobby) = &prompt.lobby else {
                return Ok(Outcome::Done);
            };
            let open = tx
                .session(lobby)?
                .is_some_and(|s| s.is_pending(p) && s.state != SessionState::Ended);
            if open {
                return Ok(Outcome::Done);
            }
            rec.remember(prompt.id, Answer::Cancelled(Reason::Withdrawn), None);
            tx.push_event(p, cancelled(prompt.id, Reason::Withdrawn));
            rec.drop_invitation(lobby.id);
            rec.prompt = None;
            tx.put_player(p, rec);
            return self.resume(tx, p);
        }
        if let Some(at) = rec.session.clone() {
            if tx.session(&at)?.is_some_and(|s| s.is_live_for(p)) {
                return Ok(Outcome::Done);
            }
            rec.session = None;
            tx.put_player(p, rec.clone());
        }
        let mut open: Vec<Invitation> = rec
            .invitations
            .iter()
            .filter(|inv| inv.expires_at > tx.now)
            .cloned()
            .collect();
        open.sort_by_key(|inv| std::cmp::Reverse(inv.expires_at));
        tx.require(open.iter().map(|inv| &inv.lobby.host))?;
        for inv in open {
            let lobby = tx.session(&inv.lobby)?;
            let joinable = lobby.as_ref().is_some_and(|s| {
                s.is_pending(p) && matches!(s.state, SessionState::Waiting | SessionState::Active)
            });
            if joinable {
                let mode = lobby.as_ref().map_or(DEFAULT_MODE, |s| s.mode.as_str());
                let prompt = join_prompt(&inv.lobby, inv.expires_at, mode);
                tx.push_event(p, GameEvent::Prompt(prompt.view()));
                rec.prompt = Some(prompt);
                tx.put_player(p, rec);
                return Ok(Outcome::Done);
            }
            rec.drop_invitation(inv.lobby.id);
            tx.put_player(p, rec.clone());
        }
        Ok(Outcome::NeedsPartners)
    }

    /// Connect, second half, with the IM service's answer: an invite prompt (for a session of
    /// `mode`, a name [`Modes::choose`] accepted) or a solo session.
    pub fn arrive(&self, tx: &mut Tx, p: &UserId, partners: &Partners, mode: &str) -> Step {
        if self.resume(tx, p)? == Outcome::Done {
            return Ok(Outcome::Done);
        }
        let mut rec = tx.player(p)?;
        match partners {
            Partners::Unavailable => self.solo(tx, p, &mut rec, Reason::ImUnavailable),
            Partners::Found(found) => {
                let mut candidates: Vec<UserId> = Vec::new();
                let mut via: Vec<Via> = Vec::new();
                for partner in found.iter().filter(|c| &c.id != p) {
                    if !candidates.contains(&partner.id) && candidates.len() < MAX_CANDIDATES {
                        candidates.push(partner.id.clone());
                        via.extend(partner.conversation.map(|conversation| Via {
                            partner: partner.id.clone(),
                            conversation,
                        }));
                    }
                }
                if candidates.is_empty() {
                    self.solo(tx, p, &mut rec, Reason::NoPartner);
                } else {
                    let prompt = PromptRecord {
                        id: Uuid::new_v4(),
                        kind: PromptKind::Invite,
                        candidates,
                        lobby: None,
                        expires_at: tx.now + self.invite_ttl,
                        mode: mode.to_owned(),
                        via,
                    };
                    tx.schedule(ScheduledJob {
                        job: ExpiryJob::Invite {
                            player: p.clone(),
                            prompt_id: prompt.id,
                        },
                        due: prompt.expires_at,
                    });
                    tx.push_event(p, GameEvent::Prompt(prompt.view()));
                    rec.prompt = Some(prompt);
                }
            }
        }
        tx.put_player(p, rec);
        Ok(Outcome::Done)
    }

    /// Accept an invite prompt (optionally for a subset of its candidates) or a join prompt.
    pub fn accept(
        &self,
        tx: &mut Tx,
        p: &UserId,
        prompt_id: Uuid,
        with: Option<&[UserId]>,
    ) -> Step {
        let prompt = match self.resolve(tx, p, prompt_id, Decision::Accept)? {
            Ok(prompt) => prompt,
            Err(outcome) => return Ok(outcome),
        };
        match prompt.kind {
            PromptKind::Invite => self.host_lobby(tx, p, prompt, with),
            PromptKind::Join => self.join_lobby(tx, p, prompt),
        }
    }

    /// Reject a prompt: the player gets a solo session; a lobby they were invited to learns it.
    pub fn reject(&self, tx: &mut Tx, p: &UserId, prompt_id: Uuid) -> Step {
        let prompt = match self.resolve(tx, p, prompt_id, Decision::Reject)? {
            Ok(prompt) => prompt,
            Err(outcome) => return Ok(outcome),
        };
        if let Some(lobby) = &prompt.lobby
            && let Some(session) = tx.session(lobby)?
        {
            self.drop_invitee(tx, session, p, false);
        }
        let mut rec = tx.player(p)?;
        rec.prompt = None;
        rec.remember(prompt.id, Answer::Rejected, None);
        if let Some(lobby) = &prompt.lobby {
            rec.drop_invitation(lobby.id);
        }
        self.solo(tx, p, &mut rec, Reason::Rejected);
        tx.put_player(p, rec);
        Ok(Outcome::Done)
    }

    /// Finds the open prompt an answer applies to, following a superseded invite
    /// prompt to the join prompt that replaced it. `Err` carries the final reply
    /// when there is nothing left to do.
    fn resolve(
        &self,
        tx: &mut Tx,
        p: &UserId,
        prompt_id: Uuid,
        decision: Decision,
    ) -> Result<Result<PromptRecord, Outcome>, TxError> {
        let rec = tx.player(p)?;
        let mut id = prompt_id;
        // An invite prompt is superseded at most once, by a join prompt, which is never superseded.
        for _ in 0..3 {
            if let Some(prompt) = rec.prompt.clone().filter(|prompt| prompt.id == id) {
                if prompt.expires_at <= tx.now {
                    self.expire_prompt(tx, p, prompt)?;
                    return Ok(Err(Outcome::Refused(Refusal::PromptClosed(
                        Reason::Expired,
                    ))));
                }
                return Ok(Ok(prompt));
            }
            let Some(past) = rec.answered(id) else {
                return Ok(Err(Outcome::Refused(Refusal::NotFound("no such prompt"))));
            };
            let reply = match (past.answer, decision, past.replaced_by) {
                (Answer::Cancelled(Reason::Superseded), _, Some(next)) => {
                    id = next;
                    continue;
                }
                (Answer::Accepted, Decision::Accept, _)
                | (Answer::Rejected, Decision::Reject, _) => Outcome::Done,
                (Answer::Accepted | Answer::Rejected, _, _) => {
                    Outcome::Refused(Refusal::AlreadyAnswered)
                }
                (Answer::Cancelled(reason), _, _) => {
                    Outcome::Refused(Refusal::PromptClosed(reason))
                }
            };
            return Ok(Err(reply));
        }
        Ok(Err(Outcome::Refused(Refusal::NotFound("no such prompt"))))
    }

    pub(super) fn solo(&self, tx: &mut Tx, p: &UserId, rec: &mut PlayerRecord, reason: Reason) {
        let session = SessionRecord::solo(p, reason, tx.now, &self.modes.default_mode().name);
        self.watch_idle(tx, &session);
        rec.session = Some(session.reference());
        tx.push_event(p, GameEvent::Session(session.view()));
        tx.put_session(session);
    }

    /// Every player in the session hears about its change.
    pub(super) fn announce(&self, tx: &mut Tx, session: &SessionRecord) {
        for player in &session.players {
            tx.push_event(player, GameEvent::Session(session.view()));
        }
    }
}

fn join_prompt(at: &SessionRef, expires_at: DateTime<Utc>, mode: &str) -> PromptRecord {
    PromptRecord {
        id: Uuid::new_v4(),
        kind: PromptKind::Join,
        candidates: vec![at.host.clone()],
        lobby: Some(at.clone()),
        expires_at,
        mode: mode.to_owned(),
        via: Vec::new(),
    }
}

pub(super) fn cancelled(prompt_id: Uuid, reason: Reason) -> GameEvent {
    GameEvent::PromptCancelled(PromptCancelled {
        prompt_id,
        reason,
        replaced_by: None,
    })
}

#[cfg(test)]
#[expect(clippy::expect_used, reason = "tests")]
mod tests;
