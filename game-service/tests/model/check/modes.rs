//! The invariants of `GAME_MODES`, read from the system alone: no session has more players than its mode allows (and a full one has nobody pending), multiplayer sessions and prompts are of listed modes, and a join prompt is of its lobby's mode.

use std::collections::HashMap;

use anyhow::{Context, ensure};
use shared_types::game::{PlayerState, Session, SessionKind};
use uuid::Uuid;

use super::Run;
use crate::model::{SessionId, UNLISTED_MAX};

impl<'h> Run<'h> {
    /// The most players of `mode`, if the case's `GAME_MODES` lists it.
    fn listed_max(&self, mode: &str) -> Option<usize> {
        self.modes.iter().find(|m| m.0 == mode).map(|m| m.1)
    }

    /// `session` (the model's #`s`) against its mode's seats.
    pub(super) fn check_seats(&self, s: SessionId, session: &Session) -> anyhow::Result<()> {
        let listed = self.listed_max(&session.mode);
        ensure!(
            session.kind == SessionKind::Solo || listed.is_some(),
            "multiplayer session #{s} is of mode {:?}, which GAME_MODES does not list: {session:?}",
            session.mode
        );
        let max = listed.unwrap_or(UNLISTED_MAX);
        let seated = session.players.len();
        ensure!(
            seated <= max,
            "session #{s} ({}) has {seated} players; its mode allows {max}: {session:?}",
            session.mode
        );
        ensure!(
            seated < max || session.pending.is_empty(),
            "session #{s} ({}) is full ({seated} of {max}) but still has invitees pending: {session:?}",
            session.mode
        );
        Ok(())
    }

    /// Every open prompt is of a listed mode; a join prompt is of its lobby's.
    pub(super) fn check_prompt_modes(
        &self,
        states: &[PlayerState],
        sessions: &HashMap<Uuid, Session>,
    ) -> anyhow::Result<()> {
        for (p, state) in states.iter().enumerate() {
            let Some(prompt) = &state.prompt else {
                continue;
            };
            ensure!(
                self.listed_max(&prompt.mode).is_some(),
                "p{p}'s prompt is for mode {:?}, which GAME_MODES does not list: {prompt:?}",
                prompt.mode
            );
            if let Some(lobby) = prompt.session_id {
                let session = sessions.get(&lobby).with_context(|| {
                    format!("p{p}'s join prompt names an unknown lobby: {prompt:?}")
                })?;
                ensure!(
                    session.mode == prompt.mode,
                    "p{p}'s join prompt is for mode {:?} but its lobby is of mode {:?}\n prompt: {prompt:?}\n lobby: {session:?}",
                    prompt.mode,
                    session.mode
                );
            }
        }
        Ok(())
    }
}
