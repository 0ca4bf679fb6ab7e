//! One storm from start to end: its world, every group in a conversation of its own, the groups playing (while a fault, if any, strikes the store), the feed drained, then every check and the report.

use std::{
    collections::HashSet,
    sync::{Arc, atomic::Ordering},
    time::Instant,
};

use anyhow::{Context, ensure};
use futures_util::{StreamExt, stream};
use rand::{SeedableRng, rngs::StdRng, seq::index};
use uuid::Uuid;

use super::{
    CONCURRENT_GROUPS, Config, FLIPS_PER_UNAVAILABLE, FULL_PER_TRIOS, IM_TIMEOUT_MS,
    INVITE_TTL_SECS,
    acknowledged::{check_acknowledged, check_messages},
    applied::{check_flip_records, read_feed},
    capacity::check_stored_modes,
    chatter::Chatter,
    checks::check_store_and_states,
    failover::{Fault, chat_again},
    flips::{FLIPPING_ONE_IN, Flipper},
    in_game::check_in_game,
    modes,
    outage::Outages,
    play::play,
    players::{GroupReport, Member, Stats},
    reanswer::check_answers_are_final,
    settle::{Sentinel, feed_lags, wait_offline_players_out},
    soak,
    summary::Summary,
};
use crate::helpers::{Player, WorldOptions, invariants::fail_if_any, spawn_world_with};

/// Runs the storm `config` describes; a failure names the seed to replay it with.
pub(super) async fn storm(config: Config) -> anyhow::Result<()> {
    let seed = config.seed;
    eprintln!("storm: seed {seed} (replay with STORM_SEED={seed})");
    run(config)
        .await
        .with_context(|| format!("storm with seed {seed}: rerun with STORM_SEED={seed}"))
}

