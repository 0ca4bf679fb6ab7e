//! Lobbies: opening one (an accepted invite prompt, or a launch from a chat), joining it,
//! and closing it to the other invitees once its mode is full.

use shared_types::{
    UserId,
    game::{GameEvent, PromptCancelled, PromptKind, Reason, SessionKind, SessionState},
};
use uuid::Uuid;

use super::{Engine, MAX_CANDIDATES, Outcome, Refusal, Step, cancelled, join_prompt};
use crate::domain::{
    records::{
        Answer, ExpiryJob, Invitation, Pending, PlayerRecord, PromptRecord, ScheduledJob,
        SessionRecord,
    },
    tx::{Tx, TxError},
};

/// Who is invited to a new lobby and where it is announced.
struct Invitees<'a> {
    players: &'a [UserId],
    /// The conversations to announce the lobby in (one job each).
    conversations: Vec<Uuid>,
    /// A launch from a chat prompts invitees with nothing open at once (an accepted invite
    /// leaves them their invitation, turned into a join prompt when they connect).
    prompt_idle: bool,
}

impl Engine {
    pub(super) fn host_lobby(
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
                unique(subset)
            }
        };
        tx.require(&chosen)?;
        let mut conversations: Vec<Uuid> = Vec::new();
        for via in prompt.via.iter().filter(|v| chosen.contains(&v.partner)) {
            if !conversations.contains(&via.conversation) {
                conversations.push(via.conversation);
            }
        }
        let mut rec = tx.player(host)?;
        rec.prompt = None;
        rec.remember(prompt.id, Answer::Accepted, None);
        let invitees = Invitees {
            players: &chosen,
            conversations,
            prompt_idle: false,
        };
        self.open_lobby(tx, host, rec, &prompt.mode, invitees)?;
        Ok(Outcome::Done)
    }

    /// A lobby launched from a chat: hosted by `host` (who must have no open prompt and no
    /// live session), inviting `invitees`, announced in `conversation`.
    pub fn launch(
        &self,
        tx: &mut Tx,
        host: &UserId,
        invitees: &[UserId],
        mode: &str,
        conversation: Uuid,
    ) -> Step {
        let rec = tx.player(host)?;
        if rec.prompt.is_some() {
            return Ok(Outcome::Refused(Refusal::AlreadyPlaying));
        }
        if let Some(at) = &rec.session
            && tx.session(at)?.is_some_and(|s| s.is_live_for(host))
        {
            return Ok(Outcome::Refused(Refusal::AlreadyPlaying));
        }
        let chosen: Vec<UserId> = unique(invitees)
            .into_iter()
            .filter(|p| p != host)
            .take(MAX_CANDIDATES)
            .collect();
        if chosen.is_empty() {
            return Ok(Outcome::Refused(Refusal::Invalid(
                "`invitees` must name someone other than the host".into(),
            )));
        }
        tx.require(&chosen)?;
        let invitees = Invitees {
            players: &chosen,
            conversations: vec![conversation],
            prompt_idle: true,
        };
        self.open_lobby(tx, host, rec, mode, invitees)?;
        Ok(Outcome::Done)
    }

    /// Creates the waiting lobby, puts the host in it, invites `invitees` and schedules its
    /// announcements. An invitee whose invite prompt names the host has it replaced by a
    /// join prompt (`superseded`): the first lobby created for a pair wins.
    fn open_lobby(
        &self,
        tx: &mut Tx,
        host: &UserId,
        mut host_rec: PlayerRecord,
        mode: &str,
        invitees: Invitees<'_>,
    ) -> Result<(), TxError> {
        let chosen = invitees.players;
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
            invitees: chosen.to_vec(),
            expired: Vec::new(),
            created_at: tx.now,
            reason: None,
            mode: mode.to_owned(),
            ended_reason: None,
            life_at: None,
        };
        self.watch_idle(tx, &lobby);
        let at = lobby.reference();
        for conversation in invitees.conversations {
            tx.schedule(ScheduledJob {
                job: ExpiryJob::Announce {
                    lobby: at.clone(),
                    conversation,
                    attempt: 0,
                },
                due: tx.now,
            });
        }
        host_rec.session = Some(at.clone());
        tx.put_player(host, host_rec);
        tx.push_event(host, GameEvent::Session(lobby.view()));
        tx.put_session(lobby);

        for invitee in chosen {
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
                let join = join_prompt(&at, expires_at, mode);
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
            } else if invitees.prompt_idle && crec.prompt.is_none() && crec.session.is_none() {
                let join = join_prompt(&at, expires_at, mode);
                tx.push_event(invitee, GameEvent::Prompt(join.view()));
                crec.prompt = Some(join);
            }
            tx.put_player(invitee, crec);
        }
        Ok(())
    }

    pub(super) fn join_lobby(&self, tx: &mut Tx, p: &UserId, prompt: PromptRecord) -> Step {
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
        let max_players = self.modes.max_players(&lobby.mode);
        lobby.pending.retain(|q| &q.player != p);
        if lobby.players.len() >= max_players {
            // Only when the mode shrank since the lobby opened: it is full already, for
            // this invitee and every other one.
            let rest: Vec<UserId> = lobby.pending.iter().map(|q| q.player.clone()).collect();
            tx.require(&rest)?;
            rec.remember(prompt.id, Answer::Cancelled(Reason::Full), None);
            tx.push_event(p, cancelled(prompt.id, Reason::Full));
            tx.put_player(p, rec);
            for invitee in &rest {
                self.withdraw_invitation(tx, invitee, &at, Reason::Full)?;
            }
            lobby.pending.clear();
            self.announce(tx, &lobby);
            tx.put_session(lobby);
            return Ok(Outcome::Refused(Refusal::PromptClosed(Reason::Full)));
        }
        lobby.players.push(p.clone());
        lobby.state = SessionState::Active;
        rec.remember(prompt.id, Answer::Accepted, None);
        rec.session = Some(at.clone());
        tx.put_player(p, rec);
        if lobby.players.len() >= max_players && !lobby.pending.is_empty() {
            let rest: Vec<UserId> = lobby.pending.iter().map(|q| q.player.clone()).collect();
            tx.require(&rest)?;
            for invitee in &rest {
                self.withdraw_invitation(tx, invitee, &at, Reason::Full)?;
            }
            lobby.pending.clear();
        }
        self.announce(tx, &lobby);
        tx.put_session(lobby);
        Ok(Outcome::Done)
    }
}

/// `ids` without repeats, in their order.
fn unique(ids: &[UserId]) -> Vec<UserId> {
    let mut unique: Vec<UserId> = Vec::new();
    for id in ids {
        if !unique.contains(id) {
            unique.push(id.clone());
        }
    }
    unique
}
