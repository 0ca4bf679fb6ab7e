//! Observes the store without showing life: every player's state and every session against the model, the invariants that hold whatever the model says, who may read which session, and join tokens.

use std::collections::{BTreeSet, HashMap};

use anyhow::{Context, bail, ensure};
use game_service::domain::records::{PlayerRecord, SessionRecord, SessionRef};
use shared_types::game::{PlayerState, Reason, Session, SessionState};
use uuid::Uuid;

use super::Run;
use crate::{commands::name, helpers::uid, model::Player};

impl<'h> Run<'h> {
    /// Compares every player's state and every session with the model, and checks invariants.
    pub(super) async fn observe(&mut self) -> anyhow::Result<Vec<PlayerState>> {
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
        let mut all: HashMap<Uuid, Session> = HashMap::new();
        for s in 0..self.model.sessions() {
            let want = self.model.session_view(s);
            let id = self.sessions.to_uuid[&s];
            let session = self
                .stored_session(id)
                .await?
                .with_context(|| format!("session #{s} is gone"))?
                .view();
            // A seat too many is clearest said before any difference from the model.
            self.check_seats(s, &session)?;
            let view = self.session_view(&session, Some(s))?;
            ensure!(
                view == want,
                "session #{s} differs\n system: {view:?}\n model:  {want:?}\n raw: {session:?}"
            );
            // Invariants, from the system alone.
            let players: BTreeSet<Player> = view.players.iter().copied().collect();
            all.insert(id, session.clone());
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
        self.check_prompt_modes(&states, &all)?;
        Ok(states)
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

    /// Which sessions each player may read, against the model.
    pub(super) async fn check_visibility(&self) -> anyhow::Result<()> {
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
}

/// `join_token` is minted per read, so only whether it is there is compared: a
/// viewer who is one of the session's players gets one while it has not ended;
/// anyone else (`None`: a game server) gets the empty string.
pub(super) fn check_join_token(
    session: &Session,
    viewer: Option<Player>,
    what: &str,
) -> anyhow::Result<()> {
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

fn remember(ids: &mut Vec<Uuid>, id: Uuid) {
    if !ids.contains(&id) {
        ids.push(id);
    }
}
