//! Plays one case on a fresh `Harness` and on the model side by side, comparing replies, every player's state, every session, every player's events, and invariants.
//!
//! The checker observes without showing life: it reads records, sessions and
//! events from the store, so that only the case's own commands keep sessions
//! alive (a `GET /v1/me` per player per step would).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::{Context, anyhow, bail, ensure};
use chrono::{DateTime, Utc};
use game_service::{
    domain::{
        engine::Refusal,
        records::{PlayerRecord, SessionRecord, SessionRef},
    },
    game::GameError,
};
use proptest::sample::Index;
use shared_types::{
    UserId,
    game::{
        GameEvent, PlayerState, Prompt, PromptKind, Reason, Session, SessionKind, SessionState,
    },
};
use uuid::Uuid;

use crate::{
    commands::{Command, PromptTarget, Scenario, SessionTarget, Who, name, subset},
    helpers::{Backend, Harness, Options, uid},
    model::{Event, Model, Player, PlayerView, PromptView, Reply, SessionId, SessionView},
};

/// An idle check and an expiry due at the same instant: which runs first is up
/// to the store (and which due prompts the check's transition expires first, up
/// to the players it locks), so the case ends there, successfully.
#[derive(Debug, thiserror::Error)]
#[error("an idle check and an expiry are due at the same instant ({0}s)")]
struct Tie(i64);

/// The model id given to a system id that does not match the model's.
const UNBOUND: usize = usize::MAX;

/// An id no prompt or session ever gets.
const NEVER_ISSUED: Uuid = Uuid::from_u128(1);

/// System uuids and model ids, bound to each other as they first appear.
#[derive(Default)]
struct Ids {
    to_model: HashMap<Uuid, usize>,
    to_uuid: HashMap<usize, Uuid>,
}

impl Ids {
    /// The model id of `id`; an id seen for the first time takes the model's `hint` if that is still free.
    fn bind(&mut self, id: Uuid, hint: Option<usize>) -> usize {
        if let Some(&known) = self.to_model.get(&id) {
            return known;
        }
        match hint {
            Some(m) if !self.to_uuid.contains_key(&m) => {
                self.to_model.insert(id, m);
                self.to_uuid.insert(m, id);
                m
            }
            _ => UNBOUND,
        }
    }

    fn model(&self, id: Uuid) -> Option<usize> {
        self.to_model.get(&id).copied()
    }

    /// `n` for a bound id, `?` otherwise (for the trace).
    fn bind_label(&self, id: Uuid) -> String {
        self.model(id)
            .map_or_else(|| "?".to_owned(), |m| m.to_string())
    }
}

/// What the system answered, as a model [`Reply`].
fn reply_of<T>(result: &Result<T, GameError>) -> anyhow::Result<Reply> {
    Ok(match result {
        Ok(_) => Reply::Ok,
        Err(GameError::Refused(Refusal::NotFound(_))) => Reply::NotFound,
        Err(GameError::Refused(Refusal::Invalid(_))) => Reply::Invalid,
        Err(GameError::Refused(Refusal::AlreadyAnswered)) => Reply::AlreadyAnswered,
        Err(GameError::Refused(Refusal::PromptClosed(reason))) => Reply::Closed(*reason),
        Err(other) => bail!("the system failed: {other}"),
    })
}

/// What a command answered.
enum Answer {
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
struct Done {
    label: String,
    player: Player,
    answer: Answer,
    expected: Reply,
    /// The prompt id an accept named.
    answered: Option<Uuid>,
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
        }
    }

    fn reply(&self) -> anyhow::Result<Reply> {
        match &self.answer {
            Answer::State(result) => reply_of(result),
            Answer::Session { result, .. } => Ok(match reply_of(result)? {
                Reply::Ok if matches!(result, Ok(None)) => Reply::NotFound,
                reply => reply,
            }),
        }
    }
}

