//! What a member may do in a round, chosen at random from what they hold, and what doing it yielded.

use rand::{Rng, rngs::StdRng, seq::IndexedRandom};
use shared_types::game::{PlayerState, PromptKind};
use uuid::Uuid;

use super::{
    acknowledged::Acknowledged,
    modes::{self, Closed},
    players::Decision,
};

#[derive(Debug, Clone)]
pub(super) enum Action {
    Idle,
    /// Connect: from nothing, or again while holding a prompt or a session; for `mode`
    /// (`None`: no body, the default mode).
    Connect {
        mode: Option<&'static str>,
    },
    /// Two connects at once, one per replica, each for its mode.
    DoubleConnect {
        modes: [Option<&'static str>; 2],
    },
    /// `with`: a subset of an invite's candidates (trios only).
    Accept {
        with: Option<Vec<String>>,
    },
    /// The same accept twice at once, one per replica.
    DoubleAccept,
    Reject,
    /// Accept and reject at once, one per replica.
    Contrary,
    Leave,
}

impl Action {
    pub(super) fn name(&self) -> &'static str {
        match self {
            Action::Idle => "idle",
            Action::Connect { .. } => "connect",
            Action::DoubleConnect { .. } => "double_connect",
            Action::Accept { with: None } => "accept",
            Action::Accept { with: Some(_) } => "accept_subset",
            Action::DoubleAccept => "double_accept",
            Action::Reject => "reject",
            Action::Contrary => "contrary",
            Action::Leave => "leave",
        }
    }

    pub(super) fn answers(&self) -> bool {
        matches!(
            self,
            Action::Accept { .. } | Action::DoubleAccept | Action::Contrary | Action::Reject
        )
    }

    /// Only connects and idling leave the other members' states alone.
    pub(super) fn touches_others(&self) -> bool {
        !matches!(
            self,
            Action::Idle | Action::Connect { .. } | Action::DoubleConnect { .. }
        )
    }

    /// The modes its connects ask for.
    pub(super) fn modes(&self) -> Vec<Option<&'static str>> {
        match self {
            Action::Connect { mode } => vec![*mode],
            Action::DoubleConnect { modes } => modes.to_vec(),
            _ => Vec::new(),
        }
    }
}

/// What one member's action did.
pub(super) struct Acted {
    /// The invite prompt accepted (with a 200), and for whom.
    pub(super) accepted_invite_with: Option<Vec<String>>,
    /// The lobby that accept opened, and the invite prompt's mode (not when the answer went
    /// to another host's lobby).
    pub(super) lobby: Option<(Uuid, String)>,
    pub(super) answers: Vec<(Uuid, Decision)>,
    /// First answers refused because the prompt had closed, and why.
    pub(super) closed: Vec<Closed>,
    /// The session left (with a 200).
    pub(super) left: Option<Uuid>,
    /// Connect answers, to compare with the state before when nobody else acted.
    pub(super) connected: Vec<PlayerState>,
    /// The active sessions its accepts were answered with.
    pub(super) acknowledged: Acknowledged,
}

pub(super) fn choose(rng: &mut StdRng, state: &PlayerState, trio: bool) -> Action {
    let r: f64 = rng.random();
    match (&state.prompt, &state.session) {
        (None, None) => match r {
            r if r < 0.6 => connect(rng),
            r if r < 0.9 => double_connect(rng),
            _ => Action::Idle,
        },
        (Some(prompt), _) if prompt.kind == PromptKind::Invite => match r {
            r if r < 0.45 => Action::Accept { with: None },
            r if r < 0.55 && trio => {
                let ids: Vec<String> = prompt
                    .candidates
                    .iter()
                    .map(|c| c.as_str().to_owned())
                    .collect();
                let amount = rng.random_range(1..=ids.len());
                let with = ids.choose_multiple(rng, amount).cloned().collect();
                Action::Accept { with: Some(with) }
            }
            r if r < 0.65 => Action::Reject,
            r if r < 0.71 => Action::Contrary,
            r if r < 0.79 => Action::DoubleAccept,
            r if r < 0.89 => connect(rng),
            _ => Action::Idle,
        },
        (Some(_), _) => match r {
            r if r < 0.45 => Action::Accept { with: None },
            r if r < 0.60 => Action::Reject,
            r if r < 0.66 => Action::Contrary,
            r if r < 0.72 => Action::DoubleAccept,
            r if r < 0.84 => connect(rng),
            _ => Action::Idle,
        },
        (None, Some(_)) => match r {
            r if r < 0.40 => Action::Leave,
            r if r < 0.60 => connect(rng),
            _ => Action::Idle,
        },
    }
}

fn connect(rng: &mut StdRng) -> Action {
    Action::Connect {
        mode: modes::pick(rng),
    }
}

fn double_connect(rng: &mut StdRng) -> Action {
    Action::DoubleConnect {
        modes: [modes::pick(rng), modes::pick(rng)],
    }
}
