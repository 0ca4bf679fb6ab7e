//! The game's own Prometheus series, read from `/metrics`, move as the flow
//! runs: one pairing, a solo connect with nobody to play with, one with the
//! IM service down, an invite prompt left to expire, an open event stream.
//! Alone in its own test binary, so that every delta is exact (the series
//! are process-wide).

/// The API suite's helpers (its `helpers/` submodules resolve from that directory).
#[path = "../api"]
mod api {
    #[expect(dead_code, reason = "the API suite's helpers; this suite needs a few")]
    pub mod helpers;
}

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use anyhow::Context;
use reqwest::{Method, StatusCode};
use shared_types::game::{PlayerState, PromptKind, Reason, SessionKind, SessionState};

use crate::api::helpers::{TestApp, expect_json, game_settings, spawn_app};

/// The series checked, with how much the scenario must move each.
const EXPECTED: &[(&str, f64)] = &[
    // alice, bob, carol, dave, erin
    ("game_connects_total", 5.0),
    // alice and erin get invite prompts, bob a join prompt
    ("game_prompts_total{kind=\"invite\"}", 2.0),
    ("game_prompts_total{kind=\"join\"}", 1.0),
    ("game_answers_total{decision=\"accept\"}", 2.0),
    ("game_answers_total{decision=\"reject\"}", 0.0),
    (
        "game_sessions_started_total{kind=\"multiplayer\",reason=\"none\"}",
        1.0,
    ),
    (
        "game_sessions_started_total{kind=\"solo\",reason=\"no_partner\"}",
        1.0,
    ),
    (
        "game_sessions_started_total{kind=\"solo\",reason=\"im_unavailable\"}",
        1.0,
    ),
    (
        "game_sessions_started_total{kind=\"solo\",reason=\"expired\"}",
        1.0,
    ),
    (
        "game_sessions_started_total{kind=\"solo\",reason=\"rejected\"}",
        0.0,
    ),
    ("game_invite_to_join_seconds_count", 1.0),
    ("game_expiries_total{kind=\"invite\"}", 1.0),
    ("game_expiries_total{kind=\"invitation\"}", 0.0),
    // alice, carol and erin asked the IM service; dave's call found it down
    ("game_im_requests_total{outcome=\"ok\"}", 3.0),
    ("game_im_requests_total{outcome=\"error\"}", 1.0),
    ("game_im_requests_total{outcome=\"timeout\"}", 0.0),
    ("game_im_requests_total{outcome=\"breaker_open\"}", 0.0),
    ("game_im_request_duration_seconds_count", 4.0),
    ("game_im_breaker_open", 0.0),
    ("game_lock_contention_total", 0.0),
    ("game_store_errors_total", 0.0),
    ("game_sessions_ended_total{reason=\"left\"}", 0.0),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flow_moves_every_series_of_the_funnel_and_of_what_it_depends_on() -> anyhow::Result<()>
{
    let app = spawn_app().await?;
    // The same IM service; invite prompts that expire after a second.
    let expiring = spawn_game(&app.im_address, Duration::from_secs(1)).await?;
    // An IM service nobody answers for.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let no_im = spawn_game(
        &format!("http://127.0.0.1:{closed}"),
        Duration::from_secs(60),
    )
    .await?;
    app.chatting(&["alice", "bob"]).await?;
    app.chatting(&["erin", "frank"]).await?;
    let before = scrape(&app).await?;

    let stream = app
        .request(Method::GET, "/v1/events", Some(&app.token("bob")?))
        .send()
        .await?;
    assert_eq!(stream.status(), StatusCode::OK);
    let streams = "game_event_streams_open";
    assert_eq!(
        scrape(&app).await?.get(streams)? - before.get(streams)?,
        1.0,
        "the open stream is counted"
    );

    // One pairing: alice invites bob, bob joins.
    let invite = app
        .connect("alice")
        .await?
        .prompt
        .context("an invite prompt")?;
    assert_eq!(invite.kind, PromptKind::Invite);
    let lobby = accept(&app, "alice", &invite.id.to_string()).await?;
    assert_eq!(lobby.session.map(|s| s.state), Some(SessionState::Waiting));
    let join = app.connect("bob").await?.prompt.context("a join prompt")?;
    assert_eq!(join.kind, PromptKind::Join);
    let joined = accept(&app, "bob", &join.id.to_string()).await?;
    assert_eq!(joined.session.map(|s| s.state), Some(SessionState::Active));

    // Solo: nobody to play with; the IM service down.
    let carol = app
        .connect("carol")
        .await?
        .session
        .context("a solo session")?;
    assert_eq!(
        (carol.kind, carol.reason),
        (SessionKind::Solo, Some(Reason::NoPartner))
    );
    let dave = connect_at(&app, &no_im, "dave").await?;
    assert!(dave.degraded, "{dave:?}");

    // An invite prompt nobody answers expires (the sweeper acts within a poll).
    let erin = connect_at(&app, &expiring, "erin").await?;
    assert!(erin.prompt.is_some(), "{erin:?}");
    let expiries = "game_expiries_total{kind=\"invite\"}";
    let after = wait_for(&app, |now| {
        Ok(now.get(expiries)? - before.get(expiries)? >= 1.0)
    })
    .await?;

    for (series, moved) in EXPECTED {
        assert_eq!(after.get(series)? - before.get(series)?, *moved, "{series}");
    }
    // Each sweep sets it (every replica of this process, last one wins): served, that is all.
    after.get("game_expiry_backlog")?;

    // The server notices a vanished client when a keep-alive write fails (two
    // keep-alive periods, about 10 s): then the stream leaves the count.
    drop(stream);
    wait_for(&app, |now| Ok(now.get(streams)? == before.get(streams)?))
        .await
        .context("the closed stream is no longer counted")?;
    Ok(())
}

