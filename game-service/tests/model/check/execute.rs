//! Runs one command on the system and on the model: what each answered, and the clock's advance with its sweeps.

use anyhow::bail;
use game_service::{domain::engine::Refusal, game::GameError};
use shared_types::{
    game::{PlayerState, PromptKind, Session},
    presence::PresenceStatus::{Available, Offline},
};
use uuid::Uuid;

use super::{Run, Tie};
use crate::{
    commands::{Command, name, subset},
    helpers::uid,
    model::{Player, Reply, SessionId},
};

/// What the system answered, as a model [`Reply`].
fn reply_of<T>(result: &Result<T, GameError>) -> anyhow::Result<Reply> {
    Ok(match result {
        Ok(_) => Reply::Ok,
        Err(GameError::Refused(Refusal::NotFound(_))) => Reply::NotFound,
        Err(GameError::Refused(Refusal::Invalid(_))) => Reply::Invalid,
        Err(GameError::Refused(Refusal::AlreadyAnswered)) => Reply::AlreadyAnswered,
        Err(GameError::Refused(Refusal::PromptClosed(reason))) => Reply::Closed(*reason),
        Err(GameError::Refused(Refusal::UnknownMode(_))) => Reply::UnknownMode,
        Err(GameError::Refused(Refusal::AlreadyPlaying)) => Reply::AlreadyPlaying,
        Err(other) => bail!("the system failed: {other}"),
    })
}

/// What a command answered.
pub(super) enum Answer {
    /// A player's request: their state.
    State(Result<PlayerState, GameError>),
    /// A session read by a player (`viewer`) or a game server's call (`viewer` is `None`);
    /// `None` is the 404. `session` is the model's id of the session named.
    Session {
        result: Result<Option<Session>, GameError>,
        viewer: Option<Player>,
        session: Option<SessionId>,
    },
}

/// A command the system answered, with the model's answer.
pub(super) struct Done {
    pub(super) label: String,
    pub(super) player: Player,
    pub(super) answer: Answer,
    pub(super) expected: Reply,
    /// The prompt id an accept named.
    pub(super) answered: Option<Uuid>,
    /// A launch: `player` is its host.
    pub(super) launched: bool,
}

impl Done {
    fn new(
        label: String,
        player: Player,
        result: Result<PlayerState, GameError>,
        expected: Reply,
    ) -> Self {
        Self {
            label,
            player,
            answer: Answer::State(result),
            expected,
            answered: None,
            launched: false,
        }
    }

    fn session(
        label: String,
        player: Player,
        result: Result<Option<Session>, GameError>,
        viewer: Option<Player>,
        session: Option<SessionId>,
        expected: Reply,
    ) -> Self {
        Self {
            label,
            player,
            answer: Answer::Session {
                result,
                viewer,
                session,
            },
            expected,
            answered: None,
            launched: false,
        }
    }

    pub(super) fn reply(&self) -> anyhow::Result<Reply> {
        match &self.answer {
            Answer::State(result) => reply_of(result),
            Answer::Session { result, .. } => Ok(match reply_of(result)? {
                Reply::Ok if matches!(result, Ok(None)) => Reply::NotFound,
                reply => reply,
            }),
        }
    }
}

