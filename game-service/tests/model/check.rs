//! Plays one case on a fresh `Harness` and on the model side by side, comparing replies, every player's state, every session, and invariants.

use std::collections::{BTreeSet, HashMap};

use anyhow::{Context, anyhow, bail, ensure};
use chrono::{DateTime, Utc};
use game_service::{domain::engine::Refusal, game::GameError};
use proptest::sample::Index;
use shared_types::{
    UserId,
    game::{PlayerState, Prompt, PromptKind, Session, SessionKind, SessionState},
};
use uuid::Uuid;

use crate::{
    commands::{Command, PromptTarget, Scenario, SessionTarget, Who, name, subset},
    helpers::{Backend, Harness, uid},
    model::{Model, Player, PlayerView, PromptView, Reply, SessionView},
};

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
fn reply_of(result: &Result<PlayerState, GameError>) -> anyhow::Result<Reply> {
    Ok(match result {
        Ok(_) => Reply::Ok,
        Err(GameError::Refused(Refusal::NotFound(_))) => Reply::NotFound,
        Err(GameError::Refused(Refusal::Invalid(_))) => Reply::Invalid,
        Err(GameError::Refused(Refusal::AlreadyAnswered)) => Reply::AlreadyAnswered,
        Err(GameError::Refused(Refusal::PromptClosed(reason))) => Reply::Closed(*reason),
        Err(other) => bail!("the system failed: {other}"),
    })
}

/// A command the system answered, with the model's answer.
struct Done {
    label: String,
    player: Player,
    result: Result<PlayerState, GameError>,
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
            result,
            expected,
            answered: None,
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
    /// (invitee, their invite prompt) -> (the join prompt that replaced it, the host's lobby).
    redirects: HashMap<(Player, Uuid), (Uuid, Uuid)>,
    trace: Vec<String>,
}

/// Plays `scenario` on a fresh harness over `backend`; `Err` describes the first disagreement.
pub async fn run(backend: Backend, scenario: &Scenario) -> Result<(), String> {
    let h = Harness::start(backend)
        .await
        .map_err(|e| format!("starting the harness: {e:#}"))?;
    let mut run = Run::new(&h, scenario);
    let mut outcome = Ok(());
    for (i, command) in scenario.commands.iter().enumerate() {
        if let Err(err) = run.step(command).await {
            outcome = Err(format!("step {i}: {err:#}"));
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
            model: Model::new(scenario.talks.clone()),
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
            redirects: HashMap::new(),
            trace: Vec::new(),
        }
    }

    async fn step(&mut self, command: &Command) -> anyhow::Result<()> {
        let Some(done) = self.execute(command).await? else {
            self.last = self.observe().await?;
            return Ok(());
        };
        let got = reply_of(&done.result)?;
        let label = &done.label;
        self.trace.push(format!(
            "{label}: {got:?} / {:?}; model after: {}",
            done.expected,
            summary(&self.model.view(done.player))
        ));
        ensure!(
            got == done.expected,
            "{label}: the system replied {got:?}, the model {:?}",
            done.expected
        );
        if let Ok(state) = &done.result {
            let want = self.model.view(done.player);
            let view = self.translate(state, &want)?;
            ensure!(
                view == want,
                "{label}: the reply's state differs\n system: {view:?}\n model:  {want:?}\n raw: {state:?}"
            );
        }
        let states = self.observe().await?;
        if let Some(prompt) = done.answered {
            self.mutual_accepts(done.player, prompt, &done.result, &states)?;
        }
        self.last = states;
        Ok(())
    }

    /// Runs `command` on the system and the model; `None` for commands without a reply.
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
                Done::new(format!("me p{p}"), *p, result, Reply::Ok)
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
            Command::Advance(secs) => {
                self.h.advance(*secs);
                let swept = self.h.sweep().await?;
                self.model.advance(*secs);
                self.trace
                    .push(format!("advance {secs}s, swept {swept} jobs"));
                return Ok(None);
            }
            Command::ImDown(down) => {
                self.h.im_down(*down);
                self.model.set_im_down(*down);
                self.trace.push(format!("im down: {down}"));
                return Ok(None);
            }
        };
        Ok(Some(done))
    }

    /// Compares every player's state and every session with the model, and checks invariants.
    async fn observe(&mut self) -> anyhow::Result<Vec<PlayerState>> {
        let mut states = Vec::new();
        for p in 0..self.players {
            let state = self.h.game.me(&uid(&name(p))).await?;
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
                .h
                .game
                .visible_session(&uid(&name(want.host)), id)
                .await?
                .with_context(|| format!("session #{s} is not visible to its host"))?;
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
            if view.state == SessionState::Ended {
                ensure!(
                    players.is_empty() && view.pending.is_empty(),
                    "ended session #{s} still has people in it: {session:?}"
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
        Ok(SessionView {
            id: self.sessions.bind(session.id, hint),
            kind: session.kind,
            state: session.state,
            host: self.player(&session.host)?,
            players: self.players_of(&session.players)?,
            pending: self.players_of(&session.pending)?,
            reason: session.reason,
        })
    }
}

/// A player's state in a few words, in model ids.
fn summary(view: &PlayerView) -> String {
    let prompt = view.prompt.as_ref().map(|pr| match pr.kind {
        PromptKind::Invite => format!("invite prompt #{} naming {:?}", pr.id, pr.candidates),
        PromptKind::Join => format!("join prompt #{} for session #{:?}", pr.id, pr.session),
    });
    let session = view.session.as_ref().map(|s| {
        format!(
            "session #{} {:?} {:?} host p{} players {:?} pending {:?} reason {:?}",
            s.id, s.kind, s.state, s.host, s.players, s.pending, s.reason
        )
    });
    match (prompt, session) {
        (None, None) => "nothing open".to_owned(),
        (Some(prompt), None) => prompt,
        (None, Some(session)) => session,
        (Some(prompt), Some(session)) => format!("{prompt} and {session}"),
    }
}

fn pick(ids: &[Uuid], index: &Index) -> Option<Uuid> {
    (!ids.is_empty()).then(|| ids[index.index(ids.len())])
}

fn remember(ids: &mut Vec<Uuid>, id: Uuid) {
    if !ids.contains(&id) {
        ids.push(id);
    }
}
