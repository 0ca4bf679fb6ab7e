//! Faults while flows are under way: Redis killed or paused (or one master of a cluster
//! paused), the IM service slow, dead or failing (and the circuit breaker in front of it), a
//! replica SIGKILLed, SIGTERM.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use shared_types::game::{PlayerState, Prompt, PromptKind, Reason, Session, SessionState};

use crate::helpers::{
    Player, Replica, Reply, Service, SseEvent, StateExt, StoreChoice, StreamEnd, StubIm, StubMode,
    TestWorld, WorldOptions, churn::Churn, essence, eventually, invariants::check_store, sorted,
    spawn_world, spawn_world_with,
};

/// With the store unreachable, an answer (a 503) still comes this fast: the store client's
/// response timeout (2 s) plus slack for a loaded machine.
const OUTAGE_ANSWER_LIMIT: Duration = Duration::from_secs(5);
/// How long the services get to notice that Redis is back.
const RECOVERY_LIMIT: Duration = Duration::from_secs(15);
/// Beyond `IM_TIMEOUT_MS`: scheduling, a debug build, a loaded machine.
const IM_MARGIN: Duration = Duration::from_millis(600);
/// Silence that means "nothing more is coming".
const QUIET: Duration = Duration::from_millis(800);

/// Players caught in the middle of every kind of flow.
struct MidFlow {
    /// Hosts a waiting lobby…
    host: Player,
    lobby: Session,
    /// …to which this invitee holds a join prompt.
    invitee: Player,
    join: Prompt,
    /// Holds an invite prompt naming `partner`, who has not connected yet.
    inviter: Player,
    invite: Prompt,
    partner: Player,
    /// Both in one active session.
    playing: (Player, Player),
    session: Session,
}

impl MidFlow {
    async fn start(world: &TestWorld, tag: &str) -> anyhow::Result<Self> {
        let p = |name: &str| world.player(&format!("{tag}-{name}"));
        let (host, invitee, inviter, partner) =
            (p("host")?, p("invitee")?, p("inviter")?, p("partner")?);
        let (left, right) = (p("left")?, p("right")?);
        world.chatting(&[&host, &invitee]).await?;
        world.chatting(&[&inviter, &partner]).await?;
        world.chatting(&[&left, &right]).await?;

        let first = host.connect().await?.open_prompt()?.clone();
        let lobby = host.accept(first.id, None).await?.live_session()?.clone();
        let join = invitee.connect().await?.open_prompt()?.clone();
        ensure!(join.kind == PromptKind::Join, "{join:#?}");
        let invite = inviter.connect().await?.open_prompt()?.clone();
        ensure!(invite.kind == PromptKind::Invite, "{invite:#?}");
        let opening = left.connect().await?.open_prompt()?.clone();
        left.accept(opening.id, None).await?;
        let joining = right.connect().await?.open_prompt()?.clone();
        let session = right
            .accept(joining.id, None)
            .await?
            .live_session()?
            .clone();
        ensure!(session.state == SessionState::Active, "{session:#?}");
        Ok(Self {
            host,
            lobby,
            invitee,
            join,
            inviter,
            invite,
            partner,
            playing: (left, right),
            session,
        })
    }

    fn everyone(&self) -> [&Player; 6] {
        [
            &self.host,
            &self.invitee,
            &self.inviter,
            &self.partner,
            &self.playing.0,
            &self.playing.1,
        ]
    }

    async fn essences(&self) -> anyhow::Result<Vec<String>> {
        let mut all = Vec::new();
        for player in self.everyone() {
            all.push(format!("{}: {}", player.id, essence(&player.me().await?)));
        }
        Ok(all)
    }

    /// Each interrupted flow finishes: the invitee joins, the inviter's partner joins the
    /// inviter's new lobby, one of the playing pair leaves.
    async fn finish(&self) -> anyhow::Result<()> {
        let joined = self.invitee.accept(self.join.id, None).await?;
        let session = joined.live_session()?;
        ensure!(
            session.id == self.lobby.id
                && session.state == SessionState::Active
                && sorted(&session.players) == sorted_names(&[&self.host, &self.invitee]),
            "the invitee joins the host's lobby: {joined:#?}"
        );
        let lobby = self
            .inviter
            .accept(self.invite.id, None)
            .await?
            .live_session()?
            .clone();
        let join = self.partner.connect().await?.open_prompt()?.clone();
        ensure!(join.session_id == Some(lobby.id), "{join:#?}");
        let together = self.partner.accept(join.id, None).await?;
        ensure!(
            together.live_session()?.state == SessionState::Active,
            "{together:#?}"
        );
        let left = self.playing.0.leave(self.session.id).await?;
        ensure!(left.session.is_none() && left.prompt.is_none(), "{left:#?}");
        let staying = self.playing.1.me().await?;
        ensure!(
            staying.live_session()?.id == self.session.id,
            "the other player stays: {staying:#?}"
        );
        Ok(())
    }
}

