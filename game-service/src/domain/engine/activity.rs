//! Presence both ways, the game's side: whoever began or stopped playing in a transition
//! becomes one report for the IM service (`in_game`), delivered by a job of the same commit;
//! a player whose IM presence turned `offline` is taken out of everything pending.

use shared_types::{
    UserId,
    activity::ActivityReport,
    game::{EndedReason, Reason, SessionState},
    presence::PresenceStatus,
};

use super::{Engine, Outcome, Step, cancelled};
use crate::domain::{
    records::{Answer, ExpiryJob, PlayerRecord, ScheduledJob},
    tx::{Tx, TxError},
};

impl Engine {
    /// Schedules the activity reports of what the transition did; the game runner calls it
    /// after every transition. Each report takes the next `activity_seq` of its player, in the
    /// same commit, so the IM service can put reports in order however they arrive.
    pub fn report_activity(&self, tx: &mut Tx) -> Result<(), TxError> {
        let changes: Vec<_> = tx
            .playing_changes()
            .into_iter()
            .map(|(player, session, playing)| (player, session.id, session.mode.clone(), playing))
            .collect();
        if changes.is_empty() {
            return Ok(());
        }
        tx.require(changes.iter().map(|(player, ..)| player))?;
        let mut reports = Vec::with_capacity(changes.len());
        for (player, session_id, mode, playing) in changes {
            let mut rec = tx.player(&player)?;
            rec.activity_seq += 1;
            reports.push(ActivityReport {
                user_id: player.clone(),
                session_id,
                mode,
                playing,
                seq: rec.activity_seq,
                at: tx.now,
            });
            tx.put_player(&player, rec);
        }
        tx.schedule(ScheduledJob {
            job: ExpiryJob::Activity {
                reports,
                attempt: 0,
            },
            due: tx.now,
        });
        Ok(())
    }

    /// The IM service says `p`'s presence became `status` (its `seq`-th change). Applied
    /// once: a change no newer than the last one applied changes nothing (the feed keeps
    /// each user's changes in order, so only a change read again, after a replica died
    /// before moving the cursor, can be older; the game runner skips the other statuses,
    /// which change nothing in the game). Going `offline`
    /// cancels the player's open prompt and withdraws their pending invitations (reason
    /// `unavailable`; a lobby left with nobody pending turns solo, `declined`), and ends the
    /// waiting lobby they host (its invitees' prompts are `withdrawn`).
    pub fn presence_changed(
        &self,
        tx: &mut Tx,
        p: &UserId,
        status: PresenceStatus,
        seq: u64,
    ) -> Step {
        let mut rec = tx.player(p)?;
        // A player the game never saw has nothing to change (and no order to keep).
        if seq <= rec.presence_seq || rec == PlayerRecord::default() {
            return Ok(Outcome::Done);
        }
        rec.presence_seq = seq;
        if status != PresenceStatus::Offline {
            tx.put_player(p, rec);
            return Ok(Outcome::Done);
        }
        let mut lobbies: Vec<_> = rec.invitations.iter().map(|i| i.lobby.clone()).collect();
        lobbies.extend(rec.prompt.iter().filter_map(|pr| pr.lobby.clone()));
        for at in &lobbies {
            if let Some(lobby) = tx.session(at)? {
                self.drop_invitee(tx, lobby, p, false);
            }
            rec.drop_invitation(at.id);
        }
        if let Some(prompt) = rec.prompt.take() {
            rec.remember(prompt.id, Answer::Cancelled(Reason::Unavailable), None);
            tx.push_event(p, cancelled(prompt.id, Reason::Unavailable));
        }
        let hosting = rec.session.clone().filter(|at| &at.host == p);
        tx.put_player(p, rec);
        if let Some(at) = hosting
            && let Some(lobby) = tx.session(&at)?
            && lobby.state == SessionState::Waiting
        {
            self.end_session(tx, lobby, EndedReason::Left)?;
        }
        Ok(Outcome::Done)
    }
}
