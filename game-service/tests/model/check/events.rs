//! Each player's events from the store against the model's, in order or, after a sweep, up to the order of jobs due together.

use std::collections::BTreeMap;

use anyhow::ensure;
use shared_types::game::GameEvent;

use super::{Run, observe::check_join_token};
use crate::{
    commands::name,
    helpers::uid,
    model::{Event, Player, SessionId, SessionView},
};

impl<'h> Run<'h> {
    /// Each player's events since the previous step, against the model's.
    /// `swept`: jobs due together may run in any order, so each player's prompt
    /// events are compared in order, and per session the number of `session`
    /// events and the last one.
    pub(super) async fn compare_events(&mut self, swept: bool) -> anyhow::Result<()> {
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
