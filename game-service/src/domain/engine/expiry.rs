//! Expiry: unanswered prompts and invitations run out at their deadline and
//! count as rejections; jobs the store hands out are acted on idempotently.

use shared_types::{
    UserId,
    game::{Reason, SessionKind, SessionState},
};

use super::{Engine, Outcome, Step, cancelled};
use crate::domain::{
    records::{Answer, ExpiryJob, PromptRecord, SessionRecord, SessionRef},
    tx::{Tx, TxError},
};

impl Engine {
    /// Act on an expiry the store handed out; a job that no longer applies does nothing.
    pub fn expire(&self, tx: &mut Tx, job: &ExpiryJob) -> Step {
        match job {
            ExpiryJob::Invite { player, prompt_id } => {
                let rec = tx.player(player)?;
                match rec.prompt {
                    Some(prompt) if prompt.id == *prompt_id && prompt.expires_at <= tx.now => {
                        self.expire_prompt(tx, player, prompt)?;
                    }
                    _ => {}
                }
            }
            ExpiryJob::Invitation { lobby, invitee } => {
                tx.require([&lobby.host, invitee])?;
                self.expire_invitation(tx, lobby, invitee)?;
            }
            ExpiryJob::Idle { session, life_at } => self.check_idle(tx, session, *life_at)?,
            // Not transitions: the game runner delivers them (crate::game::deliver).
            ExpiryJob::Announce { .. } | ExpiryJob::Activity { .. } => {}
        }
        Ok(Outcome::Done)
    }

    /// An invitee is out of a lobby (rejected or expired). A lobby left with
    /// nobody pending and nobody joined turns into the host's solo session.
    pub(super) fn drop_invitee(
        &self,
        tx: &mut Tx,
        mut lobby: SessionRecord,
        invitee: &UserId,
        expired: bool,
    ) {
        if !lobby.is_pending(invitee) {
            return;
        }
        lobby.pending.retain(|q| &q.player != invitee);
        if expired {
            lobby.expired.push(invitee.clone());
        }
        if lobby.state == SessionState::Waiting && lobby.pending.is_empty() {
            lobby.kind = SessionKind::Solo;
            lobby.state = SessionState::Active;
            lobby.reason = Some(if lobby.expired.is_empty() {
                Reason::Declined
            } else {
                Reason::Expired
            });
        }
        self.announce(tx, &lobby);
        tx.put_session(lobby);
    }

    /// Expires every prompt of a locked player whose deadline has passed,
    /// before a transition reads them: an expiry takes effect at its deadline,
    /// not when a sweep or some request happens to notice it, whatever the
    /// transition (the game runner calls this first in every one).
    pub fn settle(&self, tx: &mut Tx) -> Result<(), TxError> {
        let due: Vec<(UserId, PromptRecord)> = tx
            .locked()
            .filter_map(|p| {
                let prompt = tx.current(p)?.prompt.clone()?;
                (prompt.expires_at <= tx.now).then(|| (p.clone(), prompt))
            })
            .collect();
        for (p, prompt) in due {
            self.expire_prompt(tx, &p, prompt)?;
        }
        Ok(())
    }

    pub(super) fn expire_prompt(
        &self,
        tx: &mut Tx,
        p: &UserId,
        prompt: PromptRecord,
    ) -> Result<(), TxError> {
        if let Some(lobby) = &prompt.lobby {
            return self.expire_invitation(tx, lobby, p);
        }
        let mut rec = tx.player(p)?;
        rec.prompt = None;
        rec.remember(prompt.id, Answer::Cancelled(Reason::Expired), None);
        tx.push_event(p, cancelled(prompt.id, Reason::Expired));
        self.solo(tx, p, &mut rec, Reason::Expired);
        tx.put_player(p, rec);
        Ok(())
    }

    pub(super) fn expire_invitation(
        &self,
        tx: &mut Tx,
        at: &SessionRef,
        invitee: &UserId,
    ) -> Result<(), TxError> {
        tx.require([&at.host, invitee])?;
        let now = tx.now;
        let lobby = tx.session(at)?;
        let not_due = lobby.as_ref().is_some_and(|s| {
            s.pending
                .iter()
                .any(|q| &q.player == invitee && q.expires_at > now)
        });
        if not_due {
            return Ok(());
        }
        if let Some(lobby) = lobby {
            self.drop_invitee(tx, lobby, invitee, true);
        }
        let mut rec = tx.player(invitee)?;
        rec.drop_invitation(at.id);
        let stale = |pr: &PromptRecord| pr.lobby.as_ref() == Some(at) && pr.expires_at <= now;
        if let Some(prompt) = rec.prompt.clone().filter(stale) {
            rec.prompt = None;
            rec.remember(prompt.id, Answer::Cancelled(Reason::Expired), None);
            tx.push_event(invitee, cancelled(prompt.id, Reason::Expired));
            self.solo(tx, invitee, &mut rec, Reason::Expired);
        }
        tx.put_player(invitee, rec);
        Ok(())
    }

    /// The invitee's invitation and join prompt go away for `reason`: the host left an
    /// empty lobby (`withdrawn`), or the lobby is full (`full`).
    pub(super) fn withdraw_invitation(
        &self,
        tx: &mut Tx,
        invitee: &UserId,
        at: &SessionRef,
        reason: Reason,
    ) -> Result<(), TxError> {
        let mut rec = tx.player(invitee)?;
        rec.drop_invitation(at.id);
        if let Some(prompt) = rec
            .prompt
            .clone()
            .filter(|pr| pr.lobby.as_ref() == Some(at))
        {
            rec.prompt = None;
            if prompt.expires_at <= tx.now {
                // Its deadline passed before the host left: it expired, as a rejection would.
                rec.remember(prompt.id, Answer::Cancelled(Reason::Expired), None);
                tx.push_event(invitee, cancelled(prompt.id, Reason::Expired));
                self.solo(tx, invitee, &mut rec, Reason::Expired);
            } else {
                rec.remember(prompt.id, Answer::Cancelled(reason), None);
                tx.push_event(invitee, cancelled(prompt.id, reason));
            }
        }
        tx.put_player(invitee, rec);
        Ok(())
    }
}
