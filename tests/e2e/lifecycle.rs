//! Sessions and game servers, on the real binaries: join tokens verified online and by key
//! set, game servers ending sessions and sending heartbeats, idle sessions abandoned exactly
//! once under two sweeping replicas, and what keeps a session alive.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use futures_util::{StreamExt, stream};
use reqwest::{Method, StatusCode};
use shared_types::{
    game::{EndedReason, JoinTokenError, Session, SessionState},
    problem::ProblemCode,
};
use uuid::Uuid;

use crate::helpers::{
    GameServer, Player, Service, StateExt, TestWorld, WorldOptions, eventually, spawn_world,
    spawn_world_with,
};

/// Short enough for a test to outlive; life is then recorded every 250 ms.
const IDLE_SECS: u64 = 2;
/// An idle session ends within the idle time plus a resolution, a sweep and a loaded machine.
const ABANDON_LIMIT: Duration = Duration::from_secs(IDLE_SECS + 10);

fn idle_world() -> WorldOptions {
    WorldOptions::default()
        .game_var("SESSION_IDLE_SECS", IDLE_SECS)
        .game_var("EXPIRY_POLL_MS", 50)
}

/// `host` invites `guest`, who joins: one active session, as `guest` sees it.
async fn play(
    world: &TestWorld,
    host: &Player,
    guest: &Player,
) -> anyhow::Result<(Session, Session)> {
    world.chatting(&[host, guest]).await?;
    let invite = host.connect().await?.open_prompt()?.id;
    host.accept(invite, None).await?;
    let join = guest.connect().await?.open_prompt()?.id;
    let joined = guest.accept(join, None).await?.live_session()?.clone();
    ensure!(joined.state == SessionState::Active, "{joined:#?}");
    let hosted = host.me().await?.live_session()?.clone();
    Ok((hosted, joined))
}