struct Run<'h> {
    h: &'h Harness,
    model: Model,
    players: usize,
    t0: DateTime<Utc>,
    prompts: Ids,
    sessions: Ids,
    /// Per player, the prompt ids they were shown, in order.
    seen_prompts: Vec<Vec<Uuid>>,
    seen_sessions: Vec<Vec<Uuid>>,
    all_prompts: Vec<Uuid>,
    all_sessions: Vec<Uuid>,
    /// Every player's state after the previous step.
    last: Vec<PlayerState>,
    /// Per player, the id of the last event compared.
    last_event: Vec<Option<String>>,
    /// (invitee, their invite prompt) -> (the join prompt that replaced it, the host's lobby).
    redirects: HashMap<(Player, Uuid), (Uuid, Uuid)>,
    trace: Vec<String>,
}

/// Plays `scenario` on a fresh harness over `backend`; `Err` describes the first disagreement.
pub async fn run(backend: Backend, scenario: &Scenario) -> Result<(), String> {
    let options = Options {
        session_idle_secs: scenario.idle,
        ..Options::default()
    };
    let h = Harness::start_with(backend, options)
        .await
        .map_err(|e| format!("starting the harness: {e:#}"))?;
    let mut run = Run::new(&h, scenario);
    let mut outcome = Ok(());
    for (i, command) in scenario.commands.iter().enumerate() {
        if let Err(err) = run.step(command).await {
            // After a tie, what ran so far was compared; the rest of the case is left out.
            if !err.is::<Tie>() {
                outcome = Err(format!("step {i}: {err:#}"));
            }
            break;
        }
    }
    if outcome.is_ok()
        && let Err(err) = run.check_visibility().await
    {
        outcome = Err(format!("at the end: {err:#}"));
    }
    outcome.map_err(|err| {
        let trace = run.trace.join("\n");
        format!("{err}\n\ntrace (system reply / model reply):\n{trace}")
    })
}

impl<'h> Run<'h> {
    fn new(h: &'h Harness, scenario: &Scenario) -> Self {
        for (a, partners) in scenario.talks.iter().enumerate() {
            let names: Vec<String> = partners.iter().map(|&b| name(b)).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            h.talk(&name(a), &names);
        }
        let n = scenario.players;
        Self {
            h,
            model: Model::new(scenario.talks.clone(), scenario.idle),
            players: n,
            t0: h.game.now(),
            prompts: Ids::default(),
            sessions: Ids::default(),
            seen_prompts: vec![Vec::new(); n],
            seen_sessions: vec![Vec::new(); n],
            all_prompts: Vec::new(),
            all_sessions: Vec::new(),
            last: (0..n)
                .map(|p| PlayerState {
                    player_id: uid(&name(p)),
                    prompt: None,
                    session: None,
                    degraded: false,
                })
                .collect(),
            last_event: vec![None; n],
            redirects: HashMap::new(),
            trace: Vec::new(),
        }
    }

    async fn step(&mut self, command: &Command) -> anyhow::Result<()> {
        if let Command::Advance(secs) = command {
            return self.advance(*secs).await;
        }
        let Some(done) = self.execute(command).await? else {
            self.last = self.observe().await?;
            return self.compare_events(false).await;
        };
        let got = done.reply()?;
        let label = &done.label;
        let after = match &done.answer {
            Answer::State(_) => summary(&self.model.view(done.player)),
            Answer::Session {
                session: Some(s), ..
            } => session_summary(&self.model.session_view(*s)),
            Answer::Session { session: None, .. } => "no such session".to_owned(),
        };
        self.trace.push(format!(
            "{label}: {got:?} / {:?}; model after: {after}",
            done.expected
        ));
        ensure!(
            got == done.expected,
            "{label}: the system replied {got:?}, the model {:?}",
            done.expected
        );
        match &done.answer {
            Answer::State(Ok(state)) => {
                let want = self.model.view(done.player);
                let view = self.translate(state, &want)?;
                ensure!(
                    view == want,
                    "{label}: the reply's state differs\n system: {view:?}\n model:  {want:?}\n raw: {state:?}"
                );
                if let Some(session) = &state.session {
                    check_join_token(session, Some(done.player), label)?;
                }
            }
            Answer::Session {
                result: Ok(Some(session)),
                viewer,
                session: s,
            } => {
                let s = s.context("the model knows no such session")?;
                let want = self.model.session_view(s);
                let view = self.session_view(session, Some(s))?;
                ensure!(
                    view == want,
                    "{label}: the session answered differs\n system: {view:?}\n model:  {want:?}\n raw: {session:?}"
                );
                check_join_token(session, *viewer, label)?;
            }
            Answer::State(Err(_)) | Answer::Session { .. } => {}
        }
        let states = self.observe().await?;
        if let (Some(prompt), Answer::State(result)) = (done.answered, &done.answer) {
            self.mutual_accepts(done.player, prompt, result, &states)?;
        }
        self.last = states;
        self.compare_events(false).await
    }