impl<'h> Run<'h> {
    /// Runs `command` (not an advance) on the system and the model; `None` for commands without a reply.
    pub(super) async fn execute(&mut self, command: &Command) -> anyhow::Result<Option<Done>> {
        let game = self.h.game.clone();
        let done = match command {
            Command::Connect { player: p, mode } => {
                let result = game.connect(&uid(&name(*p)), *mode).await;
                // Several invitations: the contract does not say which one a join prompt is for.
                let prefer = result
                    .as_ref()
                    .ok()
                    .and_then(|s| s.prompt.as_ref())
                    .filter(|pr| pr.kind == PromptKind::Join)
                    .and_then(|pr| pr.session_id)
                    .and_then(|id| self.sessions.model(id));
                let expected = self.model.connect(*p, *mode, prefer);
                let label = match mode {
                    None => format!("connect p{p}"),
                    Some(mode) => format!("connect p{p} for {mode:?}"),
                };
                Done::new(label, *p, result, expected)
            }
            Command::Me(p) => {
                let result = game.me(&uid(&name(*p))).await;
                let expected = self.model.me(*p);
                Done::new(format!("me p{p}"), *p, result, expected)
            }
            Command::Accept {
                player,
                target,
                with,
            } => {
                let p = self.who(player);
                let (id, what) = self.prompt_target(p, target);
                let with = with.map(|mask| subset(mask, self.players));
                let users = with
                    .as_ref()
                    .map(|set| set.iter().map(|&q| uid(&name(q))).collect());
                let result = game.accept(&uid(&name(p)), id, users).await;
                let expected = self.model.accept(p, self.prompts.model(id), with.as_ref());
                let with = with.map_or("all".to_owned(), |set| format!("{set:?}"));
                let mut done = Done::new(
                    format!("accept p{p} {what} with {with}"),
                    p,
                    result,
                    expected,
                );
                done.answered = Some(id);
                done
            }
            Command::Reject { player, target } => {
                let p = self.who(player);
                let (id, what) = self.prompt_target(p, target);
                let result = game.reject(&uid(&name(p)), id).await;
                let expected = self.model.reject(p, self.prompts.model(id));
                Done::new(format!("reject p{p} {what}"), p, result, expected)
            }
            Command::Leave { player, target } => {
                let p = self.who(player);
                let (id, what) = self.session_target(p, target);
                let result = game.leave(&uid(&name(p)), id).await;
                let expected = self.model.leave(p, self.sessions.model(id));
                Done::new(format!("leave p{p} {what}"), p, result, expected)
            }
            Command::Read { player, target } => {
                let p = self.who(player);
                let (id, what) = self.session_target(p, target);
                let result = game.visible_session(&uid(&name(p)), id).await;
                let s = self.sessions.model(id);
                let expected = self.model.read(p, s);
                Done::session(format!("read p{p} {what}"), p, result, Some(p), s, expected)
            }
            Command::End {
                player,
                target,
                outcome,
            } => {
                let p = self.who(player);
                let (id, what) = self.session_target(p, target);
                let result = game.end(id, *outcome).await;
                let s = self.sessions.model(id);
                let expected = self.model.end(s, *outcome);
                let label = format!("end {what} {outcome:?} (p{p}'s)");
                Done::session(label, p, result, None, s, expected)
            }
            Command::Heartbeat { player, target } => {
                let p = self.who(player);
                let (id, what) = self.session_target(p, target);
                let result = game.heartbeat(id).await;
                let s = self.sessions.model(id);
                let expected = self.model.heartbeat(s);
                let label = format!("heartbeat {what} (p{p}'s)");
                Done::session(label, p, result, None, s, expected)
            }
            Command::Launch {
                host,
                invitees,
                mode,
            } => {
                let p = self.who(host);
                let invited = subset(*invitees, self.players);
                let users: Vec<_> = invited.iter().map(|&q| uid(&name(q))).collect();
                let result = game
                    .launch(&uid(&name(p)), &users, *mode, Uuid::new_v4())
                    .await;
                let expected = self.model.launch(p, &invited, *mode);
                let mode = mode.map_or("the default mode".to_owned(), |m| format!("{m:?}"));
                let label = format!("launch by p{p} inviting {invited:?} for {mode}");
                let mut done = Done::new(label, p, result, expected);
                done.launched = true;
                done
            }
            Command::Advance(_) => bail!("advances are run by `Run::advance`"),
            Command::ImDown(down) => {
                self.h.im_down(*down);
                self.model.set_im_down(*down);
                self.trace.push(format!("im down: {down}"));
                return Ok(None);
            }
            Command::Presence { player, online } => {
                let change = self.model.set_presence(*player, *online);
                let status = if *online { Available } else { Offline };
                self.h.presence(&name(*player), status);
                self.trace
                    .push(format!("p{player} {status:?} ({change:?})"));
                return Ok(None);
            }
            Command::Follow => {
                self.h.follow_presence("model").await;
                self.model.follow();
                self.trace
                    .push("the game follows the presence feed".to_owned());
                return Ok(None);
            }
            Command::Redeliver(index) => {
                // An `offline` change: the game skips the others whenever they arrive.
                let feed = self.h.feed();
                let offline: Vec<usize> = (0..feed.len())
                    .filter(|&i| feed[i].status == Offline)
                    .collect();
                if offline.is_empty() {
                    return Ok(None);
                }
                let i = offline[index.index(offline.len())];
                self.h.redeliver(feed[i].clone());
                let change = self.model.redeliver(i);
                self.trace
                    .push(format!("feed change {i} delivered again ({change:?})"));
                return Ok(None);
            }
        };
        Ok(Some(done))
    }

    /// Moves the clock `secs` on, sweeping on the way so that no sweep runs an
    /// idle check together with an expiry (see [`Tie`]): a store hands out the
    /// jobs due in any order (Redis by shard), and a transition first expires
    /// the due prompts of every player it locks, so an idle check that ran with
    /// expiries due would end its session before or after them depending on
    /// which players it happened to lock. Every other sweep, big jumps
    /// included, is left in one piece. Each sweep is compared with the model;
    /// as it runs jobs due together in an order the contract does not fix,
    /// what each player heard is compared up to that order.
    pub(super) async fn advance(&mut self, secs: i64) -> anyhow::Result<()> {
        let target = self.model.now() + secs;
        loop {
            let expiry = self.model.next_expiry().filter(|&t| t <= target);
            let idle = self.model.next_idle_check().filter(|&t| t <= target);
            let stop = match (expiry, idle) {
                (Some(e), Some(i)) if e == i => {
                    self.trace.push(format!(
                        "advance: an idle check and an expiry are both due at {e}s: the case stops here"
                    ));
                    return Err(Tie(e).into());
                }
                // Sweep just before the later one: only the earlier kind is due.
                (Some(e), Some(i)) => e.max(i) - 1,
                _ => target,
            };
            let step = stop - self.model.now();
            self.h.advance(step);
            self.model.tick(step);
            let swept = self.h.sweep().await?;
            self.model.sweep();
            self.trace.push(format!(
                "advance {step}s to {stop}s, swept {swept} jobs{}",
                if stop == target { "" } else { " (of the step)" }
            ));
            self.last = self.observe().await?;
            self.compare_events(true).await?;
            if stop == target {
                return Ok(());
            }
        }
    }
}
