//! A race storm: hundreds of pairs and dozens of trios, each chatting in the IM service, race
//! through connect, accept (sometimes for a subset), reject, leave and reconnect in seeded random
//! interleavings, spread over two game-service replicas sharing one Redis, many groups at once.
//! Each group plays rounds; in a round every member acts at the same moment (two requests at
//! once for double connects, double accepts and contrary answers). Afterwards the contract's
//! invariants are checked against the services' answers and against what they wrote to Redis.
//!
//! `STORM_SEED`, `STORM_PAIRS`, `STORM_TRIOS` and `STORM_ROUNDS` override the defaults; the seed
//! is printed, and named in every failure, so a failing storm can be replayed (the interleaving
//! on the server side still varies from run to run).

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use futures_util::{StreamExt, future::join_all, stream};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use reqwest::{Method, StatusCode};
use shared_types::{
    game::{PlayerState, PromptKind, Reason, SessionKind, SessionState},
    problem::ProblemCode,
};
use uuid::Uuid;

use crate::helpers::{
    Player, Reply, Service, TestWorld, WorldOptions, essence,
    invariants::{Records, check_store, fail_if_any, ids_of, text},
    spawn_world_with,
};

const DEFAULT_PAIRS: usize = 500;
const DEFAULT_TRIOS: usize = 30;
/// Enough for connect → accept → leave → reconnect → answer again, with idle turns between.
const DEFAULT_ROUNDS: usize = 12;
/// Groups playing at once; with two or three members each, 100-200 requests in flight.
const CONCURRENT_GROUPS: usize = 64;
/// Nothing may expire during the storm: expiry has its own tests.
const INVITE_TTL_SECS: u64 = 900;
/// The storm is about the store's races, not the IM service's latency (the fault tests time
/// that): on a loaded 2-core machine a partners call among 64 racing groups can take longer
/// than the default 500 ms, and a connect would go solo as if the IM service were down. A
/// refusal (429, 5xx) still fails fast and is still caught.
const IM_TIMEOUT_MS: u64 = 5_000;
/// "Players busy" (503 with `Retry-After`) under contention is allowed; retrying is the contract.
const BUSY_RETRIES: u32 = 20;
/// Answered prompts answered again after the storm.
const REANSWER_SAMPLE: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_racing_pairs_and_trios_on_two_replicas_keeps_every_invariant()
-> anyhow::Result<()> {
    let seed = match std::env::var("STORM_SEED") {
        Ok(seed) => seed.parse().context("STORM_SEED must be a u64")?,
        Err(_) => rand::rng().random(),
    };
    let config = Config {
        seed,
        pairs: env_usize("STORM_PAIRS", DEFAULT_PAIRS)?,
        trios: env_usize("STORM_TRIOS", DEFAULT_TRIOS)?,
        rounds: env_usize("STORM_ROUNDS", DEFAULT_ROUNDS)?,
    };
    eprintln!("storm: seed {seed} (replay with STORM_SEED={seed})");
    storm(&config)
        .await
        .with_context(|| format!("storm with seed {seed}: rerun with STORM_SEED={seed}"))
}

struct Config {
    seed: u64,
    pairs: usize,
    trios: usize,
    rounds: usize,
}

fn env_usize(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .with_context(|| format!("{name} must be a number")),
        Err(_) => Ok(default),
    }
}

