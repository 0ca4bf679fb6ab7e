//! What a case is made of: players, who talks to whom, the session idle time, `GAME_MODES`, and a sequence of commands, with their generators.

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
    /// A player with neither an open prompt nor a live session (else anyone).
    Idle(Index),
}

/// The `GAME_MODES` a case may run with (`name:max_players`, the first the default):
/// one too large to ever fill, a mode of two beside one of three, a single mode of three.
pub const MODE_SETS: [&str; 3] = ["default:16", "duel:2,squad:3", "trio:3"];

/// A mode no `MODE_SETS` lists.
pub const UNKNOWN_MODE: &str = "raid";

/// What a `GAME_MODES` lists, in order: (name, most players).
pub fn listed(spec: &'static str) -> Vec<(&'static str, usize)> {
    spec.split(',')
        .map(|entry| {
            let (name, max) = entry
                .split_once(':')
                .unwrap_or_else(|| panic!("`{entry}` is not name:max_players"));
            let max = max
                .parse()
                .unwrap_or_else(|_| panic!("`{entry}`: the size is not a number"));
            (name, max)
        })
        .collect()
}

#[derive(Clone, Debug)]
pub enum Command {
    /// `POST /v1/connect`, with `{"mode"}` or without a body (`None`).
    Connect {
        player: Player,
        mode: Option<&'static str>,
    },
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
    /// The IM service opens a lobby from a chat (`POST /v1/lobbies`) hosted by `host`, inviting
    /// a bit per player (possibly none, possibly the host).
    Launch {
        host: Who,
        invitees: u8,
        mode: Option<&'static str>,
    },
    /// The clock moves on and every job due on the way (expiries, idle checks) runs.
    Advance(i64),
    ImDown(bool),
    /// The player's IM presence becomes `available` (`true`) or `offline`: the IM service
    /// answers accordingly at once, and the change joins its presence feed.
    Presence {
        player: Player,
        online: bool,
    },
    /// The game follows the presence feed to its end (one poll of the replica holding its lease).
    Follow,
    /// An `offline` change of the feed delivered again (appended anew, as a replay of the feed would).
    Redeliver(Index),
}

#[derive(Clone)]
pub struct Scenario {
    pub players: usize,
    /// `GAME_MODES` for the case, one of [`MODE_SETS`].
    pub modes: &'static str,
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
            "{} players; GAME_MODES {}; idle {}s (resolution {}s); talks: {:?}",
            self.players,
            self.modes,
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

/// Who launches a lobby: mostly someone free to (else the launch is `already_playing`).
fn launcher(players: usize) -> impl Strategy<Value = Who> {
    prop_oneof![
        1 => (0..players).prop_map(Who::Player),
        3 => any::<Index>().prop_map(Who::Idle),
    ]
}

/// The `mode` a connect or a launch names: none (the default), a listed one, or an unknown one.
fn mode(names: Vec<&'static str>) -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![
        3 => Just(None),
        3 => proptest::sample::select(names).prop_map(Some),
        1 => Just(Some(UNKNOWN_MODE)),
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

fn command(players: usize, idle: i64, modes: &'static str) -> impl Strategy<Value = Command> {
    let player = 0..players;
    let all = (1u8 << players) - 1;
    let names: Vec<&'static str> = listed(modes).into_iter().map(|(name, _)| name).collect();
    // `Me` first: commands that do not matter shrink to it.
    prop_oneof![
        1 => player.clone().prop_map(Command::Me),
        6 => (player.clone(), mode(names.clone()))
            .prop_map(|(player, mode)| Command::Connect { player, mode }),
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
        2 => (launcher(players), 0..=all, mode(names))
            .prop_map(|(host, invitees, mode)| Command::Launch { host, invitees, mode }),
        // INVITE_TTL_SECS is 60: mostly short steps, sometimes right at or past the TTL.
        2 => prop_oneof![6 => 1i64..30, 1 => Just(59i64), 1 => Just(60i64), 2 => 30i64..90]
            .prop_map(Command::Advance),
        3 => idle_steps(idle).prop_map(Command::Advance),
        1 => proptest::bool::weighted(0.3).prop_map(Command::ImDown),
        3 => (player.clone(), proptest::bool::weighted(0.4))
            .prop_map(|(player, online)| Command::Presence { player, online }),
        3 => Just(Command::Follow),
        2 => any::<Index>().prop_map(Command::Redeliver),
    ]
}

/// 3-5 players, one of [`MODE_SETS`] (mostly one with modes small enough to fill), an idle
/// time of 16-160 s (abandonment before, around and after the 60 s invitations run out), a
/// random symmetric talk graph, then 10-40 commands.
pub fn scenario() -> impl Strategy<Value = Scenario> {
    let modes = prop_oneof![
        1 => Just(MODE_SETS[0]),
        2 => Just(MODE_SETS[1]),
        1 => Just(MODE_SETS[2]),
    ];
    (3usize..=5, 2i64..=20, modes)
        .prop_flat_map(|(players, eighth, modes)| {
            let pairs = players * (players - 1) / 2;
            let idle = 8 * eighth;
            (
                Just(players),
                Just(modes),
                Just(idle),
                proptest::collection::vec(proptest::bool::weighted(0.7), pairs),
                proptest::collection::vec(command(players, idle, modes), 10..=40),
            )
        })
        .prop_map(|(players, modes, idle, edges, commands)| {
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
                modes,
                idle,
                talks,
                commands,
            }
        })
}
