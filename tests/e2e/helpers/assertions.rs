//! Assertions that read like the contract: shortcuts on a player's state, the parts of it that must not move, player lists whatever their order, and polling until something holds.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use shared_types::{
    UserId,
    game::{PlayerState, Prompt, Reason, Session, SessionKind, SessionState},
};

use super::Player;

/// Shortcuts on a `PlayerState` that fail with the whole state in the message.
pub trait StateExt {
    fn open_prompt(&self) -> anyhow::Result<&Prompt>;
    fn live_session(&self) -> anyhow::Result<&Session>;
    /// Asserts a solo, active session with this reason and no prompt; returns the session.
    fn solo(&self, reason: Reason) -> anyhow::Result<&Session>;
}

impl StateExt for PlayerState {
    fn open_prompt(&self) -> anyhow::Result<&Prompt> {
        self.prompt
            .as_ref()
            .with_context(|| format!("expected an open prompt, got {self:#?}"))
    }

    fn live_session(&self) -> anyhow::Result<&Session> {
        self.session
            .as_ref()
            .with_context(|| format!("expected a session, got {self:#?}"))
    }

    fn solo(&self, reason: Reason) -> anyhow::Result<&Session> {
        let session = self.live_session()?;
        ensure!(
            session.kind == SessionKind::Solo
                && session.state == SessionState::Active
                && session.reason == Some(reason)
                && self.prompt.is_none(),
            "expected a solo active session with reason {reason:?} and no prompt, got {self:#?}"
        );
        ensure!(
            session.players.contains(&self.player_id),
            "a solo session without its player: {self:#?}"
        );
        Ok(session)
    }
}

/// The parts of a state that must not move when nothing happens (join tokens aside).
pub fn essence(state: &PlayerState) -> String {
    let prompt = state.prompt.as_ref().map(|p| (p.id, p.kind, p.session_id));
    let session = state.session.as_ref().map(|s| {
        (
            s.id,
            s.kind,
            s.state,
            sorted(&s.players),
            sorted(&s.pending),
            s.reason,
        )
    });
    format!("{prompt:?} {session:?} degraded={}", state.degraded)
}

/// User ids sorted, for comparing player lists whatever their order.
pub fn sorted(ids: &[UserId]) -> Vec<&str> {
    let mut ids: Vec<&str> = ids.iter().map(UserId::as_str).collect();
    ids.sort_unstable();
    ids
}

/// Same, for the names a test wrote down.
pub fn names<'a>(players: &[&'a Player]) -> Vec<&'a str> {
    let mut ids: Vec<&str> = players.iter().map(|p| p.id.as_str()).collect();
    ids.sort_unstable();
    ids
}

/// Polls `probe` every 100 ms until it yields `Some`, failing after `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = probe().await? {
            return Ok(value);
        }
        if start.elapsed() > limit {
            bail!("{what}: not within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
