//! How sessions end: every player leaves, a game server ends it, or nobody
//! shows life for the idle time (docs/CONTRACT.md, "Session lifecycle").

use shared_types::{
    UserId,
    game::{EndedReason, GameEvent, Reason, SessionState},
};
use uuid::Uuid;

use super::{Engine, Outcome, Refusal, Step};
use crate::domain::{
    records::{ExpiryJob, ScheduledJob, SessionRecord, SessionRef},
    tx::{Tx, TxError},
};

impl Engine {
    /// Leave the player's live session; a session nobody is in ends and withdraws its invitations.
    pub fn leave(&self, tx: &mut Tx, p: &UserId, session_id: Uuid) -> Step {
        let mut rec = tx.player(p)?;
        let Some(current) = rec.session.clone().filter(|s| s.id == session_id) else {
            return Ok(Outcome::Refused(Refusal::NotFound("not in this session")));
        };
        let Some(mut session) = tx.session(&current)? else {
            rec.session = None;
            tx.put_player(p, rec);
            return Ok(Outcome::Done);
        };
        rec.session = None;
        tx.put_player(p, rec);
        session.players.retain(|q| q != p);
        if session.players.is_empty() && session.state != SessionState::Ended {
            let ended = self.end_session(tx, session, EndedReason::Left)?;
            tx.push_event(p, GameEvent::Session(ended.view()));
        } else {
            tx.push_event(p, GameEvent::Session(session.view()));
            self.announce(tx, &session);
            tx.put_session(session);
        }
        Ok(Outcome::Done)
    }

    /// A game server ends the session. Ending an ended session changes nothing.
    pub fn end(&self, tx: &mut Tx, at: &SessionRef, reason: EndedReason) -> Step {
        let Some(session) = tx.session(at)? else {
            return Ok(Outcome::Refused(Refusal::NotFound("no such session")));
        };
        if session.state != SessionState::Ended {
            self.end_session(tx, session, reason)?;
        }
        Ok(Outcome::Done)
    }

    /// Records a sign of life, unless one was recorded less than a life
    /// resolution ago (life is recorded coarsely so that reads stay reads).
    pub fn touch(&self, tx: &mut Tx, at: &SessionRef) -> Step {
        let Some(mut session) = tx.session(at)? else {
            return Ok(Outcome::Refused(Refusal::NotFound("no such session")));
        };
        if session.state != SessionState::Ended
            && tx.now - session.last_life() >= self.life_resolution()
        {
            session.life_at = Some(tx.now);
            tx.put_session(session);
        }
        Ok(Outcome::Done)
    }

    /// The idle check of a session whose life was last recorded at `life_at`
    /// (millis) when the check was scheduled: life since then schedules the
    /// next check, none ends the session as abandoned.
    pub(super) fn check_idle(
        &self,
        tx: &mut Tx,
        at: &SessionRef,
        life_at: i64,
    ) -> Result<(), TxError> {
        let Some(session) = tx.session(at)? else {
            return Ok(());
        };
        if session.state == SessionState::Ended {
            return Ok(());
        }
        let lived_since = session.last_life().timestamp_millis() != life_at;
        if lived_since && self.idle_deadline(&session) > tx.now {
            self.watch_idle(tx, &session);
            return Ok(());
        }
        self.end_session(tx, session, EndedReason::Abandoned)
            .map(drop)
    }

    /// When an idle session is abandoned: the idle time after its recorded
    /// life, plus two resolutions, because recorded life lags real life by up
    /// to one and an open stream first notes life one resolution after it
    /// opened (so that opening a stream costs no read). A session never ends
    /// sooner than the idle time after its last sign of life, nor later than
    /// 5/4 of it.
    pub fn idle_deadline(&self, session: &SessionRecord) -> chrono::DateTime<chrono::Utc> {
        session.last_life() + self.session_idle + self.life_resolution() * 2
    }

    /// Schedules the idle check of a live session at its deadline.
    pub(super) fn watch_idle(&self, tx: &mut Tx, session: &SessionRecord) {
        tx.schedule(ScheduledJob {
            job: ExpiryJob::Idle {
                session: session.reference(),
                life_at: session.last_life().timestamp_millis(),
            },
            due: self.idle_deadline(session),
        });
    }

    /// Ends a session for `reason`: pending invitations are withdrawn, every
    /// player is free again and hears it once. Returns the ended session.
    pub(super) fn end_session(
        &self,
        tx: &mut Tx,
        mut session: SessionRecord,
        reason: EndedReason,
    ) -> Result<SessionRecord, TxError> {
        let at = session.reference();
        let pending: Vec<UserId> = session.pending.iter().map(|q| q.player.clone()).collect();
        tx.require(session.players.iter().chain(&pending))?;
        for invitee in &pending {
            self.withdraw_invitation(tx, invitee, &at, Reason::Withdrawn)?;
        }
        for player in &session.players {
            let mut rec = tx.player(player)?;
            if rec.session.as_ref() == Some(&at) {
                rec.session = None;
                tx.put_player(player, rec);
            }
        }
        session.pending.clear();
        session.state = SessionState::Ended;
        session.ended_reason = Some(reason);
        self.announce(tx, &session);
        tx.put_session(session.clone());
        Ok(session)
    }
}
