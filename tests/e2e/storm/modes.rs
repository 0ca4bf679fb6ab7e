//! The storm's modes: the list configured, a connect's pick, the rules every session and prompt keeps (a configured mode, never more players than it allows), and why a prompt had closed.

use anyhow::{Context, bail, ensure};
use rand::{Rng, rngs::StdRng};
use shared_types::{
    game::{PlayerState, Prompt, PromptKind, Reason, SessionKind},
    problem::Problem,
};
use uuid::Uuid;

use super::requests::brief;

/// `GAME_MODES` of the storm, in order (the first is the default): trios connecting for a
/// `duo` race into `full`, pairs and trios fit a `squad`.
pub(super) const MODES: &[(&str, usize)] = &[("duo", 2), ("squad", 3)];

/// The mode of a connect without a body.
pub(super) const DEFAULT_MODE: &str = MODES[0].0;

/// `GAME_MODES` for the world.
pub(super) fn game_modes() -> String {
    MODES
        .iter()
        .map(|(name, max)| format!("{name}:{max}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Most players `mode` allows, if it is configured.
pub(super) fn max_players(mode: &str) -> Option<usize> {
    MODES.iter().find(|(name, _)| *name == mode).map(|m| m.1)
}

/// A connect's mode, at random: none (the default), or one named.
pub(super) fn pick(rng: &mut StdRng) -> Option<&'static str> {
    match rng.random_range(0..=MODES.len()) {
        0 => None,
        k => Some(MODES[k - 1].0),
    }
}

/// The mode a connect asked for, as the service should read it.
pub(super) fn asked(mode: Option<&str>) -> &str {
    mode.unwrap_or(DEFAULT_MODE)
}

/// Why a session breaks the mode rules, if it does: its mode is not configured, or it holds
/// more players than its mode allows, or it is full and still has invitations pending.
pub(super) fn session_problem(
    solo: bool,
    mode: &str,
    players: usize,
    pending: usize,
) -> Option<String> {
    let Some(max) = max_players(mode) else {
        return prompt_problem(mode);
    };
    if players > max {
        return Some(format!(
            "{players} players in a {mode} session, which allows {max}"
        ));
    }
    (!solo && players == max && pending > 0)
        .then(|| format!("a full {mode} session ({players} players) still has {pending} pending"))
}

/// Why a prompt (or session) breaks the mode rules, if it does: its mode is not configured.
pub(super) fn prompt_problem(mode: &str) -> Option<String> {
    max_players(mode).is_none().then(|| {
        format!(
            "its mode {mode:?} is not one of GAME_MODES {}",
            game_modes()
        )
    })
}

/// A state's prompt and session keep the mode rules, and a solo session that was never a
/// lobby has the default mode.
pub(super) fn ensure_modes(state: &PlayerState) -> anyhow::Result<()> {
    let id = &state.player_id;
    if let Some(problem) = state.prompt.as_ref().and_then(|p| prompt_problem(&p.mode)) {
        bail!(
            "{id}'s prompt breaks the modes: {problem}: {}",
            brief(state)
        );
    }
    let Some(session) = &state.session else {
        return Ok(());
    };
    let solo = session.kind == SessionKind::Solo;
    let (players, pending) = (session.players.len(), session.pending.len());
    if let Some(problem) = session_problem(solo, &session.mode, players, pending) {
        bail!(
            "{id}'s session breaks the modes: {problem}: {}",
            brief(state)
        );
    }
    let never_a_lobby = matches!(
        session.reason,
        Some(Reason::NoPartner | Reason::Rejected | Reason::ImUnavailable)
    );
    ensure!(
        !(solo && never_a_lobby) || session.mode == DEFAULT_MODE,
        "{id}'s solo session was never a lobby but is not of the default mode {DEFAULT_MODE}: {}",
        brief(state)
    );
    Ok(())
}

/// A connect from nothing that made an invite prompt made it for the mode asked (of either
/// request, for two at once).
pub(super) fn ensure_invite_mode(
    before: &PlayerState,
    after: &PlayerState,
    asked_for: &[Option<&str>],
) -> anyhow::Result<()> {
    let fresh = before.prompt.is_none() && before.session.is_none();
    if let Some(invite) = after
        .prompt
        .as_ref()
        .filter(|p| p.kind == PromptKind::Invite)
        && fresh
    {
        ensure!(
            asked_for.iter().any(|m| asked(*m) == invite.mode),
            "connecting for {asked_for:?} made an invite prompt for {:?}: {invite:?}",
            invite.mode
        );
    }
    Ok(())
}

/// The lobby an accepted invite prompt opened (the session `id` hosts among `states`), and
/// the invite's mode, which the lobby must have. `None` when the answer was carried over to
/// another host's join prompt (the invite was superseded).
pub(super) fn lobby_of(
    invite: &Prompt,
    id: &str,
    states: &[&PlayerState],
) -> anyhow::Result<Option<(Uuid, String)>> {
    let Some(lobby) = states
        .iter()
        .filter_map(|s| s.session.as_ref())
        .find(|s| s.host.as_str() == id)
    else {
        return Ok(None);
    };
    ensure!(
        lobby.mode == invite.mode,
        "accepting a {} invite prompt ({}) opened a {} session: {lobby:?}",
        invite.mode,
        invite.id,
        lobby.mode
    );
    Ok(Some((lobby.id, invite.mode.clone())))
}

/// Why a prompt had closed when it was answered: its lobby was withdrawn, or had filled, or
/// its player went offline in the IM service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Closed {
    Withdrawn,
    Full,
    Unavailable,
}

/// The reason a 409 `prompt_closed` names in its detail; nothing else may close a prompt in
/// the storm (nothing expires). Whether `unavailable` may close this player's prompt now is
/// for the caller to say.
pub(super) fn closed_reason(problem: &Problem) -> anyhow::Result<Closed> {
    let detail = problem.detail.as_deref().unwrap_or_default();
    let named = |reason: Reason| -> anyhow::Result<bool> {
        let name = serde_json::to_value(reason)?;
        let name = name.as_str().context("a reason is a string")?;
        Ok(detail.contains(name))
    };
    if named(Reason::Full)? {
        Ok(Closed::Full)
    } else if named(Reason::Withdrawn)? {
        Ok(Closed::Withdrawn)
    } else if named(Reason::Unavailable)? {
        Ok(Closed::Unavailable)
    } else {
        bail!("a prompt closed neither `withdrawn`, `full` nor `unavailable`: {problem:?}")
    }
}
