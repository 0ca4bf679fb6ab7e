//! One group's rounds: a planned presence flip, then every member acts at once, then reconnects and mutual accepts are checked.

use std::{
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use anyhow::{Context, ensure};
use futures_util::future::join_all;
use rand::{Rng, SeedableRng, rngs::StdRng};
use reqwest::Method;
use shared_types::game::{PlayerState, PromptKind, SessionKind, SessionState};

use super::{
    acknowledged::Acknowledged,
    act::act,
    actions::{Acted, Action, choose},
    chatter::Chatter,
    flips::{Flipper, RoundPresence, round_presence},
    players::{GroupReport, Member, Stats},
    requests::{brief, essence_ids, send, state_of},
};

/// A group's rounds whose answers a timed storm answers again: fewer than the 32 prompts a
/// player's record remembers, at a few prompts answered or closed per round.
const REMEMBERED_ROUNDS: usize = 4;

/// One group's rounds (no new one after `until`): the flipper's presence flip if one is due,
/// fresh states, everyone acts at once (and chats meanwhile, with a chatter), then the
/// mutual-accept rule.
pub(super) async fn play(
    group: &[Member],
    rounds: usize,
    until: Option<Instant>,
    mut flipper: Option<Flipper>,
    mut chatter: Option<Chatter>,
    rng: &mut StdRng,
    stats: &Stats,
) -> anyhow::Result<GroupReport> {
    let trio = group.len() == 3;
    let mut report = GroupReport::default();
    // Where each round's answers begin in `report.answers`.
    let mut round_answers = Vec::new();
    for round in 0..rounds {
        if until.is_some_and(|until| Instant::now() >= until) {
            break;
        }
        round_answers.push(report.answers.len());
        stats.rounds_played.fetch_add(1, Ordering::Relaxed);
        if let Some(flipper) = flipper.as_mut() {
            flipper
                .step(group, round, stats, &mut report)
                .await
                .with_context(|| format!("round {round}: flipping presence"))?;
        }
        let started = Instant::now();
        let mut before = Vec::new();
        for member in group {
            let state = state_of(
                send(member.pick(rng), Method::GET, "/v1/me", None, stats).await?,
                member.id(),
            )?;
            if let Some(join) = state.prompt.as_ref().filter(|p| p.kind == PromptKind::Join) {
                let lobby = join.session_id.context("a join prompt without its lobby")?;
                report.join_modes.insert((lobby, join.mode.clone()));
            }
            before.push(state);
        }
        let presence = round_presence(flipper.as_ref(), group, &before, started, stats);
        let plans: Vec<(Action, u64, u64)> = before
            .iter()
            .enumerate()
            .map(|(k, state)| {
                let away = flipper.as_ref().is_some_and(|f| f.away(k, rng));
                let action = if away {
                    Action::Idle
                } else {
                    choose(rng, state, trio)
                };
                (action, rng.random_range(0..3000), rng.random())
            })
            .collect();
        for (action, _, _) in &plans {
            *report.actions.entry(action.name()).or_default() += 1;
            for mode in action.modes() {
                *report
                    .modes_asked
                    .entry(mode.unwrap_or("none"))
                    .or_default() += 1;
            }
        }
        // Quiet: nobody else acts on this member, and no flip can land on them.
        let quiet: Vec<bool> = (0..group.len())
            .map(|k| {
                !presence[k].touched
                    && plans
                        .iter()
                        .enumerate()
                        .all(|(j, (action, _, _))| j == k || !action.touches_others())
            })
            .collect();
        let chat_seed = chatter.as_ref().map(|_| rng.random::<u64>());
        let each = group
            .iter()
            .zip(&before)
            .zip(&plans)
            .zip(&quiet)
            .zip(&presence);
        let acts = join_all(each.map(
            |((((member, state), (action, jitter_us, seed)), others_quiet), presence)| async move {
                tokio::time::sleep(Duration::from_micros(*jitter_us)).await;
                let mut rng = StdRng::seed_from_u64(*seed);
                act(
                    member,
                    state,
                    action,
                    *others_quiet,
                    presence,
                    &mut rng,
                    stats,
                )
                .await
                .with_context(|| {
                    format!(
                        "round {round}: {} doing {action:?} from {}",
                        member.id(),
                        brief(state)
                    )
                })
            },
        ));
        let mut chatted = Acknowledged::default();
        let chat = async {
            match (chatter.as_mut(), chat_seed) {
                (Some(chatter), Some(seed)) => {
                    chatter.round(group, round, seed, stats, &mut chatted).await
                }
                _ => Ok(()),
            }
        };
        let (acted, chat) = tokio::join!(acts, chat);
        chat?;
        report.acknowledged.extend(chatted);
        let acted = acted.into_iter().collect::<anyhow::Result<Vec<Acted>>>()?;

        for (k, (member, done)) in group.iter().zip(&acted).enumerate() {
            report.answers.extend(
                done.answers
                    .iter()
                    .map(|(p, d)| (member.id().to_owned(), *p, *d)),
            );
            report.lobbies.extend(done.lobby.clone());
            report.acknowledged.extend(done.acknowledged.clone());
            if let Some(session) = done.left {
                report.left.insert(member.id().to_owned());
                report
                    .left_sessions
                    .insert((member.id().to_owned(), session));
            }
            if quiet[k] {
                check_reconnects(&before[k], done, stats)
                    .with_context(|| format!("round {round}: {} reconnecting", member.id()))?;
            }
        }
        if let Some(flipper) = flipper.as_mut() {
            flipper.note(&before, &acted);
        }
        check_mutual_accepts(group, &before, &plans, &acted, &presence, rng, stats)
            .await
            .with_context(|| format!("round {round}"))?;
    }
    // A player's older answers are forgotten (the newest 32 prompts answered or closed are
    // remembered): after a soak's hundreds of rounds only the last few rounds' are answered
    // again.
    if until.is_some() {
        let recent = round_answers.len().saturating_sub(REMEMBERED_ROUNDS);
        if let Some(&from) = round_answers.get(recent) {
            report.answers.drain(..from);
        }
    }
    Ok(report)
}

/// Connecting again returns what was open, never a second prompt or session.
fn check_reconnects(before: &PlayerState, done: &Acted, stats: &Stats) -> anyhow::Result<()> {
    let held = essence_ids(before);
    let fresh = held == (None, None);
    let first = done.connected.first().map(essence_ids);
    for state in &done.connected {
        let ids = essence_ids(state);
        if fresh {
            ensure!(
                Some(ids) == first,
                "two connects at once gave two different states: {:#?}",
                done.connected
            );
        } else {
            ensure!(
                ids == held,
                "connecting again changed {} into {}",
                brief(before),
                brief(state)
            );
        }
        stats.strict_reconnects.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Two members who accepted each other's invite at the same moment land in one session.
/// In a trio the rule is only checked when the third member did not answer anything in that
/// round: a third member's lobby legitimately redirects an answer to its join prompt. Nor is
/// it when a flip may land on either of them: a lobby ending behind their backs.
async fn check_mutual_accepts(
    group: &[Member],
    before: &[PlayerState],
    plans: &[(Action, u64, u64)],
    acted: &[Acted],
    presence: &[RoundPresence],
    rng: &mut StdRng,
    stats: &Stats,
) -> anyhow::Result<()> {
    for x in 0..group.len() {
        for y in x + 1..group.len() {
            let third_answered = (0..group.len())
                .filter(|k| *k != x && *k != y)
                .any(|k| plans[k].0.answers());
            let accepted = |a: usize, b: usize| {
                acted[a]
                    .accepted_invite_with
                    .as_ref()
                    .is_some_and(|with| with.iter().any(|id| id == group[b].id()))
            };
            let touched = presence[x].touched || presence[y].touched;
            if third_answered || touched || !accepted(x, y) || !accepted(y, x) {
                continue;
            }
            let (sx, sy) = (
                state_of(
                    send(group[x].pick(rng), Method::GET, "/v1/me", None, stats).await?,
                    group[x].id(),
                )?,
                state_of(
                    send(group[y].pick(rng), Method::GET, "/v1/me", None, stats).await?,
                    group[y].id(),
                )?,
            );
            let same = match (&sx.session, &sy.session) {
                (Some(a), Some(b)) => {
                    a.id == b.id
                        && a.kind == SessionKind::Multiplayer
                        && a.state == SessionState::Active
                        && a.players.iter().any(|p| p.as_str() == group[x].id())
                        && a.players.iter().any(|p| p.as_str() == group[y].id())
                }
                _ => false,
            };
            ensure!(
                same,
                "{} and {} accepted each other's invites at once ({} and {}) but are not in \
                 one active session: {} / {}",
                group[x].id(),
                group[y].id(),
                brief(&before[x]),
                brief(&before[y]),
                brief(&sx),
                brief(&sy)
            );
            stats.mutual_checked.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}
