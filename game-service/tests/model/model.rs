//! A small reference model of the game's state machine (docs/CONTRACT.md: the flow, the rules, the session lifecycle and the choices it writes down), written without the engine.
//!
//! Players, prompts and sessions are plain indices. Time is whole seconds since
//! the start of the case. Expiry and abandonment happen only in a sweep of
//! every due job, which in the test follows every move of the clock. Every
//! change also records the events each player should hear of it.
//!
//! - [`requests`]: what players and game servers ask, and the replies.
//! - [`lobby`]: lobbies opening (an accepted invite, a launch from a chat), joins, `full`.
//! - [`lifecycle`]: prompts and sessions coming and going.
//! - [`life`]: signs of life on sessions.
//! - [`presence`]: the IM presence feed, and players going `offline` (`unavailable`).
//! - [`sweep`]: the clock and the sweep of every job due.
//! - [`views`]: the state as the API renders it.
//! - [`events`]: what each player should hear.

mod events;
mod life;
mod lifecycle;
mod lobby;
mod presence;
mod requests;
mod sweep;
mod views;

use std::collections::{BTreeMap, BTreeSet};

use shared_types::game::{EndedReason, Reason, SessionKind, SessionState};

pub use self::{
    events::Event,
    views::{PlayerView, PromptView, SessionView},
};

/// `INVITE_TTL_SECS`, the documented default.
pub const TTL: i64 = 60;

/// The most players of a mode `GAME_MODES` does not list (a conversation holds at most 16).
pub const UNLISTED_MAX: usize = 16;

/// `GAME_MODES`: (name, most players), in order; the first is the default.
pub type Modes = Vec<(&'static str, usize)>;

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
    /// 400 `unknown_mode`: a mode `GAME_MODES` does not list; nothing changes.
    UnknownMode,
    /// 409 `already_playing`: a launch for a host with an open prompt or a live session.
    AlreadyPlaying,
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
    /// The mode of the session it leads to (a join prompt's is its lobby's).
    pub mode: &'static str,
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
    pub mode: &'static str,
    /// Its mode's most players: a join that brings it to this many withdraws the other
    /// invitations (`full`).
    pub max: usize,
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

#[derive(Debug, Clone)]
pub struct Model {
    now: i64,
    /// `SESSION_IDLE_SECS` (a multiple of 8, so that its resolution is whole seconds).
    idle: i64,
    im_down: bool,
    modes: Modes,
    /// Who each player talks to in the IM service (recent, open), when both are online.
    talks: Vec<BTreeSet<Player>>,
    /// Whether each player is online in the IM service (else `offline`).
    online: Vec<bool>,
    /// The IM service's presence feed, every change in order (redeliveries too).
    feed: Vec<presence::Change>,
    /// How much of the feed the game has applied.
    cursor: usize,
    /// Per player, the `seq` of the newest `offline` change the game applied.
    presence_seq: Vec<u64>,
    /// Per player, whether they ever played in an active session (the game remembers them).
    played: Vec<bool>,
    slots: Vec<Slot>,
    sessions: Vec<Session>,
    prompts: usize,
    /// Per player, the events not yet taken by the checker, in order.
    events: Vec<Vec<Event>>,
}

impl Model {
    pub fn new(talks: Vec<BTreeSet<Player>>, idle: i64, modes: Modes) -> Self {
        assert!(
            idle > 0 && idle % 8 == 0,
            "idle time {idle}: a positive multiple of 8"
        );
        assert!(!modes.is_empty(), "GAME_MODES lists at least one mode");
        Self {
            now: 0,
            idle,
            im_down: false,
            modes,
            slots: vec![Slot::default(); talks.len()],
            events: vec![Vec::new(); talks.len()],
            online: vec![true; talks.len()],
            feed: Vec::new(),
            cursor: 0,
            presence_seq: vec![0; talks.len()],
            played: vec![false; talks.len()],
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

    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    pub fn set_im_down(&mut self, down: bool) {
        self.im_down = down;
    }

    /// The mode a request names (`None`: the first listed); `None` when it is not listed.
    fn choose(&self, requested: Option<&str>) -> Option<&'static str> {
        match requested {
            None => Some(self.modes[0].0),
            Some(name) => self.modes.iter().map(|m| m.0).find(|&m| m == name),
        }
    }

    /// The most players of `mode`.
    fn max_players(&self, mode: &str) -> usize {
        self.modes
            .iter()
            .find(|m| m.0 == mode)
            .map_or(UNLISTED_MAX, |m| m.1)
    }
}