fn sorted_names(players: &[&Player]) -> Vec<String> {
    let mut names: Vec<String> = players.iter().map(|p| p.id.clone()).collect();
    names.sort_unstable();
    names
}

/// Chatting pairs for background churn, half of them reaching the game through `replica`.
async fn churn_players(
    world: &TestWorld,
    tag: &str,
    pairs: usize,
    replica: Option<&Replica>,
) -> anyhow::Result<Vec<Player>> {
    let mut players = Vec::new();
    for i in 0..pairs {
        let a = world.player(&format!("{tag}-{i}a"))?;
        let b = world.player(&format!("{tag}-{i}b"))?;
        world.chatting(&[&a, &b]).await?;
        match replica {
            Some(replica) if i % 2 == 1 => players.extend([a.via(replica), b.via(replica)]),
            _ => players.extend([a, b]),
        }
    }
    Ok(players)
}

/// A 503 problem+json `store_unavailable` with `Retry-After`, answered promptly.
fn assert_store_unavailable(reply: &Reply) -> anyhow::Result<()> {
    reply.store_unavailable_within(OUTAGE_ANSWER_LIMIT)
}

/// Every next step of the interrupted flows, through both replicas, all at once, during an
/// outage.
impl MidFlow {
    /// The interrupted flows' next steps, all at once: the invitee joins (via
    /// `other`), the inviter accepts, one of the playing pair leaves (via `other`).
    fn send_next_steps(
        &self,
        other: &Replica,
    ) -> tokio::task::JoinHandle<anyhow::Result<[Reply; 3]>> {
        let steps = [
            (
                self.invitee.via(other),
                format!("/v1/prompts/{}/accept", self.join.id),
            ),
            (
                self.inviter.clone(),
                format!("/v1/prompts/{}/accept", self.invite.id),
            ),
            (
                self.playing.0.via(other),
                format!("/v1/sessions/{}/leave", self.session.id),
            ),
        ];
        tokio::spawn(async move {
            let [join, invite, leave] = steps
                .each_ref()
                .map(|(player, path)| player.raw(Service::Game, Method::POST, path, None));
            let (join, invite, leave) = tokio::join!(join, invite, leave);
            Ok([join?, invite?, leave?])
        })
    }
}

/// A step sent while the store was stuck either went through or got a proper 503.
fn assert_done_or_store_unavailable(reply: &Reply, when: &str) -> anyhow::Result<()> {
    ensure!(
        reply.status == StatusCode::OK || reply.status == StatusCode::SERVICE_UNAVAILABLE,
        "{} {} {when}: {} {}",
        reply.method,
        reply.path,
        reply.status,
        reply.body
    );
    if reply.status == StatusCode::SERVICE_UNAVAILABLE {
        assert_store_unavailable(reply)?;
    }
    Ok(())
}

async fn steps_during_outage(flow: &MidFlow, other: &Replica) -> anyhow::Result<Vec<Reply>> {
    let mut steps: Vec<(Player, Method, String)> = Vec::new();
    for via_other in [false, true] {
        let on = |p: &Player| if via_other { p.via(other) } else { p.clone() };
        steps.extend([
            (
                on(&flow.invitee),
                Method::POST,
                format!("/v1/prompts/{}/accept", flow.join.id),
            ),
            (
                on(&flow.inviter),
                Method::POST,
                format!("/v1/prompts/{}/accept", flow.invite.id),
            ),
            (
                on(&flow.invitee),
                Method::POST,
                format!("/v1/prompts/{}/reject", flow.join.id),
            ),
            (on(&flow.partner), Method::POST, "/v1/connect".to_owned()),
            (
                on(&flow.playing.0),
                Method::POST,
                format!("/v1/sessions/{}/leave", flow.session.id),
            ),
            (
                on(&flow.host),
                Method::POST,
                format!("/v1/sessions/{}/leave", flow.lobby.id),
            ),
            (on(&flow.host), Method::GET, "/v1/me".to_owned()),
            (
                on(&flow.host),
                Method::GET,
                format!("/v1/sessions/{}", flow.lobby.id),
            ),
            (on(&flow.host), Method::GET, "/v1/events".to_owned()),
        ]);
    }
    join_all(
        steps
            .iter()
            .map(|(player, method, path)| player.raw(Service::Game, method.clone(), path, None)),
    )
    .await
    .into_iter()
    .collect()
}

