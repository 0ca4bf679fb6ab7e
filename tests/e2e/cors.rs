//! `CORS_ALLOWED_ORIGINS` on both services: preflights and headers for the listed origins only, and no CORS headers at all without it.

use anyhow::{Context, bail, ensure};
use reqwest::{Method, StatusCode};
use shared_types::tickets::EventTicket;

use crate::helpers::{Player, Reply, Service, StateExt, TestWorld, WorldOptions, spawn_world_with};

/// The origins a world allows (exact, comma-separated, with a space to trim).
const ORIGINS: &str = "https://play.example.com, http://localhost:5173";
const ALLOWED: [&str; 2] = ["https://play.example.com", "http://localhost:5173"];
/// Origins not on the list, some of them near misses of listed ones.
const OTHERS: [&str; 4] = [
    "https://evil.example.net",
    "http://play.example.com",
    "https://play.example.com.evil.example.net",
    "http://localhost:5174",
];

/// A world whose both services allow [`ORIGINS`].
async fn cors_world() -> anyhow::Result<TestWorld> {
    spawn_world_with(
        WorldOptions::default()
            .game_var("CORS_ALLOWED_ORIGINS", ORIGINS)
            .im_var("CORS_ALLOWED_ORIGINS", ORIGINS),
    )
    .await
}

fn header(reply: &Reply, name: &str) -> Option<String> {
    reply
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A comma-separated header as lowercase items.
fn list(reply: &Reply, name: &str) -> Vec<String> {
    header(reply, name)
        .unwrap_or_default()
        .split(',')
        .map(|item| item.trim().to_ascii_lowercase())
        .filter(|item| !item.is_empty())
        .collect()
}

/// The names of every `access-control-*` header of an answer.
fn cors_headers(headers: &reqwest::header::HeaderMap) -> Vec<String> {
    headers
        .keys()
        .map(|name| name.as_str().to_owned())
        .filter(|name| name.starts_with("access-control-"))
        .collect()
}

/// An API path of each service (preflights are answered for any).
fn paths(service: Service, player: &Player) -> Vec<String> {
    match service {
        Service::Game => vec![
            "/v1/connect".into(),
            "/v1/events/tickets".into(),
            format!("/v1/prompts/{}/accept", uuid::Uuid::new_v4()),
            "/v1/no-such-path".into(),
        ],
        Service::Im => vec![
            "/v1/conversations".into(),
            "/v1/presence".into(),
            format!("/v1/users/{}/partners", player.id),
            "/v1/no-such-path".into(),
        ],
    }
}

/// A request a page makes after its preflight: one that answers 200 with the player's token.
fn read_path(service: Service, player: &Player) -> String {
    match service {
        Service::Game => "/v1/me".into(),
        Service::Im => format!("/v1/users/{}/partners", player.id),
    }
}

async fn preflight(
    world: &TestWorld,
    service: Service,
    path: &str,
    origin: &str,
) -> anyhow::Result<Reply> {
    world
        .raw_with_headers(
            service,
            Method::OPTIONS,
            path,
            None,
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
                (
                    "Access-Control-Request-Headers",
                    "authorization, content-type",
                ),
            ],
        )
        .await
}