async fn storm(config: &Config) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut world = spawn_world_with(
        WorldOptions {
            invite_ttl_secs: INVITE_TTL_SECS,
            ..WorldOptions::default()
        }
        .game_var("IM_TIMEOUT_MS", IM_TIMEOUT_MS),
    )
    .await?;
    let other = world.spawn_game_replica().await?;

    let mut groups: Vec<Vec<Member>> = Vec::new();
    for g in 0..config.pairs + config.trios {
        let size = if g < config.pairs { 2 } else { 3 };
        let mut members = Vec::new();
        for k in 0..size {
            let primary = world.player(&format!("g{g}-{k}"))?;
            let other = primary.via(&other);
            members.push(Member { primary, other });
        }
        groups.push(members);
    }
    let players: usize = groups.iter().map(Vec::len).sum();

    // Everyone available, each group in one conversation of its own.
    let setup: Vec<anyhow::Result<()>> = stream::iter(&groups)
        .map(|group| async {
            let people: Vec<&Player> = group.iter().map(|m| &m.primary).collect();
            world.chatting(&people).await.map(|_| ())
        })
        .buffer_unordered(CONCURRENT_GROUPS)
        .collect()
        .await;
    setup.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    let setup_time = started.elapsed();

    let stats = Stats::default();
    let storm_started = Instant::now();
    let outcomes: Vec<anyhow::Result<GroupReport>> = stream::iter(groups.iter().enumerate())
        .map(|(g, group)| {
            let mut rng =
                StdRng::seed_from_u64(config.seed ^ (g as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let stats = &stats;
            async move {
                play(group, config.rounds, &mut rng, stats)
                    .await
                    .with_context(|| format!("group g{g}"))
            }
        })
        .buffer_unordered(CONCURRENT_GROUPS)
        .collect()
        .await;
    let storm_time = storm_started.elapsed();
    let mut reports = Vec::new();
    let mut failures = Vec::new();
    for outcome in outcomes {
        match outcome {
            Ok(report) => reports.push(report),
            Err(err) => failures.push(format!("{err:#}")),
        }
    }
    fail_if_any("groups broke a rule while playing", &failures)?;
    // The IM service is up and answering all along: nobody may be sent off solo as if it were
    // down (that would also leave the storm without any race to check).
    ensure!(
        stats.degraded() == 0,
        "{} connects got a degraded solo session (`im_unavailable`) while the IM service was up \
         (is it refusing the game service's calls, e.g. 429 rate-limited?): {:?}\nthe game \
         service's last lines:\n{}",
        stats.degraded(),
        stats.connects.lock().map(|c| c.clone()).unwrap_or_default(),
        world.game_log_tail()
    );

    let checks_started = Instant::now();
    let report = GroupReport::merge(reports);
    let members: Vec<&Member> = groups.iter().flatten().collect();
    check_store_and_states(&world, &members, &report, &stats).await?;
    let mut rng = StdRng::seed_from_u64(config.seed.rotate_left(17));
    let reanswered = check_answers_are_final(&members, &report, &mut rng, &stats).await?;
    ensure!(
        world.panics() == 0,
        "a service panicked:\n{}",
        world.game_log_tail()
    );
    ensure!(
        world.all_running(),
        "a service process died during the storm"
    );
    // A storm that raced nothing proves nothing.
    let groups_played = groups.len();
    let mutual = stats.mutual_checked.load(Ordering::Relaxed);
    let contrary = stats.contrary_races.load(Ordering::Relaxed);
    ensure!(
        mutual * 20 >= groups_played && contrary * 50 >= groups_played,
        "too few races to prove anything: {mutual} mutual accepts and {contrary} contrary \
         answers among {groups_played} groups"
    );

    eprintln!(
        "storm: seed {seed}: {pairs} pairs + {trios} trios = {players} players, {rounds} rounds, \
         {groups} groups {CONCURRENT_GROUPS} at a time, 2 replicas\n\
         storm: {requests} game requests ({busy} busy retries), {conflicts} answers refused as \
         closed or contrary\n\
         storm: actions {actions:?}\n\
         storm: connects answered {connects:?}\n\
         storm: checked {mutual} mutual accepts, {strict} reconnects/double connects compared, \
         {contrary} contrary answer races, {reanswered} prompts answered again\n\
         storm: setup {setup_time:.1?}, storm {storm_time:.1?}, checks {checks:.1?}, \
         total {total:.1?}",
        seed = config.seed,
        pairs = config.pairs,
        trios = config.trios,
        rounds = config.rounds,
        groups = groups.len(),
        requests = stats.requests.load(Ordering::Relaxed),
        busy = stats.busy_retries.load(Ordering::Relaxed),
        conflicts = stats.refused.load(Ordering::Relaxed),
        actions = report.actions,
        connects = stats.connects.lock().map(|c| c.clone()).unwrap_or_default(),
        mutual = stats.mutual_checked.load(Ordering::Relaxed),
        strict = stats.strict_reconnects.load(Ordering::Relaxed),
        contrary = stats.contrary_races.load(Ordering::Relaxed),
        checks = checks_started.elapsed(),
        total = started.elapsed(),
    );
    Ok(())
}

// ---- the players --------------------------------------------------------------------

/// One player, reachable through either replica.
#[derive(Clone)]
struct Member {
    primary: Player,
    other: Player,
}

impl Member {
    fn id(&self) -> &str {
        &self.primary.id
    }

    /// Either replica, at random: a flow hops between processes.
    fn pick(&self, rng: &mut StdRng) -> &Player {
        if rng.random_bool(0.5) {
            &self.primary
        } else {
            &self.other
        }
    }
}

#[derive(Default)]
struct Stats {
    requests: AtomicUsize,
    busy_retries: AtomicUsize,
    refused: AtomicUsize,
    mutual_checked: AtomicUsize,
    strict_reconnects: AtomicUsize,
    contrary_races: AtomicUsize,
    /// What connects answered: invite, join, or a solo session with its reason.
    connects: std::sync::Mutex<BTreeMap<String, usize>>,
}

impl Stats {
    fn connected(&self, state: &PlayerState) {
        let what = match (&state.prompt, &state.session) {
            (Some(p), _) => format!("{:?}", p.kind),
            (None, Some(s)) if s.kind == SessionKind::Solo => format!("solo {:?}", s.reason),
            (None, Some(s)) => format!("{:?} {:?}", s.kind, s.state),
            (None, None) => "nothing".to_owned(),
        };
        let what = if state.degraded {
            format!("{what} degraded")
        } else {
            what
        };
        if let Ok(mut connects) = self.connects.lock() {
            *connects.entry(what).or_default() += 1;
        }
    }

    fn degraded(&self) -> usize {
        self.connects
            .lock()
            .map(|c| {
                c.iter()
                    .filter(|(k, _)| k.ends_with("degraded"))
                    .map(|(_, n)| n)
                    .sum()
            })
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Decision {
    Accept,
    Reject,
}

/// What a group did that the final checks need.
#[derive(Default)]
struct GroupReport {
    /// Prompts answered with a 200: (player, prompt, answer).
    answers: Vec<(String, Uuid, Decision)>,
    /// Players who left a session at least once.
    left: HashSet<String>,
    actions: BTreeMap<&'static str, usize>,
}

impl GroupReport {
    fn merge(reports: Vec<GroupReport>) -> GroupReport {
        let mut all = GroupReport::default();
        for report in reports {
            all.answers.extend(report.answers);
            all.left.extend(report.left);
            for (name, count) in report.actions {
                *all.actions.entry(name).or_default() += count;
            }
        }
        all
    }
}

#[derive(Debug, Clone)]
enum Action {
    Idle,
    /// Connect: from nothing, or again while holding a prompt or a session.
    Connect,
    /// Two connects at once, one per replica.
    DoubleConnect,
    /// `with`: a subset of an invite's candidates (trios only).
    Accept {
        with: Option<Vec<String>>,
    },
    /// The same accept twice at once, one per replica.
    DoubleAccept,
    Reject,
    /// Accept and reject at once, one per replica.
    Contrary,
    Leave,
}

impl Action {
    fn name(&self) -> &'static str {
        match self {
            Action::Idle => "idle",
            Action::Connect => "connect",
            Action::DoubleConnect => "double_connect",
            Action::Accept { with: None } => "accept",
            Action::Accept { with: Some(_) } => "accept_subset",
            Action::DoubleAccept => "double_accept",
            Action::Reject => "reject",
            Action::Contrary => "contrary",
            Action::Leave => "leave",
        }
    }

    fn answers(&self) -> bool {
        matches!(
            self,
            Action::Accept { .. } | Action::DoubleAccept | Action::Contrary | Action::Reject
        )
    }

    /// Only connects and idling leave the other members' states alone.
    fn touches_others(&self) -> bool {
        !matches!(self, Action::Idle | Action::Connect | Action::DoubleConnect)
    }
}

/// What one member's action did.
struct Acted {
    /// The invite prompt accepted (with a 200), and for whom.
    accepted_invite_with: Option<Vec<String>>,
    answers: Vec<(Uuid, Decision)>,
    left: bool,
    /// Connect answers, to compare with the state before when nobody else acted.
    connected: Vec<PlayerState>,
}

fn choose(rng: &mut StdRng, state: &PlayerState, trio: bool) -> Action {
    let r: f64 = rng.random();
    match (&state.prompt, &state.session) {
        (None, None) => match r {
            r if r < 0.6 => Action::Connect,
            r if r < 0.9 => Action::DoubleConnect,
            _ => Action::Idle,
        },
        (Some(prompt), _) if prompt.kind == PromptKind::Invite => match r {
            r if r < 0.45 => Action::Accept { with: None },
            r if r < 0.55 && trio => {
                let ids: Vec<String> = prompt
                    .candidates
                    .iter()
                    .map(|c| c.as_str().to_owned())
                    .collect();
                let amount = rng.random_range(1..=ids.len());
                let with = ids.choose_multiple(rng, amount).cloned().collect();
                Action::Accept { with: Some(with) }
            }
            r if r < 0.65 => Action::Reject,
            r if r < 0.71 => Action::Contrary,
            r if r < 0.79 => Action::DoubleAccept,
            r if r < 0.89 => Action::Connect,
            _ => Action::Idle,
        },
        (Some(_), _) => match r {
            r if r < 0.45 => Action::Accept { with: None },
            r if r < 0.60 => Action::Reject,
            r if r < 0.66 => Action::Contrary,
            r if r < 0.72 => Action::DoubleAccept,
            r if r < 0.84 => Action::Connect,
            _ => Action::Idle,
        },
        (None, Some(_)) => match r {
            r if r < 0.40 => Action::Leave,
            r if r < 0.60 => Action::Connect,
            _ => Action::Idle,
        },
    }
}

/// One group's rounds: fresh states, everyone acts at once, then the mutual-accept rule.
async fn play(
    group: &[Member],
    rounds: usize,
    rng: &mut StdRng,
    stats: &Stats,
) -> anyhow::Result<GroupReport> {
    let trio = group.len() == 3;
    let mut report = GroupReport::default();
    for round in 0..rounds {
        let mut before = Vec::new();
        for member in group {
            let state = state_of(
                send(member.pick(rng), Method::GET, "/v1/me", None, stats).await?,
                member.id(),
            )?;
            before.push(state);
        }
        let plans: Vec<(Action, u64, u64)> = before
            .iter()
            .map(|state| {
                let action = choose(rng, state, trio);
                (action, rng.random_range(0..3000), rng.random())
            })
            .collect();
        for (action, _, _) in &plans {
            *report.actions.entry(action.name()).or_default() += 1;
        }
        let quiet: Vec<bool> = (0..group.len())
            .map(|k| {
                plans
                    .iter()
                    .enumerate()
                    .all(|(j, (action, _, _))| j == k || !action.touches_others())
            })
            .collect();
        let acted = join_all(group.iter().zip(&before).zip(&plans).zip(&quiet).map(
            |(((member, state), (action, jitter_us, seed)), others_quiet)| async move {
                tokio::time::sleep(Duration::from_micros(*jitter_us)).await;
                let mut rng = StdRng::seed_from_u64(*seed);
                act(member, state, action, *others_quiet, &mut rng, stats)
                    .await
                    .with_context(|| {
                        format!(
                            "round {round}: {} doing {action:?} from {}",
                            member.id(),
                            brief(state)
                        )
                    })
            },
        ))
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<Acted>>>()?;

        for (k, (member, done)) in group.iter().zip(&acted).enumerate() {
            report.answers.extend(
                done.answers
                    .iter()
                    .map(|(p, d)| (member.id().to_owned(), *p, *d)),
            );
            if done.left {
                report.left.insert(member.id().to_owned());
            }
            if quiet[k] {
                check_reconnects(&before[k], done, stats)
                    .with_context(|| format!("round {round}: {} reconnecting", member.id()))?;
            }
        }
        check_mutual_accepts(group, &before, &plans, &acted, rng, stats)
            .await
            .with_context(|| format!("round {round}"))?;
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
/// round: a third member's lobby legitimately redirects an answer to its join prompt.
async fn check_mutual_accepts(
    group: &[Member],
    before: &[PlayerState],
    plans: &[(Action, u64, u64)],
    acted: &[Acted],
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
            if third_answered || !accepted(x, y) || !accepted(y, x) {
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

async fn act(
    member: &Member,
    state: &PlayerState,
    action: &Action,
    others_quiet: bool,
    rng: &mut StdRng,
    stats: &Stats,
) -> anyhow::Result<Acted> {
    let mut done = Acted {
        accepted_invite_with: None,
        answers: Vec::new(),
        left: false,
        connected: Vec::new(),
    };
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
        Action::Connect => {
            let state = state_of(
                send(member.pick(rng), Method::POST, "/v1/connect", None, stats).await?,
                id,
            )?;
            ensure_placed(&state)?;
            stats.connected(&state);
            done.connected.push(state);
        }
        Action::DoubleConnect => {
            let (a, b) = tokio::join!(
                send(&member.primary, Method::POST, "/v1/connect", None, stats),
                send(&member.other, Method::POST, "/v1/connect", None, stats)
            );
            for reply in [a?, b?] {
                let state = state_of(reply, id)?;
                ensure_placed(&state)?;
                stats.connected(&state);
                done.connected.push(state);
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
            if let Some(state) = answered(reply, id, Decision::Accept, stats)? {
                ensure_joined(&state)?;
                done.answers.push((prompt.id, Decision::Accept));
                if is_invite {
                    done.accepted_invite_with = Some(with.clone().unwrap_or_else(everyone));
                }
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
                (Some(a), Some(b)) => {
                    // One of them applied the answer and shows its outcome; the other found
                    // it answered and shows the state of the moment, which the others may
                    // have moved on since (the partner rejecting turns a lobby solo).
                    ensure!(
                        ensure_joined(&a).is_ok() || ensure_joined(&b).is_ok(),
                        "the same accept twice at once: neither led into a multiplayer \
                         session: {a:#?} / {b:#?}"
                    );
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
                    }
                }
                (None, None) => {}
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
            if let Some(state) = answered(reply, id, Decision::Reject, stats)? {
                state.solo_for(Reason::Rejected)?;
                done.answers.push((prompt.id, Decision::Reject));
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
                    ensure_joined(&state)?;
                    done.answers.push((prompt.id, Decision::Accept));
                    if is_invite {
                        done.accepted_invite_with = Some(everyone());
                    }
                }
                (_, StatusCode::OK) => {
                    a.problem(409, ProblemCode::AlreadyAnswered)?;
                    state_of(r, id)?.solo_for(Reason::Rejected)?;
                    done.answers.push((prompt.id, Decision::Reject));
                }
                _ => {
                    // Both refused: only when the prompt had closed (its lobby withdrawn).
                    a.problem(409, ProblemCode::PromptClosed)?;
                    r.problem(409, ProblemCode::PromptClosed)?;
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
            ensure!(
                state.prompt.is_none() && state.session.is_none(),
                "after leaving: {}",
                brief(&state)
            );
            done.left = true;
        }
    }
    Ok(done)
}

// ---- requests and their answers -------------------------------------------------------

/// One game request; a 503 "players busy" is retried as its `Retry-After` invites.
async fn send(
    player: &Player,
    method: Method,
    path: &str,
    body: Option<&str>,
    stats: &Stats,
) -> anyhow::Result<Reply> {
    let mut attempt = 0;
    loop {
        stats.requests.fetch_add(1, Ordering::Relaxed);
        let reply = player
            .raw(Service::Game, method.clone(), path, body)
            .await?;
        if reply.status == StatusCode::SERVICE_UNAVAILABLE && attempt < BUSY_RETRIES {
            reply.problem(503, ProblemCode::LockContention)?;
            ensure!(
                reply.headers.contains_key("retry-after"),
                "a 503 without Retry-After: {reply:?}"
            );
            stats.busy_retries.fetch_add(1, Ordering::Relaxed);
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
            continue;
        }
        return Ok(reply);
    }
}

/// A 200 `PlayerState` of this player, never holding a prompt and a session at once.
fn state_of(reply: Reply, id: &str) -> anyhow::Result<PlayerState> {
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
    Ok(state)
}

/// An answer's reply: the new state, or `None` when the prompt had closed meanwhile (409
/// `prompt_closed`: its lobby was withdrawn). A first answer is never `already_answered`.
fn answered(
    reply: Reply,
    id: &str,
    decision: Decision,
    stats: &Stats,
) -> anyhow::Result<Option<PlayerState>> {
    if reply.status == StatusCode::CONFLICT {
        reply
            .problem(409, ProblemCode::PromptClosed)
            .with_context(|| format!("a first {decision:?}"))?;
        stats.refused.fetch_add(1, Ordering::Relaxed);
        return Ok(None);
    }
    state_of(reply, id).map(Some)
}

/// Connect always places the player: an open prompt or a session.
fn ensure_placed(state: &PlayerState) -> anyhow::Result<()> {
    ensure!(
        state.prompt.is_some() != state.session.is_some(),
        "connect left the player nowhere (or in two places): {state:#?}"
    );
    Ok(())
}

/// An accepted prompt puts the player in a multiplayer session.
fn ensure_joined(state: &PlayerState) -> anyhow::Result<()> {
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

trait SoloFor {
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

fn essence_ids(state: &PlayerState) -> (Option<Uuid>, Option<Uuid>) {
    (
        state.prompt.as_ref().map(|p| p.id),
        state.session.as_ref().map(|s| s.id),
    )
}

/// One line: what the player holds.
fn brief(state: &PlayerState) -> String {
    match (&state.prompt, &state.session) {
        (Some(p), None) => format!("{} prompt {} ({:?})", state.player_id, p.id, p.kind),
        (None, Some(s)) => format!(
            "{} session {} ({:?} {:?} players {:?} pending {:?} {:?})",
            state.player_id,
            s.id,
            s.kind,
            s.state,
            s.players.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
            s.pending.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
            s.reason
        ),
        (None, None) => format!("{} nothing", state.player_id),
        (Some(_), Some(_)) => format!("{} BOTH a prompt and a session: {state:?}", state.player_id),
    }
}

// ---- after the storm ------------------------------------------------------------------

/// Redis and `/v1/me` agree, and every player is in exactly one well-defined place.
async fn check_store_and_states(
    world: &TestWorld,
    members: &[&Member],
    report: &GroupReport,
    stats: &Stats,
) -> anyhow::Result<()> {
    let records = check_store(world).await?;
    eprintln!("storm: keys in Redis: {:?}", records.families);
    ensure!(
        records.players.len() == members.len(),
        "expected a player record per player ({}), found {}",
        members.len(),
        records.players.len()
    );

    // Every player's state, through both replicas: the same, and what the records say.
    let mut violations = Vec::new();
    let states: Vec<anyhow::Result<Option<String>>> = stream::iter(members)
        .map(|member| async {
            let via_primary = state_of(
                send(&member.primary, Method::GET, "/v1/me", None, stats).await?,
                member.id(),
            )?;
            let via_other = state_of(
                send(&member.other, Method::GET, "/v1/me", None, stats).await?,
                member.id(),
            )?;
            if essence(&via_primary) != essence(&via_other) {
                return Ok(Some(format!(
                    "the replicas disagree on {}: {} / {}",
                    member.id(),
                    brief(&via_primary),
                    brief(&via_other)
                )));
            }
            Ok(placement_problem(&via_primary, &records, report))
        })
        .buffer_unordered(CONCURRENT_GROUPS)
        .collect()
        .await;
    for state in states {
        if let Some(problem) = state? {
            violations.push(problem);
        }
    }
    fail_if_any("players are not in one well-defined place", &violations)
}

/// Why a player's `/v1/me` is not one well-defined place matching the records, if it is not.
fn placement_problem(
    state: &PlayerState,
    records: &Records,
    report: &GroupReport,
) -> Option<String> {
    let id = state.player_id.as_str();
    let Some(record) = records.players.get(id) else {
        return Some(format!("{id} has no stored record"));
    };
    let stored_prompt = records.player_prompt(id);
    let stored_session = records.player_session(id);
    let prompt = state.prompt.as_ref().map(|p| p.id.to_string());
    let session = state.session.as_ref().map(|s| s.id.to_string());
    if prompt != stored_prompt || session != stored_session {
        return Some(format!(
            "{id}: /v1/me shows prompt {prompt:?} session {session:?}, the record {stored_prompt:?} {stored_session:?}"
        ));
    }
    match (&state.prompt, &state.session) {
        (Some(_), Some(_)) => Some(format!("{id} is in two places: {}", brief(state))),
        (Some(_), None) => None,
        (None, Some(s)) => {
            let stored = records.sessions.get(&s.id.to_string())?;
            let mut stored_players = ids_of(stored, "players");
            stored_players.sort_unstable();
            let mut players: Vec<String> =
                s.players.iter().map(|p| p.as_str().to_owned()).collect();
            players.sort_unstable();
            let kind = serde_json::to_value(s.kind).ok();
            let phase = serde_json::to_value(s.state).ok();
            let agrees = s.state != SessionState::Ended
                && players == stored_players
                && kind.as_ref().and_then(|k| k.as_str()) == Some(text(stored, "kind"))
                && phase.as_ref().and_then(|k| k.as_str()) == Some(text(stored, "state"));
            (!agrees).then(|| {
                format!(
                    "{id}: /v1/me shows {} but the session record is {stored}",
                    brief(state)
                )
            })
        }
        (None, None) => {
            // Nowhere: only after leaving, or when a lobby's host withdrew a join prompt.
            let withdrawn = record
                .get("answered")
                .and_then(|a| a.as_array())
                .is_some_and(|answers| {
                    answers.iter().any(|a| {
                        a.get("answer")
                            .and_then(|x| x.get("cancelled"))
                            .and_then(|r| r.as_str())
                            == Some("withdrawn")
                    })
                });
            let left = report.left.contains(id);
            (!left && !withdrawn).then(|| {
                format!("{id} is nowhere but never left a session nor lost a join prompt: {record}")
            })
        }
    }
}

/// Decisions are final: a sample of answered prompts answered again the same way (200, state
/// unchanged) and the other way (409 `already_answered`, state unchanged).
async fn check_answers_are_final(
    members: &[&Member],
    report: &GroupReport,
    rng: &mut StdRng,
    stats: &Stats,
) -> anyhow::Result<usize> {
    let by_id: HashMap<&str, &Member> = members.iter().map(|m| (m.id(), *m)).collect();
    let sample: Vec<&(String, Uuid, Decision)> = report
        .answers
        .choose_multiple(rng, REANSWER_SAMPLE.min(report.answers.len()))
        .collect();
    ensure!(
        sample.len() >= REANSWER_SAMPLE.min(50),
        "too few answered prompts to check: {}",
        sample.len()
    );
    // One task per player, so that a player's checks never overlap.
    let mut per_player: BTreeMap<&str, Vec<(Uuid, Decision)>> = BTreeMap::new();
    for (player, prompt, decision) in &sample {
        per_player
            .entry(player.as_str())
            .or_default()
            .push((*prompt, *decision));
    }
    let seeds: Vec<u64> = per_player.keys().map(|_| rng.random()).collect();
    let outcomes: Vec<anyhow::Result<()>> = stream::iter(per_player.into_iter().zip(seeds))
        .map(|((player, prompts), seed)| {
            let member = by_id.get(player).copied();
            async move {
                let member = member.with_context(|| format!("unknown player {player}"))?;
                let mut rng = StdRng::seed_from_u64(seed);
                for (prompt, decision) in prompts {
                    reanswer(member, prompt, decision, &mut rng, stats)
                        .await
                        .with_context(|| format!("{player} answering {prompt} again"))?;
                }
                Ok(())
            }
        })
        .buffer_unordered(CONCURRENT_GROUPS)
        .collect()
        .await;
    let failures: Vec<String> = outcomes
        .into_iter()
        .filter_map(|o| o.err().map(|e| format!("{e:#}")))
        .collect();
    fail_if_any("an answered prompt changed its answer", &failures)?;
    Ok(sample.len())
}

async fn reanswer(
    member: &Member,
    prompt: Uuid,
    decision: Decision,
    rng: &mut StdRng,
    stats: &Stats,
) -> anyhow::Result<()> {
    let verb = |d: Decision| match d {
        Decision::Accept => "accept",
        Decision::Reject => "reject",
    };
    let contrary = match decision {
        Decision::Accept => Decision::Reject,
        Decision::Reject => Decision::Accept,
    };
    let me = |rng: &mut StdRng| {
        let player = member.pick(rng).clone();
        async move {
            state_of(
                send(&player, Method::GET, "/v1/me", None, stats).await?,
                &player.id,
            )
        }
    };
    let before = me(rng).await?;
    let same = send(
        member.pick(rng),
        Method::POST,
        &format!("/v1/prompts/{prompt}/{}", verb(decision)),
        None,
        stats,
    )
    .await?;
    ensure!(
        same.status == StatusCode::OK,
        "the same answer ({}) again: {} {}",
        verb(decision),
        same.status,
        same.body
    );
    let other_way = send(
        member.pick(rng),
        Method::POST,
        &format!("/v1/prompts/{prompt}/{}", verb(contrary)),
        None,
        stats,
    )
    .await?;
    other_way
        .problem(409, ProblemCode::AlreadyAnswered)
        .with_context(|| {
            format!(
                "the contrary answer ({}) after {}",
                verb(contrary),
                verb(decision)
            )
        })?;
    let after = me(rng).await?;
    ensure!(
        essence(&before) == essence(&after),
        "answering again changed the state: {} → {}",
        brief(&before),
        brief(&after)
    );
    Ok(())
}
