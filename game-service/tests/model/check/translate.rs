//! The system's ids and values in model terms: uuids bound to model ids as they first appear, and states, prompts and sessions translated into model views.

use std::collections::HashMap;

use anyhow::anyhow;
use chrono::{DateTime, Utc};
use shared_types::{
    UserId,
    game::{PlayerState, Prompt, Session},
};
use uuid::Uuid;

use super::Run;
use crate::model::{Player, PlayerView, PromptView, SessionView};

/// The model id given to a system id that does not match the model's.
const UNBOUND: usize = usize::MAX;

/// System uuids and model ids, bound to each other as they first appear.
#[derive(Default)]
pub(super) struct Ids {
    to_model: HashMap<Uuid, usize>,
    pub(super) to_uuid: HashMap<usize, Uuid>,
}

impl Ids {
    /// The model id of `id`; an id seen for the first time takes the model's `hint` if that is still free.
    pub(super) fn bind(&mut self, id: Uuid, hint: Option<usize>) -> usize {
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

    pub(super) fn model(&self, id: Uuid) -> Option<usize> {
        self.to_model.get(&id).copied()
    }

    /// `n` for a bound id, `?` otherwise (for the trace).
    pub(super) fn bind_label(&self, id: Uuid) -> String {
        self.model(id)
            .map_or_else(|| "?".to_owned(), |m| m.to_string())
    }
}

impl<'h> Run<'h> {
    pub(super) fn player(&self, user: &UserId) -> anyhow::Result<Player> {
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
    pub(super) fn translate(
        &mut self,
        state: &PlayerState,
        hint: &PlayerView,
    ) -> anyhow::Result<PlayerView> {
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

    pub(super) fn prompt_view(
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
            mode: prompt.mode.clone(),
            expires: self.seconds(prompt.expires_at),
        })
    }

    pub(super) fn session_view(
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
            ended: session.ended_reason,
            mode: session.mode.clone(),
        })
    }
}
