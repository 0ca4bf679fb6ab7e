//! Doing one member's action against the replicas, and checking each answer as it comes.

use std::sync::atomic::Ordering;

use anyhow::{Context, bail, ensure};
use rand::rngs::StdRng;
use reqwest::{Method, StatusCode};
use shared_types::{
    game::{PlayerState, PromptKind, Reason},
    problem::ProblemCode,
};

use super::{
    acknowledged::Acknowledged,
    actions::{Acted, Action},
    flips::{RoundPresence, check_connect},
    modes::{self, Closed},
    players::{Decision, Member, Stats},
    requests::{
        SoloFor, answered, brief, closed, ensure_joined, ensure_placed, holds, send, state_of,
    },
};
use crate::helpers::{Player, Reply, essence};

pub(super) async fn act(
    member: &Member,
    state: &PlayerState,
    action: &Action,
    others_quiet: bool,
    presence: &RoundPresence,
    rng: &mut StdRng,
    stats: &Stats,
) -> anyhow::Result<Acted> {
    let mut done = Acted {
        accepted_invite_with: None,
        lobby: None,
        answers: Vec::new(),
        closed: Vec::new(),
        left: None,
        connected: Vec::new(),
        acknowledged: Acknowledged::default(),
    };
    // An answer's checks of what applying it did hold unless the store refused a request
    // meanwhile (the answer may then be a retry's, see `Outages::unless_refused`).
    let mark = stats.outages.mark();
    let outcome = |check: anyhow::Result<()>| stats.outages.unless_refused(mark, check);
    let id = member.id();
    let prompt = state.prompt.clone();
    let is_invite = prompt
        .as_ref()
        .is_some_and(|p| p.kind == PromptKind::Invite);
    let everyone = || -> Vec<String> {
        prompt
            .as_ref()
            .map(|p| p.candidates.iter().map(|c| c.as_str().to_owned()).collect())
            .unwrap_or_default()
    };
    let accept_path = prompt
        .as_ref()
        .map(|p| format!("/v1/prompts/{}/accept", p.id));
    let reject_path = prompt
        .as_ref()
        .map(|p| format!("/v1/prompts/{}/reject", p.id));
    match action {
        Action::Idle => {}
        Action::Connect { mode } => {
            let after = state_of(connect(member.pick(rng), *mode, stats).await?, id)?;
            ensure_placed(&after)?;
            modes::ensure_invite_mode(state, &after, &[*mode])?;
            check_connect(state, &after, presence, stats)?;
            stats.connected(&after);
            done.connected.push(after);
        }
        Action::DoubleConnect { modes: asked } => {
            let (a, b) = tokio::join!(
                connect(&member.primary, asked[0], stats),
                connect(&member.other, asked[1], stats)
            );
            for reply in [a?, b?] {
                let after = state_of(reply, id)?;
                ensure_placed(&after)?;
                modes::ensure_invite_mode(state, &after, asked)?;
                check_connect(state, &after, presence, stats)?;
                stats.connected(&after);
                done.connected.push(after);
            }
        }
        Action::Accept { with } => {
            let (prompt, path) = prompt
                .as_ref()
                .zip(accept_path.as_deref())
                .context("no prompt")?;
            let body = with
                .as_ref()
                .map(|ids| serde_json::json!({ "with": ids }).to_string());
            let reply = send(member.pick(rng), Method::POST, path, body.as_deref(), stats).await?;
            match answered(reply, id, Decision::Accept, stats)? {
                Ok(state) => {
                    outcome(ensure_joined(&state))?;
                    done.acknowledged.accepted(&state);
                    done.answers.push((prompt.id, Decision::Accept));
                    if is_invite {
                        done.accepted_invite_with = Some(with.clone().unwrap_or_else(everyone));
                        done.lobby = modes::lobby_of(prompt, id, &[&state])?;
                    }
                }
                Err(closed) => done.closed.push(closed),
            }
        }
        Action::DoubleAccept => {
            let (prompt, path) = prompt
                .as_ref()
                .zip(accept_path.as_deref())
                .context("no prompt")?;
            let (a, b) = tokio::join!(
                send(&member.primary, Method::POST, path, None, stats),
                send(&member.other, Method::POST, path, None, stats)
            );
            let a = answered(a?, id, Decision::Accept, stats)?;
            let b = answered(b?, id, Decision::Accept, stats)?;
            match (a, b) {
                (Ok(a), Ok(b)) => {
                    // One of them applied the answer and shows its outcome; the other found
                    // it answered and shows the state of the moment, which the others may
                    // have moved on since (the partner rejecting turns a lobby solo).
                    outcome(holds(
                        ensure_joined(&a).is_ok() || ensure_joined(&b).is_ok(),
                        || {
                            format!(
                                "the same accept twice at once: neither led into a \
                                 multiplayer session: {a:#?} / {b:#?}"
                            )
                        },
                    ))?;
                    done.acknowledged.accepted(&a);
                    done.acknowledged.accepted(&b);
                    if others_quiet {
                        ensure_joined(&a)?;
                        ensure!(
                            essence(&a) == essence(&b),
                            "the same accept twice at once, nobody else acting, gave two \
                             outcomes: {} / {}",
                            brief(&a),
                            brief(&b)
                        );
                    }
                    done.answers.push((prompt.id, Decision::Accept));
                    if is_invite {
                        done.accepted_invite_with = Some(everyone());
                        done.lobby = modes::lobby_of(prompt, id, &[&a, &b])?;
                    }
                }
                (Err(x), Err(y)) => done.closed.extend([x, y]),
                (a, b) => {
                    bail!("the same accept twice at once: one taken, one refused: {a:#?} / {b:#?}")
                }
            }
        }
        Action::Reject => {
            let (prompt, path) = prompt
                .as_ref()
                .zip(reject_path.as_deref())
                .context("no prompt")?;
            let reply = send(member.pick(rng), Method::POST, path, None, stats).await?;
            match answered(reply, id, Decision::Reject, stats)? {
                Ok(state) => {
                    outcome(state.solo_for(Reason::Rejected))?;
                    done.answers.push((prompt.id, Decision::Reject));
                }
                Err(closed) => done.closed.push(closed),
            }
        }
        Action::Contrary => {
            let prompt = prompt.as_ref().context("no prompt")?;
            let (accept, reject) = (accept_path.as_deref(), reject_path.as_deref());
            let (accept, reject) = accept.zip(reject).context("no prompt")?;
            let (a, r) = tokio::join!(
                send(&member.primary, Method::POST, accept, None, stats),
                send(&member.other, Method::POST, reject, None, stats)
            );
            let (a, r) = (a?, r?);
            let (a_status, r_status) = (a.status, r.status);
            match (a_status, r_status) {
                (StatusCode::OK, StatusCode::OK) => bail!(
                    "accept and reject at once both succeeded:\naccept: {}\nreject: {}",
                    a.body,
                    r.body
                ),
                (StatusCode::OK, _) => {
                    r.problem(409, ProblemCode::AlreadyAnswered)?;
                    let state = state_of(a, id)?;
                    outcome(ensure_joined(&state))?;
                    done.acknowledged.accepted(&state);
                    done.answers.push((prompt.id, Decision::Accept));
                    if is_invite {
                        done.accepted_invite_with = Some(everyone());
                        done.lobby = modes::lobby_of(prompt, id, &[&state])?;
                    }
                }
                (_, StatusCode::OK) => {
                    a.problem(409, ProblemCode::AlreadyAnswered)?;
                    outcome(state_of(r, id)?.solo_for(Reason::Rejected))?;
                    done.answers.push((prompt.id, Decision::Reject));
                }
                _ => {
                    // Both refused: only when the prompt had closed (its lobby withdrawn, or
                    // filled).
                    done.closed.extend([closed(&a, stats)?, closed(&r, stats)?]);
                }
            }
            stats.contrary_races.fetch_add(1, Ordering::Relaxed);
        }
        Action::Leave => {
            let session = state.session.as_ref().context("no session")?;
            let path = format!("/v1/sessions/{}/leave", session.id);
            let state = state_of(
                send(member.pick(rng), Method::POST, &path, None, stats).await?,
                id,
            )?;
            outcome(holds(
                state.prompt.is_none() && state.session.is_none(),
                || format!("after leaving: {}", brief(&state)),
            ))?;
            done.left = Some(session.id);
        }
    }
    // Only the player's own offline flip, landing now, closes their prompt `unavailable`.
    ensure!(
        presence.landing || !done.closed.contains(&Closed::Unavailable),
        "a prompt closed `unavailable`, but no offline flip of this player could land now \
         (never flipped, or long applied): {:?}",
        done.closed
    );
    if done.closed.contains(&Closed::Full) {
        // The join that filled the lobby withdrew this player's invitation: nothing is left,
        // not even a solo session.
        let after = state_of(
            send(member.pick(rng), Method::GET, "/v1/me", None, stats).await?,
            id,
        )?;
        outcome(holds(
            after.prompt.is_none() && after.session.is_none(),
            || {
                format!(
                    "a prompt closed `full` left something behind: {}",
                    brief(&after)
                )
            },
        ))?;
        stats.nothing_after_full.fetch_add(1, Ordering::Relaxed);
    }
    Ok(done)
}

/// `POST /v1/connect` with `{"mode": M}`, or with no body for the default mode.
async fn connect(player: &Player, mode: Option<&str>, stats: &Stats) -> anyhow::Result<Reply> {
    let body = mode.map(|m| serde_json::json!({ "mode": m }).to_string());
    send(player, Method::POST, "/v1/connect", body.as_deref(), stats).await
}