/// The same request without `Origin` and from `origin`: (without, with).
async fn with_and_without_origin(
    world: &TestWorld,
    player: Option<&Player>,
    service: Service,
    path: &str,
    origin: &str,
) -> anyhow::Result<(Reply, Reply)> {
    Ok(match player {
        Some(player) => (
            player.raw(service, Method::GET, path, None).await?,
            player
                .raw_with_header(service, Method::GET, path, ("Origin", origin))
                .await?,
        ),
        None => (
            world.raw(service, Method::GET, path, None, None).await?,
            world
                .raw_with_headers(service, Method::GET, path, None, &[("Origin", origin)])
                .await?,
        ),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_services_answer_preflights_from_an_allowed_origin_on_any_api_path()
-> anyhow::Result<()> {
    let world = cors_world().await?;
    let alice = world.player("alice")?;
    for service in [Service::Game, Service::Im] {
        for path in paths(service, &alice) {
            for origin in ALLOWED {
                let what = format!("{service:?} OPTIONS {path} from {origin}");
                let reply = preflight(&world, service, &path, origin).await?;
                ensure!(reply.status.is_success(), "{what}: {reply:?}");
                ensure!(
                    header(&reply, "access-control-allow-origin").as_deref() == Some(origin),
                    "{what}: the origin is echoed: {reply:?}"
                );
                let methods = list(&reply, "access-control-allow-methods");
                for method in ["get", "post", "put", "delete"] {
                    ensure!(
                        methods.iter().any(|m| m == method),
                        "{what}: {method} is allowed: {methods:?}"
                    );
                }
                let headers = list(&reply, "access-control-allow-headers");
                for name in [
                    "authorization",
                    "content-type",
                    "idempotency-key",
                    "last-event-id",
                    "x-request-id",
                ] {
                    ensure!(
                        headers.iter().any(|h| h == name),
                        "{what}: {name} may be sent: {headers:?}"
                    );
                }
                ensure!(
                    header(&reply, "access-control-allow-credentials").is_none(),
                    "{what}: bearer tokens, not cookies: no credentials: {reply:?}"
                );
            }
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_origin_gets_cors_headers_on_answers_and_errors_and_others_get_none()
-> anyhow::Result<()> {
    let world = cors_world().await?;
    let alice = world.player("alice")?;
    alice.connect().await?;
    for service in [Service::Game, Service::Im] {
        let path = read_path(service, &alice);
        // With a token (200) and without one (401 problem).
        for player in [Some(&alice), None] {
            let expected = if player.is_some() {
                StatusCode::OK
            } else {
                StatusCode::UNAUTHORIZED
            };
            for origin in ALLOWED {
                let what = format!(
                    "{service:?} GET {path} from {origin}, token: {:?}",
                    player.map(|p| p.id.as_str())
                );
                let (plain, from_origin) =
                    with_and_without_origin(&world, player, service, &path, origin).await?;
                ensure!(
                    plain.status == expected && from_origin.status == expected,
                    "{what}: {plain:?} {from_origin:?}"
                );
                ensure!(
                    header(&from_origin, "access-control-allow-origin").as_deref() == Some(origin),
                    "{what}: {from_origin:?}"
                );
                let exposed = list(&from_origin, "access-control-expose-headers");
                for name in ["x-request-id", "retry-after"] {
                    ensure!(
                        exposed.iter().any(|h| h == name),
                        "{what}: {name} is exposed: {exposed:?}"
                    );
                }
                ensure!(
                    header(&from_origin, "access-control-allow-credentials").is_none(),
                    "{what}: {from_origin:?}"
                );
                ensure!(
                    header(&plain, "access-control-allow-origin").is_none(),
                    "{what}: no origin, nothing to allow: {plain:?}"
                );
            }
            for origin in OTHERS {
                let what = format!(
                    "{service:?} GET {path} from {origin}, token: {:?}",
                    player.map(|p| p.id.as_str())
                );
                let (plain, from_origin) =
                    with_and_without_origin(&world, player, service, &path, origin).await?;
                ensure!(
                    from_origin.status == plain.status && plain.status == expected,
                    "{what}: answered as without Origin: {plain:?} {from_origin:?}"
                );
                let cors = cors_headers(&from_origin.headers);
                ensure!(
                    cors.is_empty(),
                    "{what}: another origin gets no CORS header: {cors:?} in {from_origin:?}"
                );
            }
        }
        // Another origin's preflight is no permission either.
        for origin in OTHERS {
            let reply = preflight(&world, service, &path, origin).await?;
            ensure!(
                header(&reply, "access-control-allow-origin").is_none(),
                "{service:?} preflight from {origin}: {reply:?}"
            );
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_on_an_allowed_origin_gets_a_ticket_and_opens_its_stream_with_cors_headers()
-> anyhow::Result<()> {
    let world = cors_world().await?;
    let alice = world.player("alice")?;
    let origin = ALLOWED[0];
    let reply = alice
        .raw_with_header(
            Service::Game,
            Method::POST,
            "/v1/events/tickets",
            ("Origin", origin),
        )
        .await?;
    ensure!(reply.status == StatusCode::CREATED, "{reply:?}");
    ensure!(
        header(&reply, "access-control-allow-origin").as_deref() == Some(origin),
        "{reply:?}"
    );
    let ticket: EventTicket = reply.json()?;
    let mut stream = match alice
        .events_by_query(&format!("ticket={}", ticket.ticket), &[("Origin", origin)])
        .await?
    {
        Ok(stream) => stream,
        Err(refusal) => bail!("the ticket was refused: {refusal:?}"),
    };
    let allowed = stream
        .headers()
        .get("access-control-allow-origin")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    ensure!(
        allowed.as_deref() == Some(origin),
        "the stream's answer lets the page read it: {:?}",
        stream.headers()
    );
    let solo = alice.connect().await?.live_session()?.clone();
    stream
        .wait_for("her solo session", |e| {
            e.session().is_ok_and(|s| s.id == solo.id)
        })
        .await
        .context("the stream opened from the page")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cors_allowed_origins_no_answer_carries_a_cors_header() -> anyhow::Result<()> {
    let world = spawn_world_with(WorldOptions::default()).await?;
    let alice = world.player("alice")?;
    alice.connect().await?;
    for service in [Service::Game, Service::Im] {
        let path = read_path(service, &alice);
        for origin in ALLOWED.iter().chain(&OTHERS) {
            let mut replies = vec![preflight(&world, service, &path, origin).await?];
            let (_, with_token) =
                with_and_without_origin(&world, Some(&alice), service, &path, origin).await?;
            ensure!(with_token.status == StatusCode::OK, "{with_token:?}");
            let (_, without_token) =
                with_and_without_origin(&world, None, service, &path, origin).await?;
            ensure!(
                without_token.status == StatusCode::UNAUTHORIZED,
                "{without_token:?}"
            );
            replies.extend([with_token, without_token]);
            for reply in &replies {
                let cors = cors_headers(&reply.headers);
                ensure!(
                    cors.is_empty(),
                    "{service:?} {} {} from {origin}: CORS is off, yet {cors:?}: {reply:?}",
                    reply.method,
                    reply.path
                );
            }
        }
    }
    Ok(())
}