/// Until the game server hears that `token`'s player is no longer in its session (checking
/// a token is not a sign of life).
async fn until_not_a_member(server: &GameServer, token: &str) -> anyhow::Result<()> {
    eventually("the session to end", ABANDON_LIMIT, || async {
        Ok((!server.verify(token).await?.member).then_some(()))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_game_server_verifies_join_tokens_and_hears_who_left_and_when_the_session_ended()
-> anyhow::Result<()> {
    let world = spawn_world().await?;
    let server = world.game_server()?;
    let (alice, bob) = (world.player("alice")?, world.player("bob")?);
    let (hosted, joined) = play(&world, &alice, &bob).await?;

    let jwks = server.jwks().await?.ok()?;
    ensure!(
        jwks.headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok())
            == Some("public, max-age=300"),
        "{:?}",
        jwks.headers
    );
    let keys: serde_json::Value = jwks.json()?;
    let kid = jsonwebtoken::decode_header(&joined.join_token)?.kid;
    ensure!(
        keys["keys"][0]["kid"].as_str() == kid.as_deref(),
        "the token names the published key: {keys}"
    );

    let checked = server.verify(&joined.join_token).await?;
    ensure!(
        checked.valid && checked.member && checked.error.is_none(),
        "{checked:?}"
    );
    ensure!(checked.player_id.as_ref().map(|p| p.as_str()) == Some("bob"));
    ensure!(checked.session_id == Some(joined.id), "{checked:?}");
    ensure!(
        hosted.join_token != joined.join_token,
        "each player has their own token"
    );

    alice.leave(hosted.id).await?;
    let left = server.verify(&hosted.join_token).await?;
    ensure!(left.valid && !left.member, "alice left: {left:?}");
    ensure!(
        server.verify(&joined.join_token).await?.member,
        "bob is still in"
    );

    let ended = server.end(joined.id, "finished").await?;
    ensure!(
        ended.ended_reason == Some(EndedReason::Finished),
        "{ended:#?}"
    );
    let after = server.verify(&joined.join_token).await?;
    ensure!(after.valid && !after.member, "the session ended: {after:?}");
    ensure!(bob.me().await?.session.is_none(), "bob is free");

    let mut forged = joined.join_token.clone();
    forged.insert(forged.find('.').context("a JWS")? + 1, 'x');
    let forged = server.verify(&forged).await?;
    ensure!(
        !forged.valid && forged.error.is_some() && !forged.member,
        "{forged:?}"
    );
    let garbage = server.verify("not-a-token").await?;
    ensure!(
        garbage.error == Some(JoinTokenError::Malformed),
        "{garbage:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn game_server_endpoints_refuse_players_unknown_sessions_and_bad_outcomes()
-> anyhow::Result<()> {
    let world = spawn_world().await?;
    let server = world.game_server()?;
    let alice = world.player("alice")?;
    let solo = alice.connect().await?.live_session()?.clone();
    let verify_body = serde_json::json!({ "token": solo.join_token }).to_string();
    for (path, body) in [
        (
            format!("/v1/sessions/{}/end", solo.id),
            Some(r#"{"outcome":"finished"}"#),
        ),
        (format!("/v1/sessions/{}/heartbeat", solo.id), None),
        (
            "/v1/join-tokens/verify".to_owned(),
            Some(verify_body.as_str()),
        ),
    ] {
        alice
            .raw(Service::Game, Method::POST, &path, body)
            .await?
            .problem(403, ProblemCode::Forbidden)
            .with_context(|| format!("a player token on {path}"))?;
    }
    server
        .end_raw(solo.id, r#"{"outcome":"won"}"#)
        .await?
        .problem(400, ProblemCode::InvalidRequest)?;
    server
        .end_raw(solo.id, r#"{"outcome":"finished","extra":1}"#)
        .await?
        .problem(400, ProblemCode::InvalidRequest)?;
    ensure!(
        alice.me().await?.live_session()?.id == solo.id,
        "a refused end changed nothing"
    );
    let unknown = Uuid::new_v4();
    server
        .end_raw(unknown, r#"{"outcome":"finished"}"#)
        .await?
        .problem(404, ProblemCode::NotFound)?;
    server
        .heartbeat_raw(unknown)
        .await?
        .problem(404, ProblemCode::NotFound)?;

    let first = server.end(solo.id, "aborted").await?;
    let again = server.end(solo.id, "finished").await?;
    ensure!(again == first, "ending twice is harmless: {again:#?}");
    ensure!(again.ended_reason == Some(EndedReason::Aborted));
    let beat = server.heartbeat(solo.id).await?;
    ensure!(beat.state == SessionState::Ended, "{beat:#?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_replicas_sweeping_each_idle_session_is_abandoned_once_and_each_player_hears_it_once()
-> anyhow::Result<()> {
    const PAIRS: usize = 20;
    let mut world = spawn_world_with(idle_world()).await?;
    let other = world.spawn_game_replica().await?;
    let server = world.game_server()?;
    let mut pairs = Vec::new();
    for i in 0..PAIRS {
        let (host, guest) = (
            world.player(&format!("host-{i}"))?,
            world.player(&format!("guest-{i}"))?,
        );
        // Half the pairs play on the other replica.
        let (host, guest) = if i % 2 == 0 {
            (host, guest)
        } else {
            (host.via(&other), guest.via(&other))
        };
        pairs.push((host, guest));
    }
    let played: Vec<anyhow::Result<(Player, Player, Session)>> = stream::iter(pairs)
        .map(|(host, guest)| {
            let world = &world;
            async move {
                let (_, joined) = play(world, &host, &guest).await?;
                Ok((host, guest, joined))
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let played = played.into_iter().collect::<anyhow::Result<Vec<_>>>()?;

    // Nobody shows life: no requests, no streams. Every session ends by itself. (Either
    // replica answers for any session.)
    let servers = [server.clone(), server.via(&other)];
    for (i, (_, _, session)) in played.iter().enumerate() {
        until_not_a_member(&servers[i % 2], &session.join_token).await?;
    }

    // Each player heard it exactly once: the stream replays everything kept for them.
    let heard: Vec<anyhow::Result<()>> =
        stream::iter(played.iter().flat_map(|(h, g, s)| [(h, s), (g, s)]))
            .map(|(player, session)| async move {
                let mut events = player.events(Some("0-0")).await?;
                let replayed = events.drain(Duration::from_millis(500)).await?;
                let ended: Vec<Session> = replayed
                    .iter()
                    .filter_map(|e| e.session().ok())
                    .filter(|s| s.id == session.id && s.state == SessionState::Ended)
                    .collect();
                ensure!(
                    ended.len() == 1 && ended[0].ended_reason == Some(EndedReason::Abandoned),
                    "{} should hear session {} abandoned once: {ended:#?}",
                    player.id,
                    session.id
                );
                ensure!(
                    ended[0].join_token.is_empty(),
                    "no token for an ended session"
                );
                Ok(())
            })
            .buffer_unordered(16)
            .collect()
            .await;
    heard.into_iter().collect::<anyhow::Result<Vec<_>>>()?;

    let series = "game_sessions_ended_total{reason=\"abandoned\"}";
    let counted = world.metric(None, series).await? + world.metric(Some(&other), series).await?;
    ensure!(
        counted == PAIRS as f64,
        "{counted} abandonments counted by the two replicas, not {PAIRS}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_alone_keep_a_session_alive_past_session_idle_secs() -> anyhow::Result<()> {
    let world = spawn_world_with(idle_world()).await?;
    let server = world.game_server()?;
    let (alice, bob) = (world.player("alice")?, world.player("bob")?);
    let (_, joined) = play(&world, &alice, &bob).await?;
    let until = Instant::now() + Duration::from_secs(3 * IDLE_SECS);
    while Instant::now() < until {
        server.heartbeat(joined.id).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    ensure!(
        server.verify(&joined.join_token).await?.member,
        "heartbeats kept the session alive for three idle times"
    );
    until_not_a_member(&server, &joined.join_token).await?;
    let ended = bob.session(joined.id).await?;
    ensure!(
        ended.ended_reason == Some(EndedReason::Abandoned),
        "{ended:#?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_event_stream_alone_keeps_a_session_alive_past_session_idle_secs()
-> anyhow::Result<()> {
    let world = spawn_world_with(idle_world()).await?;
    let server = world.game_server()?;
    let (alice, bob) = (world.player("alice")?, world.player("bob")?);
    let (_, joined) = play(&world, &alice, &bob).await?;
    let mut stream = bob.events(None).await?;
    // Nothing but the open stream for three idle times.
    let quiet = stream.drain(Duration::from_secs(3 * IDLE_SECS)).await?;
    ensure!(
        server.verify(&joined.join_token).await?.member,
        "bob's open stream kept the session alive: {quiet:#?}"
    );
    drop(stream);
    until_not_a_member(&server, &joined.join_token).await?;
    let status = bob
        .raw(
            Service::Game,
            Method::GET,
            &format!("/v1/sessions/{}", joined.id),
            None,
        )
        .await?
        .status;
    ensure!(status == StatusCode::OK, "the ended session stays readable");
    Ok(())
}
