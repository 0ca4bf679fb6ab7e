//! One game request (retried while the players are busy) and the checks every answer must pass.

use std::{
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use anyhow::{Context, ensure};
use reqwest::{Method, StatusCode};
use shared_types::{
    game::{PlayerState, Reason, SessionKind, SessionState},
    problem::ProblemCode,
};
use uuid::Uuid;

use super::{
    BUSY_RETRIES,
    modes::{Closed, closed_reason, ensure_modes},
    outage::OUTAGE_RETRY,
    players::{Decision, Stats},
};
use crate::helpers::{Player, Reply, Service};

/// One game request; a 503 "players busy" is retried as its `Retry-After` invites, and so is
/// a 503 `store_unavailable` in a storm that tolerates a failing-over store, and a request a
/// killed replica never answered in a soak (see [`super::outage`]).
pub(super) async fn send(
    player: &Player,
    method: Method,
    path: &str,
    body: Option<&str>,
    stats: &Stats,
) -> anyhow::Result<Reply> {
    let (mut busy, mut refused, since) = (0, 0, Instant::now());
    loop {
        stats.requests.fetch_add(1, Ordering::Relaxed);
        let outcome = player.raw(Service::Game, method.clone(), path, body).await;
        let Some(reply) = stats.outages.game_reply(outcome, since)? else {
            refused += 1;
            tokio::time::sleep(OUTAGE_RETRY).await;
            continue;
        };
        if reply.status == StatusCode::SERVICE_UNAVAILABLE && busy < BUSY_RETRIES {
            reply.problem(503, ProblemCode::LockContention)?;
            ensure!(
                reply.headers.contains_key("retry-after"),
                "a 503 without Retry-After: {reply:?}"
            );
            stats.busy_retries.fetch_add(1, Ordering::Relaxed);
            busy += 1;
            tokio::time::sleep(Duration::from_millis(20 * u64::from(busy))).await;
            continue;
        }
        stats.outages.answered(refused);
        return Ok(reply);
    }
}

/// A 200 `PlayerState` of this player, never holding a prompt and a session at once, whose
/// prompt and session keep the mode rules.
pub(super) fn state_of(reply: Reply, id: &str) -> anyhow::Result<PlayerState> {
    let state: PlayerState = reply.ok()?.json()?;
    ensure!(
        state.player_id.as_str() == id,
        "answered the state of {} to {id}",
        state.player_id
    );
    ensure!(
        state.prompt.is_none() || state.session.is_none(),
        "{id} holds an open prompt and a session at once: {state:#?}"
    );
    ensure_modes(&state)?;
    Ok(state)
}

/// An answer's reply: the new state, or why the prompt had closed meanwhile (409
/// `prompt_closed`: its lobby was withdrawn, or had filled, or its player went offline). A
/// first answer is never `already_answered`.
pub(super) fn answered(
    reply: Reply,
    id: &str,
    decision: Decision,
    stats: &Stats,
) -> anyhow::Result<Result<PlayerState, Closed>> {
    if reply.status == StatusCode::CONFLICT {
        let closed = closed(&reply, stats).with_context(|| format!("a first {decision:?}"))?;
        stats.refused.fetch_add(1, Ordering::Relaxed);
        return Ok(Err(closed));
    }
    state_of(reply, id).map(Ok)
}

/// A 409 `prompt_closed`, `withdrawn`, `full` or `unavailable` (the last two counted).
pub(super) fn closed(reply: &Reply, stats: &Stats) -> anyhow::Result<Closed> {
    let closed = closed_reason(&reply.problem(409, ProblemCode::PromptClosed)?)?;
    match closed {
        Closed::Full => stats.refused_full.fetch_add(1, Ordering::Relaxed),
        Closed::Unavailable => stats.refused_unavailable.fetch_add(1, Ordering::Relaxed),
        Closed::Withdrawn => 0,
    };
    Ok(closed)
}

/// `Ok` if `condition` holds, else the error `what` tells.
pub(super) fn holds(condition: bool, what: impl FnOnce() -> String) -> anyhow::Result<()> {
    ensure!(condition, "{}", what());
    Ok(())
}

/// Connect always places the player: an open prompt or a session.
pub(super) fn ensure_placed(state: &PlayerState) -> anyhow::Result<()> {
    ensure!(
        state.prompt.is_some() != state.session.is_some(),
        "connect left the player nowhere (or in two places): {state:#?}"
    );
    Ok(())
}

/// An accepted prompt puts the player in a multiplayer session.
pub(super) fn ensure_joined(state: &PlayerState) -> anyhow::Result<()> {
    let joined = state.prompt.is_none()
        && state.session.as_ref().is_some_and(|s| {
            s.kind == SessionKind::Multiplayer
                && s.state != SessionState::Ended
                && s.players.iter().any(|p| p == &state.player_id)
        });
    ensure!(
        joined,
        "an accepted prompt did not lead into a multiplayer session: {state:#?}"
    );
    Ok(())
}

pub(super) trait SoloFor {
    fn solo_for(&self, reason: Reason) -> anyhow::Result<()>;
}

impl SoloFor for PlayerState {
    fn solo_for(&self, reason: Reason) -> anyhow::Result<()> {
        let solo = self.prompt.is_none()
            && self.session.as_ref().is_some_and(|s| {
                s.kind == SessionKind::Solo
                    && s.state == SessionState::Active
                    && s.reason == Some(reason)
            });
        ensure!(solo, "expected a solo session ({reason:?}), got {self:#?}");
        Ok(())
    }
}

pub(super) fn essence_ids(state: &PlayerState) -> (Option<Uuid>, Option<Uuid>) {
    (
        state.prompt.as_ref().map(|p| p.id),
        state.session.as_ref().map(|s| s.id),
    )
}

/// One line: what the player holds.
pub(super) fn brief(state: &PlayerState) -> String {
    match (&state.prompt, &state.session) {
        (Some(p), None) => format!(
            "{} prompt {} ({:?} {})",
            state.player_id, p.id, p.kind, p.mode
        ),
        (None, Some(s)) => format!(
            "{} session {} ({:?} {:?} {} players {:?} pending {:?} {:?})",
            state.player_id,
            s.id,
            s.kind,
            s.state,
            s.mode,
            s.players.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
            s.pending.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
            s.reason
        ),
        (None, None) => format!("{} nothing", state.player_id),
        (Some(_), Some(_)) => format!("{} BOTH a prompt and a session: {state:?}", state.player_id),
    }
}