async fn run(config: Config) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut options = WorldOptions {
        invite_ttl_secs: INVITE_TTL_SECS,
        store: config.store,
        ..WorldOptions::default()
    }
    .game_var("IM_TIMEOUT_MS", IM_TIMEOUT_MS)
    .game_var("GAME_MODES", modes::game_modes());
    if let Some(fault) = config.fault {
        options = fault.options(options);
    }
    let mut world = spawn_world_with(options).await?;
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

    // Everyone available, each group in one conversation of its own (in the groups' order).
    let setup: Vec<anyhow::Result<Uuid>> = stream::iter(&groups)
        .map(|group| async {
            let people: Vec<&Player> = group.iter().map(|m| &m.primary).collect();
            world.chatting(&people).await
        })
        .buffered(CONCURRENT_GROUPS)
        .collect()
        .await;
    let conversations = setup.into_iter().collect::<anyhow::Result<Vec<Uuid>>>()?;
    let sentinel = Sentinel::new(&world, &other).await?;
    let setup_time = started.elapsed();

    // The groups whose member flips, chosen by the seed.
    let flipping: HashSet<usize> = if config.flips {
        let mut pick = StdRng::seed_from_u64(config.seed.rotate_left(29));
        let flipping = groups.len().div_ceil(FLIPPING_ONE_IN);
        index::sample(&mut pick, groups.len(), flipping)
            .into_iter()
            .collect()
    } else {
        HashSet::new()
    };
    let stats = Arc::new(Stats {
        outages: match config.fault {
            Some(Fault::Chaos) => Outages::tolerating_crashes(),
            Some(_) => Outages::tolerating(),
            None => Outages::default(),
        },
        ..Stats::default()
    });
    let total = groups.len();
    let storm_started = Instant::now();
    let until = config.play_for.map(|play_for| storm_started + play_for);
    let playing = tokio::spawn(play_all(
        groups,
        conversations.clone(),
        config.clone(),
        until,
        flipping.clone(),
        Arc::clone(&stats),
    ));
    let (struck, chaos) = match (config.fault, until) {
        (Some(Fault::Chaos), Some(until)) => {
            match soak::unleash(&mut world, &other, &stats, until, config.seed).await {
                Ok(chaos) => (None, Some(chaos)),
                Err(err) => {
                    playing.abort();
                    return Err(err);
                }
            }
        }
        (Some(fault), _) => (Some(fault.strike(&mut world, &stats, total).await?), None),
        (None, _) => (None, None),
    };
    let (groups, outcomes) = playing.await.context("joining the storm's groups")?;
    let storm_time = storm_started.elapsed();
    let mut reports = Vec::new();
    let mut failures = Vec::new();
    for outcome in outcomes {
        match outcome {
            Ok(report) => reports.push(report),
            Err(err) => failures.push(format!("{err:#}")),
        }
    }
    let mut report = GroupReport::merge(reports);
    if let Some(struck) = &struck {
        struck.print(&stats, &report.acknowledged);
    }
    if let Some(chaos) = &chaos {
        chaos.print(&stats);
    }
    if !failures.is_empty() && config.chat {
        // What a broken rule may come with: were acknowledged messages lost too?
        let members: Vec<&Member> = groups.iter().flatten().collect();
        match check_messages(&report.acknowledged, &members).await {
            Ok((_, messages)) => eprintln!("storm: all {messages} acknowledged messages kept"),
            Err(err) => eprintln!("storm: {err:#}"),
        }
    }
    fail_if_any("groups broke a rule while playing", &failures)?;
    if config.fault.is_some() {
        let (first, conversation) = groups
            .first()
            .zip(conversations.first())
            .context("no group")?;
        let member = first.first().context("an empty group")?;
        let acknowledged = &mut report.acknowledged;
        let recovered = match &struck {
            Some(struck) => {
                struck
                    .wait_for_chat(&world, member, *conversation, &stats, acknowledged)
                    .await?
            }
            None => chat_again(&world, member, *conversation, &stats, acknowledged).await?,
        };
        eprintln!("failover: after the storm the IM service took a message within {recovered:.1?}");
    }
    // The IM service is up and answering all along: nobody may be sent off solo as if it were
    // down (that would also leave the storm without any race to check). A failing-over store
    // may make it refuse the game service's partners calls for a moment.
    ensure!(
        stats.degraded() == 0 || config.fault.is_some(),
        "{} connects got a degraded solo session (`im_unavailable`) while the IM service was up \
         (is it refusing the game service's calls, e.g. 429 rate-limited?): {:?}\nthe game \
         service's last lines:\n{}",
        stats.degraded(),
        stats.connects.lock().map(|c| c.clone()).unwrap_or_default(),
        world.game_log_tail()
    );

    // The game catches up with the feed before anything is compared.
    let settle_started = Instant::now();
    for (conversation, group) in conversations.iter().zip(&groups) {
        let opener = group.first().context("an empty group")?;
        report.acknowledged.conversation(*conversation, opener.id());
    }
    let drained = sentinel
        .drain_feed(&mut report)
        .await
        .with_context(|| format!("the game services' last lines:\n{}", world.game_log_tails()))?;
    let mut members: Vec<&Member> = groups.iter().flatten().collect();
    members.extend([&sentinel.host, &sentinel.guest]);
    let (offline_at_end, invited_offline) = wait_offline_players_out(&members, &report).await?;
    let settle_time = settle_started.elapsed();

    let checks_started = Instant::now();
    let (records, states) = check_store_and_states(&world, &members, &report, &stats).await?;
    let acknowledged = &report.acknowledged;
    let found = check_acknowledged(
        acknowledged,
        &members,
        &report.left_sessions,
        &records,
        &states,
    )
    .await
    .with_context(|| format!("the game services' last lines:\n{}", world.game_log_tails()))?;
    let tally = check_stored_modes(&records, &report)?;
    let feed = read_feed(&world).await?;
    let flipped = check_flip_records(&records, &report, &feed)?;
    let (lags, max_lag) = feed_lags(&members, &report).await?;
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
    // What the storm did is printed before it is required to have done enough.
    Summary {
        config: &config,
        groups: groups.len(),
        players,
        flipping: flipping.len(),
        stats: &stats,
        report: &report,
        tally: &tally,
        flipped: &flipped,
        acknowledged: &found,
        reanswered,
        offline_at_end,
        invited_offline,
        lags,
        max_lag,
        drained,
        started,
        setup_time,
        storm_time,
        settle_time,
        checks_started,
    }
    .print();

    let groups_played = groups.len();
    let mutual = stats.mutual_checked.load(Ordering::Relaxed);
    let contrary = stats.contrary_races.load(Ordering::Relaxed);
    let refused_full = stats.refused_full.load(Ordering::Relaxed);
    // A storm that raced nothing proves nothing.
    ensure!(
        mutual * 20 >= groups_played && contrary * 50 >= groups_played,
        "too few races to prove anything: {mutual} mutual accepts and {contrary} contrary \
         answers among {groups_played} groups"
    );
    // A storm that never fills a duo proves nothing about the cap. Only the cancellations
    // are counted on: an answer that races a lobby filling is refused `full` a couple of
    // times a storm at most (one storm in CI saw 1), and that refusal has its own
    // deterministic test (`store_contract::modes::a_full_session_cancels_…`).
    ensure!(
        tally.cancelled_full * FULL_PER_TRIOS >= config.trios,
        "too few `full` outcomes to prove the cap: {} prompts cancelled `full` (and \
         {refused_full} answers refused `full`) among {} trios",
        tally.cancelled_full,
        config.trios
    );
    // A storm that recorded little acknowledged proves nothing about keeping it.
    // A soak's groups play as many rounds as its minutes allow.
    let rounds = match config.play_for {
        Some(_) => stats.rounds_played.load(Ordering::Relaxed) / groups_played.max(1),
        None => config.rounds,
    };
    acknowledged.ensure_enough(groups_played, rounds, config.chat)?;
    if let Some(struck) = &struck {
        struck.ensure_enough(&stats, acknowledged)?;
    }
    if let Some(chaos) = &chaos {
        chaos.ensure_enough()?;
    }

    // A storm whose flips never closed anything proves nothing about them.
    let went_offline = stats.went_offline.load(Ordering::Relaxed);
    let storm_unavailable = flipped.cancelled_unavailable.saturating_sub(1);
    ensure!(
        !config.flips
            || (went_offline > 0
                && storm_unavailable > 0
                && storm_unavailable * FLIPS_PER_UNAVAILABLE >= went_offline),
        "too few `unavailable` outcomes to prove the flips: {storm_unavailable} prompts \
         cancelled `unavailable` (besides the sentinel's) for {went_offline} offline flips"
    );

    // Last, as it waits: the chat knows who plays.
    let (in_game, no_activity) = check_in_game(&world, &states, &mut rng)
        .await
        .with_context(|| format!("the game services' last lines:\n{}", world.game_log_tails()))?;
    eprintln!(
        "storm: in game: {in_game} players seen `in_game` in their session, {no_activity} \
         without activity"
    );

    Ok(())
}