    /// Runs `command` (not an advance) on the system and the model; `None` for commands without a reply.
    async fn execute(&mut self, command: &Command) -> anyhow::Result<Option<Done>> {
        let game = self.h.game.clone();
        let done = match command {
            Command::Connect(p) => {
                let result = game.connect(&uid(&name(*p))).await;
                // Several invitations: the contract does not say which one a join prompt is for.
                let prefer = result
                    .as_ref()
                    .ok()
                    .and_then(|s| s.prompt.as_ref())
                    .filter(|pr| pr.kind == PromptKind::Join)
                    .and_then(|pr| pr.session_id)
                    .and_then(|id| self.sessions.model(id));
                let expected = self.model.connect(*p, prefer);
                Done::new(format!("connect p{p}"), *p, result, expected)
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
            Command::Advance(_) => bail!("advances are run by `Run::advance`"),
            Command::ImDown(down) => {
                self.h.im_down(*down);
                self.model.set_im_down(*down);
                self.trace.push(format!("im down: {down}"));
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
    async fn advance(&mut self, secs: i64) -> anyhow::Result<()> {
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

    /// Compares every player's state and every session with the model, and checks invariants.
    async fn observe(&mut self) -> anyhow::Result<Vec<PlayerState>> {
        let mut states = Vec::new();
        for p in 0..self.players {
            let state = self.stored_state(p).await?;
            let want = self.model.view(p);
            let view = self.translate(&state, &want)?;
            ensure!(
                view == want,
                "p{p}'s state differs\n system: {view:?}\n model:  {want:?}\n raw: {state:?}"
            );
            ensure!(
                state
                    .session
                    .as_ref()
                    .is_none_or(|s| s.state != SessionState::Ended),
                "p{p} is shown an ended session: {state:?}"
            );
            if let Some(prompt) = &state.prompt {
                remember(&mut self.seen_prompts[p], prompt.id);
                remember(&mut self.all_prompts, prompt.id);
                if let Some(lobby) = prompt.session_id {
                    remember(&mut self.seen_sessions[p], lobby);
                    remember(&mut self.all_sessions, lobby);
                }
            }
            if let Some(session) = &state.session {
                remember(&mut self.seen_sessions[p], session.id);
                remember(&mut self.all_sessions, session.id);
            }
            states.push(state);
        }
        ensure!(
            self.sessions.to_uuid.len() == self.model.sessions(),
            "the model has {} sessions, the system showed {}",
            self.model.sessions(),
            self.sessions.to_uuid.len()
        );

        // Every session, as its host reads it (ended ones too).
        let mut live_seats: HashMap<Player, Uuid> = HashMap::new();
        for s in 0..self.model.sessions() {
            let want = self.model.session_view(s);
            let id = self.sessions.to_uuid[&s];
            let session = self
                .stored_session(id)
                .await?
                .with_context(|| format!("session #{s} is gone"))?
                .view();
            let view = self.session_view(&session, Some(s))?;
            ensure!(
                view == want,
                "session #{s} differs\n system: {view:?}\n model:  {want:?}\n raw: {session:?}"
            );
            // Invariants, from the system alone.
            let players: BTreeSet<Player> = view.players.iter().copied().collect();
            ensure!(
                view.pending.iter().all(|q| !players.contains(q)),
                "session #{s} has a player still pending: {session:?}"
            );
            ensure!(
                (view.state == SessionState::Ended) == view.ended.is_some(),
                "session #{s}: state and ended_reason disagree: {session:?}"
            );
            if view.state == SessionState::Ended {
                // Its players stay listed (who was in it when it ended); nobody is pending.
                ensure!(
                    view.pending.is_empty(),
                    "ended session #{s} still has invitees pending: {session:?}"
                );
                continue;
            }
            for &q in &players {
                if let Some(other) = live_seats.insert(q, id) {
                    bail!("p{q} is in two live sessions, {other} and {id}");
                }
                ensure!(
                    states[q].session.as_ref().map(|s| s.id) == Some(id),
                    "p{q} plays in session #{s} but is shown {:?}",
                    states[q].session
                );
            }
        }
        for (p, state) in states.iter().enumerate() {
            if let Some(session) = &state.session {
                ensure!(
                    live_seats.get(&p) == Some(&session.id),
                    "p{p} is shown a session that does not list them: {session:?}"
                );
            }
        }
        Ok(states)
    }

    /// docs/CONTRACT.md, "Both at once": when a host's lobby invites someone whose open invite prompt
    /// names the host, that prompt is replaced by a join prompt for the lobby, and
    /// accepting the replaced prompt lands the invitee in the lobby without a new question.
    fn mutual_accepts(
        &mut self,
        p: Player,
        answered: Uuid,
        result: &Result<PlayerState, GameError>,
        states: &[PlayerState],
    ) -> anyhow::Result<()> {
        let before = &self.last[p];
        let Ok(after) = result else {
            return Ok(());
        };
        // `p` answered an invite prompt redirected to a lobby, while holding that join prompt.
        if let Some(&(join, lobby)) = self.redirects.get(&(p, answered))
            && before.prompt.as_ref().map(|pr| pr.id) == Some(join)
        {
            let session = after
                .session
                .as_ref()
                .context("the redirected accept left no session")?;
            ensure!(
                session.id == lobby
                    && session.state == SessionState::Active
                    && session.kind == SessionKind::Multiplayer
                    && session.players.contains(&uid(&name(p))),
                "p{p} accepted an invite prompt replaced by a join prompt for {lobby} but got {session:?}"
            );
        }
        // `p` accepted their open invite prompt: a new lobby.
        let opened = before
            .prompt
            .as_ref()
            .filter(|pr| pr.id == answered && pr.kind == PromptKind::Invite);
        let lobby = after
            .session
            .as_ref()
            .filter(|s| s.state == SessionState::Waiting && s.host == uid(&name(p)));
        let (Some(_), Some(lobby)) = (opened, lobby) else {
            return Ok(());
        };
        for invitee in &lobby.pending {
            let q = self.player(invitee)?;
            let Some(invite) = self.last[q].prompt.as_ref().filter(|pr| {
                pr.kind == PromptKind::Invite && pr.candidates.contains(&uid(&name(p)))
            }) else {
                continue;
            };
            let join = states[q]
                .prompt
                .as_ref()
                .filter(|pr| pr.kind == PromptKind::Join && pr.session_id == Some(lobby.id))
                .with_context(|| {
                    format!(
                        "p{q}'s invite prompt naming p{p} was not replaced by a join prompt for p{p}'s lobby: {:?}",
                        states[q]
                    )
                })?;
            self.redirects.insert((q, invite.id), (join.id, lobby.id));
        }
        Ok(())
    }

    /// `p`'s state as `GET /v1/me` renders it, read from the store without
    /// showing life (no join tokens). Also checks that the record points only
    /// at what is live: its session lists it and has not ended, its join
    /// prompt's lobby and its invitations still expect it.
    async fn stored_state(&self, p: Player) -> anyhow::Result<PlayerState> {
        let user = uid(&name(p));
        let record: PlayerRecord = self.h.store.player(&user).await?.unwrap_or_default();
        let session = match &record.session {
            None => None,
            Some(at) => {
                let session = self.h.store.session(at).await?;
                ensure!(
                    session.as_ref().is_some_and(|s| s.is_live_for(&user)),
                    "p{p}'s record points at a session that is gone, ended or does not list them: {session:?}"
                );
                session
            }
        };
        let lobbies = record
            .prompt
            .iter()
            .filter_map(|pr| pr.lobby.as_ref())
            .chain(record.invitations.iter().map(|inv| &inv.lobby));
        for at in lobbies {
            let lobby = self.h.store.session(at).await?;
            ensure!(
                lobby
                    .as_ref()
                    .is_some_and(|l| l.state != SessionState::Ended && l.is_pending(&user)),
                "p{p}'s record points at a lobby that no longer expects them: {lobby:?}\n record: {record:?}"
            );
        }
        Ok(PlayerState {
            player_id: user,
            prompt: record.prompt.as_ref().map(|pr| pr.view()),
            degraded: session
                .as_ref()
                .is_some_and(|s| s.reason == Some(Reason::ImUnavailable)),
            session: session.map(|s| s.view()),
        })
    }

    /// A session read from the store, without showing life.
    async fn stored_session(&self, id: Uuid) -> anyhow::Result<Option<SessionRecord>> {
        let Some(host) = self.h.store.session_host(id).await? else {
            return Ok(None);
        };
        Ok(self.h.store.session(&SessionRef { id, host }).await?)
    }

    /// Each player's events since the previous step, against the model's.
    /// `swept`: jobs due together may run in any order, so each player's prompt
    /// events are compared in order, and per session the number of `session`
    /// events and the last one.
    async fn compare_events(&mut self, swept: bool) -> anyhow::Result<()> {
        for p in 0..self.players {
            let user = uid(&name(p));
            let stored = self
                .h
                .store
                .events_after(&user, self.last_event[p].as_deref(), 1000)
                .await?;
            if let Some(last) = stored.last() {
                self.last_event[p] = Some(last.id.clone());
            }
            let want = self.model.take_events(p);
            let mut got = Vec::new();
            for (i, stored) in stored.iter().enumerate() {
                got.push(self.event_view(p, &stored.event, want.get(i))?);
            }
            let same = if swept {
                Heard::of(&got) == Heard::of(&want)
            } else {
                got == want
            };
            ensure!(
                same,
                "p{p}'s events differ{}\n system: {got:?}\n model:  {want:?}",
                if swept {
                    " (up to the order of a sweep)"
                } else {
                    ""
                }
            );
        }
        Ok(())
    }

    /// A stored event in model ids; a `session` event carries its recipient's join token.
    fn event_view(
        &mut self,
        p: Player,
        event: &GameEvent,
        hint: Option<&Event>,
    ) -> anyhow::Result<Event> {
        Ok(match event {
            GameEvent::Prompt(prompt) => {
                let hint = match hint {
                    Some(Event::Prompt(h)) => Some(h),
                    _ => None,
                };
                Event::Prompt(self.prompt_view(prompt, hint)?)
            }
            GameEvent::PromptCancelled(cancelled) => {
                let (hint, next) = match hint {
                    Some(Event::Cancelled {
                        prompt,
                        replaced_by,
                        ..
                    }) => (Some(*prompt), *replaced_by),
                    _ => (None, None),
                };
                Event::Cancelled {
                    prompt: self.prompts.bind(cancelled.prompt_id, hint),
                    reason: cancelled.reason,
                    replaced_by: cancelled.replaced_by.map(|id| self.prompts.bind(id, next)),
                }
            }
            GameEvent::Session(session) => {
                check_join_token(session, Some(p), &format!("a session event to p{p}"))?;
                let hint = match hint {
                    Some(Event::Session(h)) => Some(h.id),
                    _ => None,
                };
                Event::Session(self.session_view(session, hint)?)
            }
        })
    }

    /// Which sessions each player may read, against the model.
    async fn check_visibility(&self) -> anyhow::Result<()> {
        for p in 0..self.players {
            for (&s, &id) in &self.sessions.to_uuid {
                let seen = self
                    .h
                    .game
                    .visible_session(&uid(&name(p)), id)
                    .await?
                    .is_some();
                ensure!(
                    seen == self.model.visible(p, s),
                    "session #{s} visible to p{p}: system {seen}, model {}",
                    self.model.visible(p, s)
                );
            }
        }
        Ok(())
    }

    fn who(&self, who: &Who) -> Player {
        let pick_among = |found: Vec<Player>, index: &Index| {
            (!found.is_empty()).then(|| found[index.index(found.len())])
        };
        let everyone = || (0..self.players).collect::<Vec<_>>();
        let (first, second, index) = match who {
            Who::Player(p) => return *p,
            Who::Prompted(index) => (
                everyone()
                    .into_iter()
                    .filter(|&p| self.last[p].prompt.is_some())
                    .collect(),
                everyone()
                    .into_iter()
                    .filter(|&p| !self.seen_prompts[p].is_empty())
                    .collect(),
                index,
            ),
            Who::Seated(index) => (
                everyone()
                    .into_iter()
                    .filter(|&p| self.last[p].session.is_some())
                    .collect(),
                everyone()
                    .into_iter()
                    .filter(|&p| !self.seen_sessions[p].is_empty())
                    .collect(),
                index,
            ),
        };
        pick_among(first, index)
            .or_else(|| pick_among(second, index))
            .unwrap_or_else(|| index.index(self.players))
    }

    fn prompt_target(&self, p: Player, target: &PromptTarget) -> (Uuid, String) {
        let current = self.last[p]
            .prompt
            .as_ref()
            .map(|pr| pr.id)
            .or_else(|| self.seen_prompts[p].last().copied());
        let id = match target {
            PromptTarget::Current => current,
            PromptTarget::Previous => self.seen_prompts[p]
                .iter()
                .rev()
                .nth(1)
                .copied()
                .or(current),
            PromptTarget::Seen(i) => pick(&self.seen_prompts[p], i).or(current),
            PromptTarget::Anyones(i) => pick(&self.all_prompts, i),
            PromptTarget::Unknown => None,
        };
        match id {
            Some(id) => (id, format!("prompt #{}", self.prompts.bind_label(id))),
            None => (NEVER_ISSUED, "a never-issued prompt".to_owned()),
        }
    }

    fn session_target(&self, p: Player, target: &SessionTarget) -> (Uuid, String) {
        if let SessionTarget::Unknown = target {
            return (NEVER_ISSUED, "a never-issued session".to_owned());
        }
        let current = self.last[p]
            .session
            .as_ref()
            .map(|s| s.id)
            .or_else(|| self.seen_sessions[p].last().copied())
            .or_else(|| self.all_sessions.last().copied());
        let id = match target {
            SessionTarget::Current => current,
            SessionTarget::Seen(i) => pick(&self.seen_sessions[p], i).or(current),
            SessionTarget::Anyones(i) => pick(&self.all_sessions, i),
            SessionTarget::Unknown => None,
        };
        match id {
            Some(id) => (id, format!("session #{}", self.sessions.bind_label(id))),
            None => (NEVER_ISSUED, "a never-issued session".to_owned()),
        }
    }

    fn player(&self, user: &UserId) -> anyhow::Result<Player> {
        user.as_str()
            .strip_prefix('p')
            .and_then(|i| i.parse().ok())
            .filter(|&i| i < self.players)
            .ok_or_else(|| anyhow!("unknown player {user:?}"))
    }

    fn players_of(&self, users: &[UserId]) -> anyhow::Result<Vec<Player>> {
        let mut players = users
            .iter()
            .map(|u| self.player(u))
            .collect::<anyhow::Result<Vec<_>>>()?;
        players.sort_unstable();
        Ok(players)
    }

    fn seconds(&self, at: DateTime<Utc>) -> i64 {
        let millis = (at - self.t0).num_milliseconds();
        if millis % 1000 == 0 {
            millis / 1000
        } else {
            i64::MIN
        }
    }

    /// The system's state in model ids; new ids are bound to the model's where it has new ones.
    fn translate(&mut self, state: &PlayerState, hint: &PlayerView) -> anyhow::Result<PlayerView> {
        let prompt = match &state.prompt {
            None => None,
            Some(prompt) => Some(self.prompt_view(prompt, hint.prompt.as_ref())?),
        };
        let session = match &state.session {
            None => None,
            Some(session) => Some(self.session_view(session, hint.session.as_ref().map(|s| s.id))?),
        };
        Ok(PlayerView {
            prompt,
            session,
            degraded: state.degraded,
        })
    }

    fn prompt_view(
        &mut self,
        prompt: &Prompt,
        hint: Option<&PromptView>,
    ) -> anyhow::Result<PromptView> {
        let host = prompt.host.as_ref().map(|h| self.player(h)).transpose()?;
        Ok(PromptView {
            id: self.prompts.bind(prompt.id, hint.map(|h| h.id)),
            kind: prompt.kind,
            candidates: self.players_of(&prompt.candidates)?,
            host,
            session: prompt
                .session_id
                .map(|id| self.sessions.bind(id, hint.and_then(|h| h.session))),
            expires: self.seconds(prompt.expires_at),
        })
    }

    fn session_view(
        &mut self,
        session: &Session,
        hint: Option<usize>,
    ) -> anyhow::Result<SessionView> {
        ensure!(
            session.mode == "default",
            "a session's mode is not \"default\": {session:?}"
        );
        Ok(SessionView {
            id: self.sessions.bind(session.id, hint),
            kind: session.kind,
            state: session.state,
            host: self.player(&session.host)?,
            players: self.players_of(&session.players)?,
            pending: self.players_of(&session.pending)?,
            reason: session.reason,
            ended: session.ended_reason,
        })
    }
}

/// `join_token` is minted per read, so only whether it is there is compared: a
/// viewer who is one of the session's players gets one while it has not ended;
/// anyone else (`None`: a game server) gets the empty string.
fn check_join_token(session: &Session, viewer: Option<Player>, what: &str) -> anyhow::Result<()> {
    let member = viewer.is_some_and(|p| {
        session.state != SessionState::Ended && session.players.contains(&uid(&name(p)))
    });
    ensure!(
        session.join_token.is_empty() != member,
        "{what}: join_token {:?} for viewer {viewer:?} of {session:?}",
        session.join_token
    );
    Ok(())
}

/// What a player heard, up to the order of jobs due together: their prompt
/// events in order, and per session how many `session` events and the last.
#[derive(Debug, PartialEq, Eq)]
struct Heard {
    prompts: Vec<Event>,
    sessions: BTreeMap<SessionId, (usize, SessionView)>,
}

impl Heard {
    fn of(events: &[Event]) -> Self {
        let mut heard = Self {
            prompts: Vec::new(),
            sessions: BTreeMap::new(),
        };
        for event in events {
            match event {
                Event::Session(view) => {
                    let entry = heard
                        .sessions
                        .entry(view.id)
                        .or_insert_with(|| (0, view.clone()));
                    entry.0 += 1;
                    entry.1 = view.clone();
                }
                other => heard.prompts.push(other.clone()),
            }
        }
        heard
    }
}

/// A player's state in a few words, in model ids.
fn summary(view: &PlayerView) -> String {
    let prompt = view.prompt.as_ref().map(|pr| match pr.kind {
        PromptKind::Invite => format!("invite prompt #{} naming {:?}", pr.id, pr.candidates),
        PromptKind::Join => format!("join prompt #{} for session #{:?}", pr.id, pr.session),
    });
    let session = view.session.as_ref().map(session_summary);
    match (prompt, session) {
        (None, None) => "nothing open".to_owned(),
        (Some(prompt), None) => prompt,
        (None, Some(session)) => session,
        (Some(prompt), Some(session)) => format!("{prompt} and {session}"),
    }
}

fn session_summary(s: &SessionView) -> String {
    format!(
        "session #{} {:?} {:?} host p{} players {:?} pending {:?} reason {:?} ended {:?}",
        s.id, s.kind, s.state, s.host, s.players, s.pending, s.reason, s.ended
    )
}

fn pick(ids: &[Uuid], index: &Index) -> Option<Uuid> {
    (!ids.is_empty()).then(|| ids[index.index(ids.len())])
}

fn remember(ids: &mut Vec<Uuid>, id: Uuid) {
    if !ids.contains(&id) {
        ids.push(id);
    }
}
