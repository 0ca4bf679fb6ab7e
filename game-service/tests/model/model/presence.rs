//! IM presence in the model: what the IM service answers while a player is `offline`, its change feed, and the game applying an `offline` change (docs/CONTRACT.md, "Presence both ways").

use std::collections::BTreeSet;

use shared_types::game::{EndedReason, Reason, SessionState};

use super::{Closed, Model, Player};

/// One change of the IM presence feed: `player` went online (`available`) or `offline`,
/// their `seq`-th change (a redelivery repeats an earlier one as it was).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub player: Player,
    pub online: bool,
    pub seq: u64,
}

impl Model {
    /// Whom the IM service names as `p`'s partners: nobody while `p` is offline, else the
    /// players `p` talks to who are online.
    pub(super) fn partners(&self, p: Player) -> BTreeSet<Player> {
        if !self.online[p] {
            return BTreeSet::new();
        }
        self.talks[p]
            .iter()
            .copied()
            .filter(|&q| self.online[q])
            .collect()
    }

    /// `p`'s IM presence becomes online or offline: the IM service answers accordingly at
    /// once, and the change joins the feed, numbered after every earlier entry about `p`.
    pub fn set_presence(&mut self, p: Player, online: bool) -> Change {
        self.online[p] = online;
        let seq = self.feed.iter().filter(|c| c.player == p).count() as u64 + 1;
        let change = Change {
            player: p,
            online,
            seq,
        };
        self.feed.push(change);
        change
    }

    /// The `index`-th change of the feed appended again, as a repeated delivery does.
    pub fn redeliver(&mut self, index: usize) -> Option<Change> {
        let change = *self.feed.get(index)?;
        self.feed.push(change);
        Some(change)
    }

    /// The game follows the feed to its end (nothing while the IM service is down).
    pub fn follow(&mut self) {
        if self.im_down {
            return;
        }
        while let Some(&change) = self.feed.get(self.cursor) {
            self.cursor += 1;
            if !change.online {
                self.offline(change.player, change.seq);
            }
        }
    }

    /// Whether the game holds anything about `p` (a change about anyone else changes nothing
    /// and is not remembered).
    fn remembered(&self, p: Player) -> bool {
        let slot = &self.slots[p];
        slot.prompt.is_some()
            || slot.session.is_some()
            || !slot.closed.is_empty()
            || self.played[p]
            || self.presence_seq[p] > 0
            || self.sessions.iter().any(|s| s.pending.contains_key(&p))
    }

    /// `p` went offline (their `seq`-th change), applied once: their pending invitations are
    /// withdrawn (a lobby left with nobody pending turns solo), their open prompt is cancelled
    /// (`unavailable`), and the waiting lobby they host ends (`left`).
    fn offline(&mut self, p: Player, seq: u64) {
        if seq <= self.presence_seq[p] || !self.remembered(p) {
            return;
        }
        self.presence_seq[p] = seq;
        let invited: Vec<_> = (0..self.sessions.len())
            .filter(|&s| self.sessions[s].pending.contains_key(&p))
            .collect();
        for s in invited {
            self.drop_invitee(s, p, false);
        }
        if let Some(prompt) = self.slots[p].prompt.take() {
            let reason = Reason::Unavailable;
            self.slots[p]
                .closed
                .insert(prompt.id, Closed::Cancelled(reason));
            self.cancelled(p, prompt.id, reason);
        }
        if let Some(s) = self.slots[p].session {
            let session = &self.sessions[s];
            if session.host == p && session.state == SessionState::Waiting {
                self.end_session(s, EndedReason::Left);
            }
        }
    }
}