/// Every group plays its rounds, [`CONCURRENT_GROUPS`] at a time, in a task of its own (so
/// that a fault can strike the store meanwhile); hands the groups back with their reports.
async fn play_all(
    groups: Vec<Vec<Member>>,
    conversations: Vec<Uuid>,
    config: Config,
    until: Option<Instant>,
    flipping: HashSet<usize>,
    stats: Arc<Stats>,
) -> (Vec<Vec<Member>>, Vec<anyhow::Result<GroupReport>>) {
    let (config, flipping, stats) = (&config, &flipping, &*stats);
    // Made up front, each waiting for its turn in the stream: a spawned task must be `Send`,
    // which the compiler cannot prove of a stream whose closure makes futures of borrowed
    // groups.
    let plays: Vec<_> = groups
        .iter()
        .zip(conversations)
        .enumerate()
        .map(|(g, (group, conversation))| {
            let mut rng =
                StdRng::seed_from_u64(config.seed ^ (g as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let flipper = flipping
                .contains(&g)
                .then(|| Flipper::plan(group.len(), config.rounds, &mut rng));
            let chatter = config.chat.then(|| Chatter::new(conversation));
            async move {
                let played = play(
                    group,
                    config.rounds,
                    until,
                    flipper,
                    chatter,
                    &mut rng,
                    stats,
                )
                .await
                .with_context(|| format!("group g{g}"));
                stats.groups_done.fetch_add(1, Ordering::Relaxed);
                played
            }
        })
        .collect();
    let outcomes = stream::iter(plays)
        .buffer_unordered(CONCURRENT_GROUPS)
        .collect()
        .await;
    (groups, outcomes)
}
