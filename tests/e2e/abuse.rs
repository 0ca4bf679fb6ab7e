//! Tried as an attacker would, on the real binaries: every cheap way to hurt others or the
//! service is refused, with its problem `type`, and changes nothing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, ensure};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use shared_types::{
    UserId,
    auth::{Claims, DEFAULT_AUDIENCE, DEFAULT_ISSUER, Scope},
    problem::ProblemCode,
};

use crate::helpers::{
    SECRET, Service, StateExt, StreamEnd, StubIm, StubMode, WorldOptions, run_to_exit, spawn_world,
    spawn_world_with,
};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn claims(sub: &str, scope: Scope) -> anyhow::Result<Claims> {
    Ok(Claims {
        sub: UserId::parse(sub)?,
        exp: now() + 600,
        iat: Some(now()),
        nbf: None,
        iss: DEFAULT_ISSUER.into(),
        aud: DEFAULT_AUDIENCE.into(),
        scope,
    })
}

fn hs256(claims: &Claims) -> anyhow::Result<String> {
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )?)
}

/// Series in a `/metrics` text: every line that is not a comment.
fn series(metrics: &str) -> usize {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_invented_paths_and_methods_add_no_metric_series() -> anyhow::Result<()> {
    // Without the rate limit, so that every invented request reaches routing.
    let world = spawn_world_with(WorldOptions::default().game_var("RATE_LIMIT_PER_SEC", 0)).await?;
    let alice = world.player("alice")?;
    alice.connect().await?;
    let scrape = || async {
        world
            .raw(Service::Game, Method::GET, "/metrics", None, None)
            .await?
            .ok()
            .map(|reply| reply.body)
    };
    // Warm up: every label value a normal caller and a stranger produce once.
    for (method, path) in [
        ("GET", "/no/such/path"),
        ("BREW", "/v1/connect"),
        ("BREW", "/nope"),
    ] {
        world
            .raw(
                Service::Game,
                Method::from_bytes(method.as_bytes())?,
                path,
                None,
                None,
            )
            .await?;
    }
    // A scrape counts itself after answering: the first one adds /metrics's own series.
    scrape().await?;
    let before = series(&scrape().await?);
    for i in 0..1000 {
        let method = Method::from_bytes(format!("M{i:04}X").as_bytes())?;
        let path = format!("/random/{i}/{}", uuid::Uuid::new_v4());
        let invented = world.raw(Service::Game, method, &path, None, None).await?;
        ensure!(invented.status.is_client_error(), "{invented:?}");
        let unmatched = world
            .raw(Service::Game, Method::GET, &path, None, None)
            .await?;
        unmatched.problem(404, ProblemCode::NotFound)?;
    }
    let after = series(&scrape().await?);
    ensure!(
        after == before,
        "{before} series before, {after} after 2,000 invented requests"
    );
    let on_route = world
        .raw(
            Service::Game,
            Method::from_bytes(b"BREW")?,
            "/v1/connect",
            None,
            None,
        )
        .await?;
    on_route.problem(405, ProblemCode::MethodNotAllowed)?;
    ensure!(on_route.headers.get("allow").is_some(), "{on_route:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_not_yet_valid_or_valid_for_too_long_are_refused() -> anyhow::Result<()> {
    let world = spawn_world().await?;
    let mut early = claims("alice", Scope::Player)?;
    early.nbf = Some(now() + 600);
    let mut forever = claims("alice", Scope::Player)?;
    forever.exp = now() + 400 * 24 * 3600;
    let fine = claims("alice", Scope::Player)?;
    for (what, token, status) in [
        ("nbf ten minutes ahead", hs256(&early)?, 401),
        (
            "exp a year ahead (JWT_MAX_TTL_SECS is a day)",
            hs256(&forever)?,
            401,
        ),
        ("a fine token", hs256(&fine)?, 200),
    ] {
        let auth = format!("Bearer {token}");
        let reply = world
            .raw(Service::Game, Method::GET, "/v1/me", Some(&auth), None)
            .await?;
        ensure!(reply.status.as_u16() == status, "{what}: {reply:?}");
        let im = world
            .raw(
                Service::Im,
                Method::GET,
                "/v1/conversations",
                Some(&auth),
                None,
            )
            .await?;
        ensure!(
            im.status.as_u16() == status,
            "{what} on the IM service: {im:?}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_providers_token_claiming_scope_service_is_refused() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("e2e-idp-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let private = dir.join("idp.pem");
    let public = dir.join("idp.pub.pem");
    for args in [
        vec!["genpkey", "-algorithm", "ed25519", "-out", path(&private)?],
        vec![
            "pkey",
            "-in",
            path(&private)?,
            "-pubout",
            "-out",
            path(&public)?,
        ],
    ] {
        let status = std::process::Command::new("openssl").args(&args).status()?;
        ensure!(status.success(), "openssl {args:?}");
    }
    let world = spawn_world_with(
        WorldOptions::default()
            .game_var("JWT_PUBLIC_KEY_FILE", path(&public)?)
            .game_var("JWT_ALGORITHM", "EdDSA"),
    )
    .await?;
    let idp = EncodingKey::from_ed_pem(&std::fs::read(&private)?)?;
    let sign = |claims: &Claims| jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), claims, &idp);
    let player = format!("Bearer {}", sign(&claims("alice", Scope::Player)?)?);
    world
        .raw(Service::Game, Method::GET, "/v1/me", Some(&player), None)
        .await?
        .ok()
        .context("the identity provider vouches for players")?;
    let claimed = format!("Bearer {}", sign(&claims("mallory", Scope::Service)?)?);
    let body = r#"{"token":"x"}"#;
    world
        .raw(
            Service::Game,
            Method::POST,
            "/v1/join-tokens/verify",
            Some(&claimed),
            Some(body),
        )
        .await?
        .problem(401, ProblemCode::Unauthorized)
        .context("an identity provider's key never grants scope service")?;
    let platform = format!("Bearer {}", world.service_token()?);
    world
        .raw(
            Service::Game,
            Method::POST,
            "/v1/join-tokens/verify",
            Some(&platform),
            Some(body),
        )
        .await?
        .ok()
        .context("JWT_SECRET still vouches for services")?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn path(p: &std::path::Path) -> anyhow::Result<&str> {
    p.to_str().context("a UTF-8 temp path")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_ends_when_its_token_expires_and_a_reconnect_loses_no_event() -> anyhow::Result<()>
{
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let mut short = claims("alice", Scope::Player)?;
    short.exp = now() + 3;
    let short_lived = alice.with_token(hs256(&short)?);
    let mut stream = short_lived.events(None).await?;
    let solo = alice.connect().await?.live_session()?.clone();
    let first = stream
        .wait_for("the solo session", |e| {
            e.session().is_ok_and(|s| s.id == solo.id)
        })
        .await?;
    let (_, end) = stream.until_end(Duration::from_secs(15)).await;
    ensure!(
        end == StreamEnd::Clean,
        "the stream ends cleanly at the token's expiry: {end:?}"
    );
    // While alice is away, her session changes.
    alice.leave(solo.id).await?;
    let mut resumed = alice.events(first.id.as_deref()).await?;
    let missed = resumed
        .wait_for("the missed event", |e| {
            e.session()
                .is_ok_and(|s| s.id == solo.id && s.players.is_empty())
        })
        .await?;
    ensure!(missed.id > first.id, "{missed:?} after {first:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_out_of_range_last_event_id_is_a_400_not_a_503() -> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    alice.connect().await?;
    for id in [
        "18446744073709551615-18446744073709551615",
        "99999999999999999999999-0",
        "1-99999999999999999999999",
        "-1-0",
    ] {
        let reply = alice
            .raw_with_header(
                Service::Game,
                Method::GET,
                "/v1/events",
                ("Last-Event-ID", id),
            )
            .await?;
        reply
            .problem(400, ProblemCode::InvalidRequest)
            .with_context(|| format!("Last-Event-ID {id}"))?;
    }
    alice
        .events(Some("0-0"))
        .await
        .context("the smallest id is fine")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_player_hammering_connect_with_a_slow_partners_query_degrades_nobody_else()
-> anyhow::Result<()> {
    const OTHERS: usize = 8;
    let mut world = spawn_world_with(
        WorldOptions::default()
            .game_var("IM_TIMEOUT_MS", 300)
            .game_var("IM_BREAKER_THRESHOLD", 3),
    )
    .await?;
    world.kill_im();
    let stub = StubIm::start(
        world.im_port()?,
        StubMode::Answer {
            delay: Duration::ZERO,
        },
    )
    .await?;
    stub.slow_for("mallory", Duration::from_secs(5));
    for i in 0..OTHERS {
        stub.talk(&format!("player-{i}"), &format!("friend-{i}"));
    }
    let mallory = world.player("mallory")?;
    // Mallory's every partners query outlives IM_TIMEOUT_MS; she connects, leaves her
    // degraded solo session and connects again, four at a time.
    let hammer = async {
        for _ in 0..6 {
            let rounds = (0..4).map(|_| async {
                let state = mallory.connect().await?;
                if let Some(session) = &state.session {
                    mallory.leave(session.id).await?;
                }
                anyhow::Ok(state.degraded)
            });
            for degraded in futures_util::future::join_all(rounds).await {
                ensure!(degraded?, "mallory's own connects go solo, degraded");
            }
        }
        anyhow::Ok(())
    };
    // Meanwhile other players connect, each asking the IM service once: every one gets
    // the invite for their friend, none a degraded solo session.
    let others = async {
        for i in 0..OTHERS {
            let player = world.player(&format!("player-{i}"))?;
            let state = player.connect().await?;
            ensure!(
                !state.degraded,
                "player-{i} was degraded by mallory: {state:#?}"
            );
            ensure!(state.open_prompt().is_ok(), "{state:#?}");
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        anyhow::Ok(())
    };
    let (hammered, served) = tokio::join!(hammer, others);
    hammered?;
    served?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_and_development_secrets_are_refused_at_start_with_what_to_do() -> anyhow::Result<()>
{
    let limit = Duration::from_secs(20);
    for service in ["game-service", "im-service"] {
        let short = [
            ("JWT_SECRET", "only-31-bytes-long-secret-value"),
            ("BIND_ADDR", "127.0.0.1:0"),
        ];
        let (status, output) = run_to_exit(service, &short, limit)?;
        ensure!(!status.success(), "{service} started with a 31-byte secret");
        ensure!(
            output.contains("at least 32") && output.contains("openssl rand"),
            "{service}: {output}"
        );
        let development = [
            ("JWT_SECRET", shared_types::auth::DEV_SECRET),
            ("REDIS_URL", "redis://127.0.0.1:9"),
            ("BIND_ADDR", "127.0.0.1:0"),
        ];
        let (status, output) = run_to_exit(service, &development, limit)?;
        ensure!(
            !status.success(),
            "{service} started with the development secret on Redis"
        );
        ensure!(output.contains("in-memory store"), "{service}: {output}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_that_trickles_in_is_cut_off_with_a_408() -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let world =
        spawn_world_with(WorldOptions::default().game_var("REQUEST_BODY_TIMEOUT_MS", 500)).await?;
    let token = world.service_token()?;
    let address = world.game_address();
    let started = std::time::Instant::now();
    let answer = tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
        let mut socket = std::net::TcpStream::connect(&address)?;
        socket.set_read_timeout(Some(Duration::from_secs(10)))?;
        let head = format!(
            "POST /v1/join-tokens/verify HTTP/1.1\r\nhost: {address}\r\n\
             authorization: Bearer {token}\r\ncontent-type: application/json\r\n\
             content-length: 40\r\n\r\n{{\"tok"
        );
        socket.write_all(head.as_bytes())?;
        // The rest of the body never comes (a client trickling it, or gone quiet).
        let mut reply = vec![0u8; 4096];
        let n = socket.read(&mut reply)?;
        Ok(String::from_utf8_lossy(&reply[..n]).into_owned())
    })
    .await??;
    let waited = started.elapsed();
    ensure!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    ensure!(answer.contains("/problems/request-timeout"), "{answer}");
    ensure!(
        waited < Duration::from_secs(5),
        "cut off after {waited:?}, not ~0.5 s"
    );
    Ok(())
}
