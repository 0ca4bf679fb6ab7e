//! What a case is made of: players, who talks to whom, the session idle time, and a sequence of commands, with their generators.

use std::{collections::BTreeSet, fmt};

use proptest::{prelude::*, sample::Index};
use shared_types::game::EndedReason;

use crate::model::Player;

/// Which prompt id an answer names; resolved against what the player has seen when the command runs.
#[derive(Clone, Debug)]
pub enum PromptTarget {
    /// The player's open prompt (else the last one they saw).
    Current,
    /// The prompt they saw before the last one (e.g. an invite prompt replaced by a join prompt).
    Previous,
    /// One of the prompts the player has been shown (stale, replaced or answered ones too).
    Seen(Index),
    /// A prompt shown to someone (usually another player).
    Anyones(Index),
    /// An id nobody was ever shown.
    Unknown,
}

/// Which session id a leave, a read, an end or a heartbeat names.
#[derive(Clone, Debug)]
pub enum SessionTarget {
    /// The player's live session (else the last one they saw).
    Current,
    /// One of the sessions the player has been shown.
    Seen(Index),
    /// Any session anyone has been shown.
    Anyones(Index),
    /// An id nobody was ever shown.
    Unknown,
}

/// Who runs a command; resolved when it runs, from everyone's state after the previous step.
#[derive(Clone, Debug)]
pub enum Who {
    Player(Player),
    /// A player with an open prompt (else one who had a prompt, else anyone).
    Prompted(Index),
    /// A player with a live session (else one who had a session, else anyone).
    Seated(Index),
}

#[derive(Clone, Debug)]
pub enum Command {
    Connect(Player),
    Me(Player),
    Accept {
        player: Who,
        target: PromptTarget,
        /// `with`: a bit per player (possibly empty, possibly naming non-candidates).
        with: Option<u8>,
    },
    Reject {
        player: Who,
        target: PromptTarget,
    },
    Leave {
        player: Who,
        target: SessionTarget,
    },
    /// `GET /v1/sessions/{id}` by the player.
    Read {
        player: Who,
        target: SessionTarget,
    },
    /// A game server ends a session; `player` only says whose session `target` is resolved against.
    End {
        player: Who,
        target: SessionTarget,
        outcome: EndedReason,
    },
    /// A game server's heartbeat; `player` as for `End`.
    Heartbeat {
        player: Who,
        target: SessionTarget,
    },
    /// The clock moves on and every job due on the way (expiries, idle checks) runs.
    Advance(i64),
    ImDown(bool),
}

#[derive(Clone)]
pub struct Scenario {
    pub players: usize,
    /// `SESSION_IDLE_SECS` for the case, a multiple of 8 (its resolution, an eighth, is whole seconds).
    pub idle: i64,
    /// Symmetric and fixed for the case.
    pub talks: Vec<BTreeSet<Player>>,
    pub commands: Vec<Command>,
}

impl fmt::Debug for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} players; idle {}s (resolution {}s); talks: {:?}",
            self.players,
            self.idle,
            self.idle / 8,
            self.talks
        )?;
        for (i, command) in self.commands.iter().enumerate() {
            writeln!(f, "  {i:2}: {command:?}")?;
        }
        Ok(())
    }
}

pub fn name(p: Player) -> String {
    format!("p{p}")
}

/// The players a `with` mask names, among `players`.
pub fn subset(mask: u8, players: usize) -> BTreeSet<Player> {
    (0..players).filter(|p| mask & (1 << p) != 0).collect()
}

fn prompt_target() -> impl Strategy<Value = PromptTarget> {
    prop_oneof![
        6 => Just(PromptTarget::Current),
        2 => Just(PromptTarget::Previous),
        3 => any::<Index>().prop_map(PromptTarget::Seen),
        1 => any::<Index>().prop_map(PromptTarget::Anyones),
        1 => Just(PromptTarget::Unknown),
    ]
}

