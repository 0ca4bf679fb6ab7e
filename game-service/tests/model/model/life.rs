//! Signs of life on the model's sessions, recorded at most once per resolution: what keeps a session from being abandoned.

use super::{Model, Player, Reply, SessionId};

impl Model {
    /// After a request that renders the player's state: life on the session
    /// they are in now (connect, me, answering a prompt, leaving).
    pub(super) fn shows_life(&mut self, p: Player, reply: Reply) -> Reply {
        if reply == Reply::Ok
            && let Some(s) = self.slots[p].session
        {
            self.note_life(p, s);
        }
        reply
    }

    /// A request of `p` about `s` is a sign of life only if `p` plays in it.
    pub(super) fn note_life(&mut self, p: Player, s: SessionId) {
        if self.sessions[s].players.contains(&p) {
            self.touch(s);
        }
    }

    /// Records life on a session that has not ended, unless some was recorded
    /// less than a resolution ago.
    pub(super) fn touch(&mut self, s: SessionId) {
        let resolution = self.resolution();
        let session = &mut self.sessions[s];
        if session.ended.is_none() && self.now - session.life >= resolution {
            session.life = self.now;
        }
    }
}
