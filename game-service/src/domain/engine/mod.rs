//! The transitions of docs/CONTRACT.md ("The flow", "Rules") as pure functions over a [`Tx`].
//!
//! Invariants kept here: a player holds at most one of {open prompt, live
//! session}; a decision is final; the first lobby created for a pair wins and
//! replaces the other player's invite prompt with a join prompt.
//!
//! # Layout
//! - this module: arriving, answering prompts, lobbies and solo sessions;
//! - [`expiry`]: prompts and invitations running out, jobs from the store;
//! - [`lifecycle`]: leaving, ending, signs of life and abandonment.

mod expiry;
mod lifecycle;

use chrono::{DateTime, Duration, Utc};
use shared_types::{
    UserId,
    game::{GameEvent, PromptCancelled, PromptKind, Reason, SessionKind, SessionState},
};
use uuid::Uuid;

use super::{
    records::{
        Answer, DEFAULT_MODE, ExpiryJob, Invitation, Pending, PlayerRecord, PromptRecord,
        ScheduledJob, SessionRecord, SessionRef,
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
    Found(Vec<UserId>),
    /// The IM service was down or slower than its timeout.
    Unavailable,
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
}

type Step = Result<Outcome, TxError>;

impl Engine {
    pub fn new(invite_ttl: Duration) -> Self {
        Self {
            invite_ttl,
            session_idle: Duration::seconds(DEFAULT_SESSION_IDLE_SECS),
        }
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
                let prompt = join_prompt(&inv.lobby, inv.expires_at);
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

    /// Connect, second half, with the IM service's answer: an invite prompt or a solo session.
    pub fn arrive(&self, tx: &mut Tx, p: &UserId, partners: &Partners) -> Step {
        if self.resume(tx, p)? == Outcome::Done {
            return Ok(Outcome::Done);
        }
        let mut rec = tx.player(p)?;
        match partners {
            Partners::Unavailable => self.solo(tx, p, &mut rec, Reason::ImUnavailable),
            Partners::Found(found) => {
                let mut candidates: Vec<UserId> = Vec::new();
                for partner in found.iter().filter(|c| *c != p) {
                    if !candidates.contains(partner) && candidates.len() < MAX_CANDIDATES {
                        candidates.push(partner.clone());
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

    fn host_lobby(
        &self,
        tx: &mut Tx,
        host: &UserId,
        prompt: PromptRecord,
        with: Option<&[UserId]>,
    ) -> Step {
        let chosen: Vec<UserId> = match with {
            None => prompt.candidates.clone(),
            Some(subset) => {
                if subset.is_empty() {
                    return Ok(Outcome::Refused(Refusal::Invalid(
                        "`with` must name at least one candidate".into(),
                    )));
                }
                if let Some(stranger) = subset.iter().find(|c| !prompt.candidates.contains(c)) {
                    return Ok(Outcome::Refused(Refusal::Invalid(format!(
                        "{stranger} is not a candidate of this prompt"
                    ))));
                }
                let mut unique: Vec<UserId> = Vec::new();
                for c in subset {
                    if !unique.contains(c) {
                        unique.push(c.clone());
                    }
                }
                unique
            }
        };
        tx.require(&chosen)?;
        let expires_at = tx.now + self.invite_ttl;
        let lobby = SessionRecord {
            id: Uuid::new_v4(),
            kind: SessionKind::Multiplayer,
            state: SessionState::Waiting,
            host: host.clone(),
            players: vec![host.clone()],
            pending: chosen
                .iter()
                .map(|c| Pending {
                    player: c.clone(),
                    expires_at,
                })
                .collect(),
            invitees: chosen.clone(),
            expired: Vec::new(),
            created_at: tx.now,
            reason: None,
            mode: DEFAULT_MODE.to_owned(),
            ended_reason: None,
            life_at: None,
        };
        self.watch_idle(tx, &lobby);
        let at = lobby.reference();
        let mut rec = tx.player(host)?;
        rec.prompt = None;
        rec.remember(prompt.id, Answer::Accepted, None);
        rec.session = Some(at.clone());
        tx.put_player(host, rec);
        tx.push_event(host, GameEvent::Session(lobby.view()));
        tx.put_session(lobby);

        for invitee in &chosen {
            let mut crec = tx.player(invitee)?;
            crec.invitations.push(Invitation {
                lobby: at.clone(),
                expires_at,
            });
            tx.schedule(ScheduledJob {
                job: ExpiryJob::Invitation {
                    lobby: at.clone(),
                    invitee: invitee.clone(),
                },
                due: expires_at,
            });
            // A prompt past its deadline expired (counts as a rejection) even if no sweep ran yet.
            if let Some(stale) = crec.prompt.clone().filter(|pr| pr.expires_at <= tx.now) {
                tx.put_player(invitee, crec);
                self.expire_prompt(tx, invitee, stale)?;
                crec = tx.player(invitee)?;
            }
            let names_host = crec
                .prompt
                .as_ref()
                .is_some_and(|old| old.kind == PromptKind::Invite && old.candidates.contains(host));
            if let (true, Some(old)) = (names_host, crec.prompt.clone()) {
                let join = join_prompt(&at, expires_at);
                crec.remember(old.id, Answer::Cancelled(Reason::Superseded), Some(join.id));
                tx.push_event(
                    invitee,
                    GameEvent::PromptCancelled(PromptCancelled {
                        prompt_id: old.id,
                        reason: Reason::Superseded,
                        replaced_by: Some(join.id),
                    }),
                );
                tx.push_event(invitee, GameEvent::Prompt(join.view()));
                crec.prompt = Some(join);
            }
            tx.put_player(invitee, crec);
        }
        Ok(Outcome::Done)
    }

    fn join_lobby(&self, tx: &mut Tx, p: &UserId, prompt: PromptRecord) -> Step {
        let Some(at) = prompt.lobby.clone() else {
            return Ok(Outcome::Refused(Refusal::PromptClosed(Reason::Withdrawn)));
        };
        let lobby = tx
            .session(&at)?
            .filter(|s| s.is_pending(p) && s.state != SessionState::Ended);
        let mut rec = tx.player(p)?;
        rec.prompt = None;
        rec.drop_invitation(at.id);
        let Some(mut lobby) = lobby else {
            rec.remember(prompt.id, Answer::Cancelled(Reason::Withdrawn), None);
            tx.push_event(p, cancelled(prompt.id, Reason::Withdrawn));
            tx.put_player(p, rec);
            return Ok(Outcome::Refused(Refusal::PromptClosed(Reason::Withdrawn)));
        };
        lobby.pending.retain(|q| &q.player != p);
        lobby.players.push(p.clone());
        lobby.state = SessionState::Active;
        rec.remember(prompt.id, Answer::Accepted, None);
        rec.session = Some(at);
        tx.put_player(p, rec);
        self.announce(tx, &lobby);
        tx.put_session(lobby);
        Ok(Outcome::Done)
    }

    pub(super) fn solo(&self, tx: &mut Tx, p: &UserId, rec: &mut PlayerRecord, reason: Reason) {
        let session = SessionRecord::solo(p, reason, tx.now);
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

fn join_prompt(at: &SessionRef, expires_at: DateTime<Utc>) -> PromptRecord {
    PromptRecord {
        id: Uuid::new_v4(),
        kind: PromptKind::Join,
        candidates: vec![at.host.clone()],
        lobby: Some(at.clone()),
        expires_at,
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
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn invite_prompt(candidate: &UserId, expires_at: DateTime<Utc>) -> PromptRecord {
        PromptRecord {
            id: Uuid::new_v4(),
            kind: PromptKind::Invite,
            candidates: vec![candidate.clone()],
            lobby: None,
            expires_at,
        }
    }

    #[test]
    fn settling_expires_every_locked_players_due_prompt_and_nothing_else() {
        let engine = Engine::new(chrono::Duration::seconds(30));
        let now = Utc::now();
        let (alice, bob, carol) = (
            UserId::parse("alice").expect("valid"),
            UserId::parse("bob").expect("valid"),
            UserId::parse("carol").expect("valid"),
        );
        let due = invite_prompt(&bob, now - chrono::Duration::seconds(1));
        let open = invite_prompt(&alice, now + chrono::Duration::seconds(10));
        let players = BTreeMap::from([
            (
                alice.clone(),
                PlayerRecord {
                    prompt: Some(due.clone()),
                    ..PlayerRecord::default()
                },
            ),
            (
                bob.clone(),
                PlayerRecord {
                    prompt: Some(open.clone()),
                    ..PlayerRecord::default()
                },
            ),
            (carol.clone(), PlayerRecord::default()),
        ]);
        let mut tx = Tx::new(now, players, BTreeMap::new());

        engine.settle(&mut tx).expect("nothing else to lock");

        let alice_now = tx.current(&alice).expect("locked");
        assert!(alice_now.prompt.is_none(), "the due prompt is gone");
        assert!(matches!(
            alice_now.answered(due.id).map(|a| a.answer),
            Some(Answer::Cancelled(Reason::Expired))
        ));
        assert!(alice_now.session.is_some(), "an expiry is a solo session");
        let bob_now = tx.current(&bob).expect("locked");
        assert_eq!(bob_now.prompt.as_ref().map(|p| p.id), Some(open.id));
        let changes = tx.changes();
        let changed: Vec<&UserId> = changes.players.iter().map(|(p, _)| p).collect();
        assert_eq!(changed, [&alice], "only alice changed");
        assert!(
            changes.events.iter().all(|(to, _)| to == &alice),
            "only alice hears of it"
        );
    }
}