fn session_target() -> impl Strategy<Value = SessionTarget> {
    prop_oneof![
        6 => Just(SessionTarget::Current),
        2 => any::<Index>().prop_map(SessionTarget::Seen),
        1 => any::<Index>().prop_map(SessionTarget::Anyones),
        1 => Just(SessionTarget::Unknown),
    ]
}

fn prompted(players: usize) -> impl Strategy<Value = Who> {
    prop_oneof![
        1 => (0..players).prop_map(Who::Player),
        3 => any::<Index>().prop_map(Who::Prompted),
    ]
}

fn seated(players: usize) -> impl Strategy<Value = Who> {
    prop_oneof![
        1 => (0..players).prop_map(Who::Player),
        3 => any::<Index>().prop_map(Who::Seated),
    ]
}

/// Clock steps around the idle deadline: a resolution, the deadline
/// (idle + two resolutions after the last recorded life) and either side of it.
fn idle_steps(idle: i64) -> impl Strategy<Value = i64> {
    let resolution = idle / 8;
    let deadline = idle + 2 * resolution;
    prop_oneof![
        2 => Just(resolution),
        1 => Just(resolution - 1),
        2 => Just(deadline),
        1 => Just(deadline - 1),
        3 => (deadline - 2 * resolution)..=(deadline + resolution),
        2 => 1..=resolution,
    ]
}

fn command(players: usize, idle: i64) -> impl Strategy<Value = Command> {
    let player = 0..players;
    let all = (1u8 << players) - 1;
    // `Me` first: commands that do not matter shrink to it.
    prop_oneof![
        1 => player.clone().prop_map(Command::Me),
        6 => player.clone().prop_map(Command::Connect),
        6 => (
            prompted(players),
            prompt_target(),
            proptest::option::weighted(0.25, 0..=all)
        )
            .prop_map(|(player, target, with)| Command::Accept { player, target, with }),
        2 => (prompted(players), prompt_target())
            .prop_map(|(player, target)| Command::Reject { player, target }),
        2 => (seated(players), session_target())
            .prop_map(|(player, target)| Command::Leave { player, target }),
        2 => (seated(players), session_target())
            .prop_map(|(player, target)| Command::Read { player, target }),
        1 => (
            seated(players),
            session_target(),
            prop_oneof![Just(EndedReason::Finished), Just(EndedReason::Aborted)]
        )
            .prop_map(|(player, target, outcome)| Command::End { player, target, outcome }),
        2 => (seated(players), session_target())
            .prop_map(|(player, target)| Command::Heartbeat { player, target }),
        // INVITE_TTL_SECS is 60: mostly short steps, sometimes right at or past the TTL.
        2 => prop_oneof![6 => 1i64..30, 1 => Just(59i64), 1 => Just(60i64), 2 => 30i64..90]
            .prop_map(Command::Advance),
        3 => idle_steps(idle).prop_map(Command::Advance),
        1 => proptest::bool::weighted(0.3).prop_map(Command::ImDown),
    ]
}

/// 3-5 players, an idle time of 16-160 s (abandonment before, around and after
/// the 60 s invitations run out), a random symmetric talk graph, then 10-40 commands.
pub fn scenario() -> impl Strategy<Value = Scenario> {
    (3usize..=5, 2i64..=20)
        .prop_flat_map(|(players, eighth)| {
            let pairs = players * (players - 1) / 2;
            let idle = 8 * eighth;
            (
                Just(players),
                Just(idle),
                proptest::collection::vec(proptest::bool::weighted(0.7), pairs),
                proptest::collection::vec(command(players, idle), 10..=40),
            )
        })
        .prop_map(|(players, idle, edges, commands)| {
            let mut talks = vec![BTreeSet::new(); players];
            let pairs = (0..players).flat_map(|a| (a + 1..players).map(move |b| (a, b)));
            for ((a, b), talking) in pairs.zip(edges) {
                if talking {
                    talks[a].insert(b);
                    talks[b].insert(a);
                }
            }
            Scenario {
                players,
                idle,
                talks,
                commands,
            }
        })
}
