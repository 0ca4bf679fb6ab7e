//! Plays one case on a fresh `Harness` and on the model side by side, comparing replies, every player's state, every session, every player's events, and invariants.
//!
//! The checker observes without showing life: it reads records, sessions and
//! events from the store, so that only the case's own commands keep sessions
//! alive (a `GET /v1/me` per player per step would).
//!
//! - [`execute`]: one command on both sides, and the clock's advance.
//! - [`targets`]: who runs a command and which prompt or session it names.
//! - [`observe`]: the store's state against the model's, and the invariants.
//! - [`modes`]: the invariants of `GAME_MODES`: seats, and modes that agree.
//! - [`events`]: each player's events against the model's.
//! - [`redirects`]: "Both at once" redirected invite prompts.
//! - [`translate`]: system ids and values in model terms.

mod events;
mod execute;
mod modes;
mod observe;
mod redirects;
mod targets;
mod translate;

use std::collections::HashMap;

use anyhow::{Context, ensure};
use chrono::{DateTime, Utc};
use shared_types::game::{PlayerState, PromptKind};
use uuid::Uuid;

use self::{execute::Answer, observe::check_join_token, translate::Ids};
use crate::{
    commands::{Command, Scenario, listed, name},
    helpers::{Backend, Harness, Options, uid},
    model::{Model, Modes, Player, PlayerView, SessionView},
};

/// An idle check and an expiry due at the same instant: which runs first is up
/// to the store (and which due prompts the check's transition expires first, up
/// to the players it locks), so the case ends there, successfully.
#[derive(Debug, thiserror::Error)]
#[error("an idle check and an expiry are due at the same instant ({0}s)")]
struct Tie(i64);

struct Run<'h> {
    h: &'h Harness,
    model: Model,
    players: usize,
    /// `GAME_MODES` of the case, for the invariants (which read the system alone).
    modes: Modes,
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
        modes: scenario.modes,
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
            model: Model::new(
                scenario.talks.clone(),
                scenario.idle,
                listed(scenario.modes),
            ),
            players: n,
            modes: listed(scenario.modes),
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
        if let (true, Answer::State(Ok(state))) = (done.launched, &done.answer) {
            self.launch_redirects(done.player, state, &states)?;
        }
        self.last = states;
        self.compare_events(false).await
    }
}

/// A player's state in a few words, in model ids.
fn summary(view: &PlayerView) -> String {
    let prompt = view.prompt.as_ref().map(|pr| match pr.kind {
        PromptKind::Invite => format!(
            "invite prompt #{} ({}) naming {:?}",
            pr.id, pr.mode, pr.candidates
        ),
        PromptKind::Join => format!(
            "join prompt #{} ({}) for session #{:?}",
            pr.id, pr.mode, pr.session
        ),
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
        "session #{} {:?} {:?} ({}) host p{} players {:?} pending {:?} reason {:?} ended {:?}",
        s.id, s.kind, s.state, s.mode, s.host, s.players, s.pending, s.reason, s.ended
    )
}