/// Another game service in this process (its series are the same statics), asking `im_url`.
async fn spawn_game(im_url: &str, invite_ttl: Duration) -> anyhow::Result<String> {
    let mut settings = game_settings(im_url);
    settings.invite_ttl = invite_ttl;
    let game = game_service::startup::Application::build(settings).await?;
    let address = format!("http://127.0.0.1:{}", game.port());
    tokio::spawn(game.run_until_stopped());
    Ok(address)
}

async fn connect_at(app: &TestApp, address: &str, who: &str) -> anyhow::Result<PlayerState> {
    let response = app
        .client
        .post(format!("{address}/v1/connect"))
        .bearer_auth(app.token(who)?)
        .send()
        .await?;
    expect_json(response, StatusCode::OK).await
}

async fn accept(app: &TestApp, who: &str, prompt: &str) -> anyhow::Result<PlayerState> {
    let response = app
        .request(
            Method::POST,
            &format!("/v1/prompts/{prompt}/accept"),
            Some(&app.token(who)?),
        )
        .send()
        .await?;
    expect_json(response, StatusCode::OK).await
}

/// One scrape of `/metrics`: each sample by its series (name and labels).
struct Scrape(HashMap<String, f64>);

impl Scrape {
    fn get(&self, series: &str) -> anyhow::Result<f64> {
        self.0
            .get(series)
            .copied()
            .with_context(|| format!("{series} is not served"))
    }
}

async fn scrape(app: &TestApp) -> anyhow::Result<Scrape> {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(Scrape(
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                Some((series.to_owned(), value.parse().ok()?))
            })
            .collect(),
    ))
}

/// Scrapes until `done` holds (polling, with a deadline); returns that scrape.
async fn wait_for(
    app: &TestApp,
    done: impl Fn(&Scrape) -> anyhow::Result<bool>,
) -> anyhow::Result<Scrape> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = scrape(app).await?;
        if done(&now)? {
            return Ok(now);
        }
        anyhow::ensure!(Instant::now() < deadline, "not within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