/// `/healthz` of every process answers (fast) whatever the store does.
async fn assert_alive(world: &TestWorld, other: &Replica, limit: Duration) -> anyhow::Result<()> {
    let probe = world.player("health-probe")?;
    for (name, reply) in [
        (
            "game",
            probe
                .raw(Service::Game, Method::GET, "/healthz", None)
                .await?,
        ),
        (
            "replica",
            probe
                .via(other)
                .raw(Service::Game, Method::GET, "/healthz", None)
                .await?,
        ),
        (
            "im",
            probe
                .raw(Service::Im, Method::GET, "/healthz", None)
                .await?,
        ),
    ] {
        ensure!(
            reply.status == StatusCode::OK && reply.elapsed < limit,
            "{name} /healthz answered {} in {:?}: {}",
            reply.status,
            reply.elapsed,
            reply.body
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_killed_mid_flow_requests_get_503_nothing_is_half_written_and_service_resumes_by_itself()
-> anyhow::Result<()> {
    // Durable: the restarted Redis holds exactly what it acknowledged, so "nothing half
    // written" can be checked after the outage. A server of its own, even when the suite
    // runs on a cluster.
    let mut world = spawn_world_with(WorldOptions {
        store: StoreChoice::DurableRedis,
        ..WorldOptions::default()
    })
    .await?;
    let other = world.spawn_game_replica().await?;
    let flow = MidFlow::start(&world, "mid").await?;
    let before = flow.essences().await?;
    let churn = Churn::start(churn_players(&world, "churn", 8, Some(&other)).await?);
    ensure!(
        churn.wait_for_successes(50, Duration::from_secs(10)).await,
        "the background players never got going"
    );

    world.redis()?.kill();
    let killed = Instant::now();
    for attempt in 0..2 {
        for reply in steps_during_outage(&flow, &other).await? {
            assert_store_unavailable(&reply).with_context(|| format!("outage, pass {attempt}"))?;
        }
        let presence = flow
            .host
            .raw(
                Service::Im,
                Method::PUT,
                "/v1/presence",
                Some(r#"{"status":"busy"}"#),
            )
            .await?;
        assert_store_unavailable(&presence).context("the IM service")?;
        assert_alive(&world, &other, Duration::from_secs(1)).await?;
        for replica in [None, Some(&other)] {
            let probe = world.player("ready-probe")?;
            let probe = replica.map_or(probe.clone(), |r| probe.via(r));
            let ready = probe
                .raw(Service::Game, Method::GET, "/readyz", None)
                .await?;
            ensure!(
                ready.status == StatusCode::SERVICE_UNAVAILABLE,
                "/readyz during the outage: {ready:?}"
            );
            // It names the failing check, without the internal error's text.
            let report: serde_json::Value = ready.json()?;
            ensure!(
                report["checks"]["store"] == "unavailable"
                    && report["checks"].as_object().is_some_and(|c| c.len() == 1),
                "/readyz names the failing check and nothing else: {report}"
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    let outage_checked = killed.elapsed();
    tokio::task::block_in_place(|| world.redis()?.restart())?;
    let restarted = Instant::now();
    // Nobody restarts the services: they reconnect by themselves.
    ensure!(
        churn.wait_for_successes(100, RECOVERY_LIMIT).await,
        "the game service did not resume after Redis came back"
    );
    let recovered = restarted.elapsed();
    let report = churn.stop().await;
    report.ensure_clean()?;
    ensure!(
        report.statuses.get(&503).copied().unwrap_or_default() > 0,
        "the background players never saw the outage: {:?}",
        report.statuses
    );

    let after = flow.essences().await?;
    ensure!(
        before == after,
        "the outage changed states:\nbefore {before:#?}\nafter {after:#?}"
    );
    check_store(&world).await?;
    flow.finish().await?;
    check_store(&world).await?;
    ensure!(
        world.panics() == 0,
        "a service panicked:\n{}",
        world.game_log_tail()
    );
    ensure!(world.all_running(), "a service process died");
    eprintln!(
        "redis killed: outage checked in {outage_checked:.1?}, recovered {recovered:.1?} after \
         the restart; background answers {:?}",
        report.statuses
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_paused_mid_flow_requests_wait_or_get_503_and_interrupted_players_finish_their_flows()
-> anyhow::Result<()> {
    const PAUSE: Duration = Duration::from_secs(3);
    // Pauses Redis itself: a server of its own, even when the suite runs on a cluster.
    let mut world = spawn_world_with(WorldOptions {
        store: StoreChoice::PrivateRedis,
        ..WorldOptions::default()
    })
    .await?;
    let other = world.spawn_game_replica().await?;
    let flow = MidFlow::start(&world, "mid").await?;
    let churn = Churn::start(churn_players(&world, "churn", 8, Some(&other)).await?);
    ensure!(
        churn.wait_for_successes(50, Duration::from_secs(10)).await,
        "the background players never got going"
    );

    world.redis()?.pause()?;
    let paused = Instant::now();
    // The interrupted flows' next steps, sent while Redis is frozen.
    let in_flight = flow.send_next_steps(&other);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Liveness does not hang on the store.
    assert_alive(&world, &other, Duration::from_secs(1))
        .await
        .context("liveness while Redis is paused")?;
    tokio::time::sleep(PAUSE.saturating_sub(paused.elapsed())).await;
    world.redis()?.resume()?;
    let resumed_after = paused.elapsed();
    let [join, invite, leave] = in_flight
        .await
        .context("joining the requests in flight")??;
    eprintln!(
        "redis paused: in flight during the pause: {} in {:.1?}, {} in {:.1?}, {} in {:.1?}",
        join.status, join.elapsed, invite.status, invite.elapsed, leave.status, leave.elapsed
    );
    for reply in [join, invite, leave] {
        assert_done_or_store_unavailable(&reply, "during the pause")?;
    }

    ensure!(
        churn.wait_for_successes(100, RECOVERY_LIMIT).await,
        "the game service did not resume after Redis woke up"
    );
    // Whatever the answers during the pause were, answering again finishes the flows: an
    // answer applied before its 503 is answered the same way again, harmlessly.
    flow.finish().await?;
    let report = churn.stop().await;
    report.ensure_clean()?;
    check_store(&world).await?;
    ensure!(
        world.panics() == 0,
        "a service panicked:\n{}",
        world.game_log_tail()
    );
    eprintln!(
        "redis paused: resumed after {resumed_after:.1?}; background answers {:?}",
        report.statuses
    );
    Ok(())
}

/// Connects (which locks) every player whose slot still holds a two-phase commit's intent, so
/// that the commit is finished; returns those players.
async fn finish_interrupted_commits(world: &TestWorld) -> anyhow::Result<Vec<String>> {
    let game_prefix = world.game_key_prefix();
    let keys = world.stored_keys().await?;
    let player_key = |name: &str| -> Option<(String, String)> {
        let rest = name.strip_prefix(&game_prefix)?.strip_prefix(":{p.")?;
        let (player, family) = rest.split_once("}:")?;
        Some((player.to_owned(), family.to_owned()))
    };
    let mut waiting: Vec<String> = keys
        .iter()
        .filter_map(|key| player_key(&key.name))
        .filter_map(|(player, family)| (family == "intent").then_some(player))
        .collect();
    waiting.sort_unstable();
    waiting.dedup();
    if !waiting.is_empty() {
        // Typically the cut-off writer's own locks, which it could not release during the
        // outage: nobody locks these players before that lease runs out.
        let locks: Vec<String> = keys
            .iter()
            .filter(|key| {
                player_key(&key.name)
                    .is_some_and(|(player, family)| family == "lock" && waiting.contains(&player))
            })
            .map(|key| format!("{} ({} ms left)", key.name, key.pttl_ms))
            .collect();
        eprintln!(
            "commits left for the next lock of {waiting:?}; their locks: {locks:?}; the game \
             services' last lines:\n{}",
            world.game_log_tails()
        );
    }
    for id in &waiting {
        let player = world.player(id)?;
        eventually(
            &format!("{id} connecting after the outage"),
            RECOVERY_LIMIT,
            || async {
                let reply = player
                    .raw(Service::Game, Method::POST, "/v1/connect", None)
                    .await?;
                Ok((reply.status == StatusCode::OK).then_some(()))
            },
        )
        .await?;
    }
    Ok(waiting)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_cluster_master_paused_mid_flow_requests_wait_or_get_503_and_interrupted_players_finish_their_flows()
-> anyhow::Result<()> {
    // Longer than `cluster-node-timeout` (2 s): the other masters may declare it failed.
    const PAUSE: Duration = Duration::from_secs(3);
    const PAUSED_NODE: usize = 0;
    // A cluster of its own, whatever E2E_REDIS says: one of its masters is frozen.
    let mut world = spawn_world_with(WorldOptions {
        store: StoreChoice::PrivateCluster,
        ..WorldOptions::default()
    })
    .await?;
    let other = world.spawn_game_replica().await?;
    let flow = MidFlow::start(&world, "mid").await?;
    let churn = Churn::start(churn_players(&world, "churn", 8, Some(&other)).await?);
    ensure!(
        churn.wait_for_successes(50, Duration::from_secs(10)).await,
        "the background players never got going"
    );

    world.cluster()?.pause(PAUSED_NODE)?;
    let paused = Instant::now();
    let in_flight = flow.send_next_steps(&other);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_alive(&world, &other, Duration::from_secs(1))
        .await
        .context("liveness while a master is paused")?;
    tokio::time::sleep(PAUSE.saturating_sub(paused.elapsed())).await;
    world.cluster()?.resume(PAUSED_NODE)?;
    let resumed_after = paused.elapsed();
    let [join, invite, leave] = in_flight
        .await
        .context("joining the requests in flight")??;
    eprintln!(
        "cluster master paused: in flight during the pause: {} in {:.1?}, {} in {:.1?}, {} in \
         {:.1?}",
        join.status, join.elapsed, invite.status, invite.elapsed, leave.status, leave.elapsed
    );
    for reply in [join, invite, leave] {
        assert_done_or_store_unavailable(&reply, "during the pause")?;
    }
    let healed = eventually(
        "the cluster reporting cluster_state:ok again",
        RECOVERY_LIMIT,
        || async { Ok(world.cluster()?.is_ok().then_some(())) },
    )
    .await;
    ensure!(
        churn.wait_for_successes(100, RECOVERY_LIMIT).await,
        "the game service did not resume after the master woke up (cluster healed: {healed:?})"
    );
    flow.finish().await?;
    let report = churn.stop().await;
    report.ensure_clean()?;
    // A two-phase commit the outage cut off after it was decided (its writer answered 503) is
    // finished by whoever next locks one of its players (README, "Redis Cluster"). The churn
    // stopped, so some may still wait for that: lock each such player once, then nothing may
    // be left unfinished.
    let waiting = finish_interrupted_commits(&world).await?;
    check_store(&world).await?;
    ensure!(
        world.panics() == 0,
        "a service panicked:\n{}",
        world.game_log_tail()
    );
    eprintln!(
        "cluster master paused: resumed after {resumed_after:.1?}; background answers {:?}; \
         commits left for the next lock: {waiting:?}",
        report.statuses
    );
    Ok(())
}

// ---- the IM service slow, dead or failing -------------------------------------------------

/// `IM_TIMEOUT_MS` for the IM scenarios: short, so the suite stays fast.
const IM_TIMEOUT_MS: u64 = 400;

fn im_timeout() -> Duration {
    Duration::from_millis(IM_TIMEOUT_MS)
}

/// Connects, expecting a degraded solo session (`im_unavailable`); returns how long it took.
async fn connect_degraded(player: &Player) -> anyhow::Result<Duration> {
    let reply = player
        .raw(Service::Game, Method::POST, "/v1/connect", None)
        .await?;
    let elapsed = reply.elapsed;
    let state: PlayerState = reply.ok()?.json()?;
    state.solo(Reason::ImUnavailable)?;
    ensure!(
        state.degraded,
        "{}: not marked degraded: {state:#?}",
        player.id
    );
    Ok(elapsed)
}

#[tokio::test]
async fn an_im_service_slower_than_im_timeout_ms_gives_a_degraded_solo_session_in_about_that_time()
-> anyhow::Result<()> {
    let mut world =
        spawn_world_with(WorldOptions::default().game_var("IM_TIMEOUT_MS", IM_TIMEOUT_MS)).await?;
    world.kill_im();
    let stub = StubIm::start(
        world.im_port()?,
        StubMode::Answer {
            delay: im_timeout() * 5,
        },
    )
    .await?;
    stub.talk("alice", "bob");
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;

    let elapsed = connect_degraded(&alice).await?;

    ensure!(
        stub.requests() == 1,
        "the game service asked the IM service {} times",
        stub.requests()
    );
    ensure!(
        elapsed >= im_timeout() - Duration::from_millis(50),
        "connect answered in {elapsed:?}, before IM_TIMEOUT_MS ({IM_TIMEOUT_MS} ms): it cannot \
         have waited for the IM service"
    );
    ensure!(
        elapsed < im_timeout() + IM_MARGIN,
        "connect took {elapsed:?} with IM_TIMEOUT_MS={IM_TIMEOUT_MS}"
    );
    ensure!(
        alice.me().await?.degraded,
        "the state stays marked degraded"
    );

    // The same IM service, fast again: partners are seen again.
    stub.set_mode(StubMode::Answer {
        delay: Duration::ZERO,
    });
    let state = bob.connect().await?;
    let prompt = state.open_prompt()?;
    ensure!(
        prompt.kind == PromptKind::Invite && sorted(&prompt.candidates) == ["alice"],
        "{state:#?}"
    );
    ensure!(!state.degraded, "{state:#?}");
    stub.stop().await;
    Ok(())
}

#[tokio::test]
async fn with_the_im_service_killed_connect_answers_within_im_timeout_ms_with_a_degraded_solo_session()
-> anyhow::Result<()> {
    let mut world =
        spawn_world_with(WorldOptions::default().game_var("IM_TIMEOUT_MS", IM_TIMEOUT_MS)).await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    world.chatting(&[&alice, &bob]).await?;
    world.kill_im();

    for player in [&alice, &bob] {
        let elapsed = connect_degraded(player).await?;
        ensure!(
            elapsed < im_timeout() + IM_MARGIN,
            "{}: connect took {elapsed:?} with the IM service dead and IM_TIMEOUT_MS={IM_TIMEOUT_MS}",
            player.id
        );
    }
    Ok(())
}

#[tokio::test]
async fn the_circuit_breaker_stops_calling_a_failing_im_service_then_lets_one_probe_through_and_closes_when_it_is_back()
-> anyhow::Result<()> {
    const THRESHOLD: usize = 3;
    const COOL_DOWN: Duration = Duration::from_millis(1500);
    let mut world = spawn_world_with(
        WorldOptions::default()
            .game_var("IM_TIMEOUT_MS", 300)
            .game_var("IM_BREAKER_THRESHOLD", THRESHOLD)
            .game_var("IM_BREAKER_COOLDOWN_MS", COOL_DOWN.as_millis()),
    )
    .await?;
    world.kill_im();
    let stub = StubIm::start(world.im_port()?, StubMode::Fail).await?;
    let player = |i: usize| world.player(&format!("p{i}"));

    // Failures up to the threshold: each connect asks the IM service.
    for i in 0..THRESHOLD {
        connect_degraded(&player(i)?).await?;
        ensure!(
            stub.requests() == i + 1,
            "failure {}: the IM service got {} requests",
            i + 1,
            stub.requests()
        );
    }
    let opened = Instant::now();

    // Open: connects go solo without asking.
    for i in THRESHOLD..THRESHOLD + 5 {
        connect_degraded(&player(i)?).await?;
        ensure!(
            stub.requests() == THRESHOLD,
            "with the breaker open, connect {i} still called the IM service ({} requests)",
            stub.requests()
        );
    }
    ensure!(
        opened.elapsed() < COOL_DOWN,
        "the machine is too slow for this scenario: the cool-down passed during it"
    );

    // After the cool-down one probe goes out, however many players connect at that moment.
    tokio::time::sleep((COOL_DOWN + Duration::from_millis(200)).saturating_sub(opened.elapsed()))
        .await;
    stub.set_mode(StubMode::Hang);
    let crowd = [player(20)?, player(21)?, player(22)?, player(23)?];
    let answers = join_all(crowd.iter().map(connect_degraded)).await;
    for answer in answers {
        answer?;
    }
    ensure!(
        stub.requests() == THRESHOLD + 1,
        "after the cool-down, 4 players connecting at once sent {} probes (one expected)",
        stub.requests() - THRESHOLD
    );
    let reopened = Instant::now();
    // The probe failed: open again, no call.
    connect_degraded(&player(30)?).await?;
    ensure!(
        stub.requests() == THRESHOLD + 1,
        "a failed probe opens the breaker again, yet connect called the IM service"
    );

    // The IM service is healthy again: the next probe closes the breaker, partners are back.
    stub.set_mode(StubMode::Answer {
        delay: Duration::ZERO,
    });
    stub.talk("alice", "bob");
    tokio::time::sleep((COOL_DOWN + Duration::from_millis(200)).saturating_sub(reopened.elapsed()))
        .await;
    let alice = world.player("alice")?.connect().await?;
    let prompt = alice.open_prompt()?;
    ensure!(
        prompt.kind == PromptKind::Invite
            && sorted(&prompt.candidates) == ["bob"]
            && !alice.degraded,
        "the probe's answer is used: {alice:#?}"
    );
    ensure!(
        stub.requests() == THRESHOLD + 2,
        "the probe reached the IM service"
    );
    let bob = world.player("bob")?.connect().await?;
    ensure!(
        bob.open_prompt()?.kind == PromptKind::Invite && !bob.degraded,
        "closed again: partners for everyone: {bob:#?}"
    );
    ensure!(
        stub.requests() == THRESHOLD + 3,
        "closed again: every connect asks the IM service"
    );
    stub.stop().await;
    Ok(())
}

// ---- game-service processes dying -----------------------------------------------------------

/// Everything after `last_id`, as a full replay from the start has it.
fn after<'a>(all: &'a [SseEvent], last_id: &str) -> anyhow::Result<&'a [SseEvent]> {
    let at = all
        .iter()
        .position(|e| e.id.as_deref() == Some(last_id))
        .with_context(|| format!("{last_id} is not in the replay {all:#?}"))?;
    Ok(&all[at + 1..])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_replica_loses_nothing_and_its_clients_resume_on_the_other_with_every_missed_event()
-> anyhow::Result<()> {
    let mut world = spawn_world().await?;
    let doomed = world.spawn_game_replica().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    let carol = world.player("carol")?;
    world.chatting(&[&alice, &bob, &carol]).await?;

    // Alice hosts a lobby for Bob and Carol, Bob holds a join prompt: all through the doomed
    // replica, which also holds both their event streams.
    let mut alice_stream = alice.via(&doomed).events(None).await?;
    let mut bob_stream = bob.via(&doomed).events(None).await?;
    let invite = alice.via(&doomed).connect().await?.open_prompt()?.clone();
    let lobby = alice
        .via(&doomed)
        .accept(invite.id, None)
        .await?
        .live_session()?
        .clone();
    let join = bob.via(&doomed).connect().await?.open_prompt()?.clone();
    let alice_last = alice_stream
        .wait_for("the waiting lobby", |e| {
            e.session().is_ok_and(|s| s.id == lobby.id)
        })
        .await?
        .id
        .context("an event without id")?;
    let bob_last = bob_stream
        .wait_for("the join prompt", |e| {
            e.prompt().is_ok_and(|p| p.id == join.id)
        })
        .await?
        .id
        .context("an event without id")?;
    // Other players busy on the doomed replica when it dies.
    let churn = Churn::start(
        churn_players(&world, "churn", 4, None)
            .await?
            .into_iter()
            .map(|p| p.via(&doomed))
            .collect(),
    );
    ensure!(
        churn.wait_for_successes(30, Duration::from_secs(10)).await,
        "the background players never got going"
    );

    world.kill_replica(&doomed)?;
    let killed = Instant::now();
    let (_, alice_end) = alice_stream.until_end(Duration::from_secs(5)).await;
    ensure!(
        alice_end != StreamEnd::StillOpen,
        "a dead replica's stream stays open"
    );
    let churn_report = churn.stop().await;
    ensure!(
        churn_report.violations.is_empty(),
        "answers the contract forbids: {:#?}",
        churn_report.violations
    );

    // The surviving replica serves everyone, and produces events while Alice is away.
    let alice_now = alice.me().await?;
    ensure!(
        alice_now.live_session()?.id == lobby.id
            && alice_now.live_session()?.state == SessionState::Waiting,
        "the lobby survived: {alice_now:#?}"
    );
    let joined = bob.accept(join.id, None).await?;
    ensure!(
        joined.live_session()?.state == SessionState::Active,
        "{joined:#?}"
    );
    let carol_join = carol.connect().await?.open_prompt()?.clone();
    ensure!(carol_join.session_id == Some(lobby.id), "{carol_join:#?}");
    let all_three = carol.accept(carol_join.id, None).await?;
    ensure!(
        sorted(&all_three.live_session()?.players) == ["alice", "bob", "carol"],
        "{all_three:#?}"
    );

    // Reconnecting to the survivor with Last-Event-ID replays exactly what was missed.
    for (player, last) in [(&alice, &alice_last), (&bob, &bob_last)] {
        let missed = player.events(Some(last)).await?.drain(QUIET).await?;
        let everything = player.events(Some("0-0")).await?.drain(QUIET).await?;
        let expected = after(&everything, last)?;
        ensure!(
            missed == expected,
            "{} resumed after {last} and got {missed:#?}\nbut missed {expected:#?}",
            player.id
        );
        let sessions: Vec<Session> = missed.iter().filter_map(|e| e.session().ok()).collect();
        ensure!(
            sessions.iter().any(|s| s.id == lobby.id
                && s.state == SessionState::Active
                && s.players.len() == 3),
            "{} missed the lobby filling up: {missed:#?}",
            player.id
        );
    }

    // The players busy on the dead replica carry on on the survivor (locks the dead process
    // held run out with their lease).
    let carry_on = Churn::start(
        (0..4)
            .flat_map(|i| [format!("churn-{i}a"), format!("churn-{i}b")])
            .map(|id| world.player(&id))
            .collect::<anyhow::Result<Vec<_>>>()?,
    );
    ensure!(
        carry_on
            .wait_for_successes(40, Duration::from_secs(15))
            .await,
        "the players of the dead replica could not carry on on the survivor"
    );
    let report = carry_on.stop().await;
    report.ensure_clean()?;
    check_store(&world).await?;
    eprintln!(
        "replica killed: streams resumed, background players carried on {:.1?} after the kill \
         ({:?} before, {:?} after)",
        killed.elapsed(),
        churn_report.statuses,
        report.statuses
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sigterm_the_game_service_finishes_the_request_in_flight_ends_streams_cleanly_and_exits_0_quickly()
-> anyhow::Result<()> {
    const EXIT_LIMIT: Duration = Duration::from_secs(5);
    let mut world =
        spawn_world_with(WorldOptions::default().game_var("IM_TIMEOUT_MS", 1500)).await?;
    world.kill_im();
    // An IM service that never answers keeps a connect in flight for IM_TIMEOUT_MS.
    let stub = StubIm::start(world.im_port()?, StubMode::Hang).await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    let carol = world.player("carol")?;
    let mut alice_stream = alice.events(None).await?;
    let mut bob_stream = bob.events(None).await?;
    let in_flight = tokio::spawn(async move {
        carol
            .raw(Service::Game, Method::POST, "/v1/connect", None)
            .await
    });
    eventually(
        "the connect reaching the IM service",
        Duration::from_secs(5),
        || async { Ok((stub.requests() == 1).then_some(())) },
    )
    .await?;

    world.signal_game("TERM")?;
    let signalled = Instant::now();
    let (alice_end, bob_end) = tokio::join!(
        alice_stream.until_end(EXIT_LIMIT),
        bob_stream.until_end(EXIT_LIMIT)
    );
    let streams_ended = signalled.elapsed();
    let exit = world.wait_game_exit(EXIT_LIMIT).await?;
    let exited = signalled.elapsed();
    let connect = in_flight.await.context("joining the request in flight")??;

    for (who, (_, end)) in [("alice", alice_end), ("bob", bob_end)] {
        ensure!(
            end == StreamEnd::Clean,
            "{who}'s event stream did not end cleanly on SIGTERM: {end:?}"
        );
    }
    let status = exit.with_context(|| format!("still running {EXIT_LIMIT:?} after SIGTERM"))?;
    ensure!(
        status.code() == Some(0),
        "exit status after SIGTERM: {status}"
    );
    let state: PlayerState = connect
        .ok()
        .context("the request in flight at SIGTERM")?
        .json()?;
    state.solo(Reason::ImUnavailable)?;
    eprintln!("sigterm: streams ended after {streams_ended:.1?}, exit 0 after {exited:.1?}");
    stub.stop().await;
    Ok(())
}
