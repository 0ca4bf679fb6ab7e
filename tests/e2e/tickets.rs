//! Event-stream tickets: a browser trades its token for a ticket that opens its stream on any replica, until it expires, and that no log ever shows.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode, header};
use shared_types::{
    UserId,
    auth::{Claims, DEFAULT_AUDIENCE, DEFAULT_ISSUER, Scope},
    problem::ProblemCode,
    tickets::EventTicket,
};

use crate::helpers::{
    EventStream, Player, Reply, SECRET, Service, SseEvent, StateExt, StreamEnd, WorldOptions,
    eventually, spawn_world, spawn_world_with,
};

/// Silence that means "nothing more is coming" once the scenario is over.
const QUIET: Duration = Duration::from_millis(1000);
/// `EVENT_TICKET_TTL_SECS` unless a world sets it.
const DEFAULT_TICKET_TTL_SECS: i64 = 60;
/// Clock granularity (tickets and tokens count whole seconds) plus a loaded machine.
const SLACK: chrono::Duration = chrono::Duration::seconds(2);

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// A player token for `sub` expiring at `exp`, signed as the world's tokens are.
fn token(sub: &str, exp: u64) -> anyhow::Result<String> {
    let claims = Claims {
        sub: UserId::parse(sub)?,
        exp,
        iat: Some(now()),
        nbf: None,
        iss: DEFAULT_ISSUER.into(),
        aud: DEFAULT_AUDIENCE.into(),
        scope: Scope::Player,
    };
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )?)
}

/// `POST /v1/events/tickets` with the player's token: a 201 that no cache may keep.
async fn issue(player: &Player) -> anyhow::Result<EventTicket> {
    let reply = player
        .raw(Service::Game, Method::POST, "/v1/events/tickets", None)
        .await?;
    ensure!(
        reply.status == StatusCode::CREATED,
        "{}: POST /v1/events/tickets answered {}: {}",
        player.id,
        reply.status,
        reply.body
    );
    let cache = reply
        .headers
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    ensure!(
        cache == "no-store",
        "a ticket is a credential: Cache-Control {cache:?}"
    );
    let ticket: EventTicket = reply.json()?;
    ensure!(!ticket.ticket.is_empty(), "an empty ticket: {reply:?}");
    Ok(ticket)
}

fn query(ticket: &EventTicket, last_event_id: Option<&str>) -> String {
    match last_event_id {
        Some(id) => format!("ticket={}&last_event_id={id}", ticket.ticket),
        None => format!("ticket={}", ticket.ticket),
    }
}

/// The player's stream opened with `ticket` alone (no `Authorization`), which must work.
async fn open(
    player: &Player,
    ticket: &EventTicket,
    last_event_id: Option<&str>,
) -> anyhow::Result<EventStream> {
    match player
        .events_by_query(&query(ticket, last_event_id), &[])
        .await?
    {
        Ok(stream) => Ok(stream),
        Err(refusal) => bail!("{}'s ticket was refused: {refusal:?}", player.id),
    }
}

/// The answer to `query`, which must be a refusal (not a stream).
async fn refused(player: &Player, query: &str, headers: &[(&str, &str)]) -> anyhow::Result<Reply> {
    match player.events_by_query(query, headers).await? {
        Ok(_stream) => bail!("GET /v1/events?{query} opened {}'s stream", player.id),
        Err(refusal) => Ok(refusal),
    }
}

fn ids(events: &[SseEvent]) -> Vec<Option<&str>> {
    events.iter().map(|e| e.id.as_deref()).collect()
}

fn event_id(event: &SseEvent) -> anyhow::Result<&str> {
    event
        .id
        .as_deref()
        .with_context(|| format!("an event without an id: {event:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_opens_the_players_stream_and_last_event_id_in_the_query_replays_like_the_header()
-> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    world.chatting(&[&alice, &bob]).await?;
    let before = Utc::now();
    let ticket = issue(&alice).await?;
    ensure!(
        ticket.expires_at > before
            && ticket.expires_at
                <= before + chrono::Duration::seconds(DEFAULT_TICKET_TTL_SECS) + SLACK,
        "expires_at {} should be about {DEFAULT_TICKET_TTL_SECS}s after {before}",
        ticket.expires_at
    );
    // One ticket opens several streams while it lives (an EventSource reconnects with it).
    let mut stream = open(&alice, &ticket, None).await?;
    let mut second = open(&alice, &ticket, None).await?;

    let invite = alice.connect().await?.open_prompt()?.clone();
    let pushed = stream
        .wait_for("her invite prompt", |e| {
            e.prompt().is_ok_and(|p| p.id == invite.id)
        })
        .await?;
    second
        .wait_for("her invite prompt on the second stream", |e| {
            e.prompt().is_ok_and(|p| p.id == invite.id)
        })
        .await?;
    let lobby = alice.accept(invite.id, None).await?.live_session()?.clone();
    let join = bob.connect().await?.open_prompt()?.clone();
    bob.accept(join.id, None).await?;
    let mut seen = vec![pushed];
    seen.extend(stream.drain(QUIET).await?);
    ensure!(
        seen.iter()
            .any(|e| e.session().is_ok_and(|s| s.id == lobby.id)),
        "the lobby reached the ticket's stream: {seen:#?}"
    );
    ensure!(seen.len() >= 3, "at least three events: {seen:#?}");
    let first = event_id(&seen[0])?;
    let second_id = event_id(&seen[1])?;

    let mut by_query = open(&alice, &ticket, Some(first)).await?;
    let replayed_by_query = by_query.drain(QUIET).await?;
    let mut by_header = alice.events(Some(first)).await?;
    let replayed_by_header = by_header.drain(QUIET).await?;
    assert_eq!(
        ids(&replayed_by_query),
        ids(&replayed_by_header),
        "last_event_id in the query replays what the Last-Event-ID header does"
    );
    assert_eq!(
        ids(&replayed_by_query),
        ids(&seen[1..]),
        "exactly the events after {first} are replayed"
    );
    assert_eq!(replayed_by_query, seen[1..], "with the same data");

    // Both sent: the header wins.
    let mut both = match alice
        .events_by_query(
            &query(&ticket, Some(first)),
            &[("Last-Event-ID", second_id)],
        )
        .await?
    {
        Ok(stream) => stream,
        Err(refusal) => bail!("the ticket with both ids was refused: {refusal:?}"),
    };
    let replayed_by_both = both.drain(QUIET).await?;
    assert_eq!(
        ids(&replayed_by_both),
        ids(&seen[2..]),
        "with Last-Event-ID {second_id} and last_event_id {first}, the header wins"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_ticket_and_another_players_ticket_beside_a_token_are_refused_with_401()
-> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    let alice_ticket = issue(&alice).await?;
    let bob_ticket = issue(&bob).await?;
    let bob_bearer = format!("Bearer {}", token("bob", now() + 600)?);

    // A made-up ticket of the real ones' shape, and an empty one.
    let invented = "q3Vb0m8yXc1Zp9RkT4sLwE7uHn2JfA6dGiK5oYtBvQe";
    ensure!(
        invented.len() == alice_ticket.ticket.len(),
        "{alice_ticket:?}"
    );
    for (what, query) in [
        ("an unknown ticket", format!("ticket={invented}")),
        ("an empty ticket", "ticket=".to_owned()),
        (
            "alice's ticket with one character changed",
            format!("ticket={}x", &alice_ticket.ticket[1..]),
        ),
    ] {
        refused(&alice, &query, &[])
            .await?
            .problem(401, ProblemCode::Unauthorized)
            .with_context(|| what.to_owned())?;
    }

    // Bob's token beside alice's ticket: refused, though each is valid on its own.
    let other = refused(
        &bob,
        &format!("ticket={}", alice_ticket.ticket),
        &[("Authorization", &bob_bearer)],
    )
    .await?;
    other.problem(401, ProblemCode::Unauthorized)?;
    // Bob's token beside his own ticket opens his stream; alice's ticket still opens hers.
    let mut bob_stream = match bob
        .events_by_query(
            &format!("ticket={}", bob_ticket.ticket),
            &[("Authorization", &bob_bearer)],
        )
        .await?
    {
        Ok(stream) => stream,
        Err(refusal) => bail!("bob's token with his own ticket was refused: {refusal:?}"),
    };
    let mut alice_stream = open(&alice, &alice_ticket, None).await?;
    let bob_solo = bob.connect().await?.live_session()?.clone();
    let alice_solo = alice.connect().await?.live_session()?.clone();
    bob_stream
        .wait_for("bob's solo session", |e| {
            e.session().is_ok_and(|s| s.id == bob_solo.id)
        })
        .await?;
    let alice_events = alice_stream
        .wait_for("alice's solo session", |e| {
            e.session().is_ok_and(|s| s.id == alice_solo.id)
        })
        .await?;
    ensure!(
        alice_events.session()?.id != bob_solo.id,
        "alice's ticket streams alice's events"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_token_gets_no_ticket_and_no_token_gets_a_401() -> anyhow::Result<()> {
    let world = spawn_world().await?;
    let service = format!("Bearer {}", world.service_token()?);
    world
        .raw(
            Service::Game,
            Method::POST,
            "/v1/events/tickets",
            Some(&service),
            None,
        )
        .await?
        .problem(403, ProblemCode::Forbidden)?;
    world
        .raw(
            Service::Game,
            Method::POST,
            "/v1/events/tickets",
            None,
            None,
        )
        .await?
        .problem(401, ProblemCode::Unauthorized)?;
    let stored = world.stored_keys().await?;
    let tickets: Vec<_> = stored
        .iter()
        .filter(|key| key.name.contains(":ticket:"))
        .collect();
    ensure!(tickets.is_empty(), "refusals stored tickets: {tickets:#?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_opens_streams_until_event_ticket_ttl_secs_and_then_is_refused_with_401()
-> anyhow::Result<()> {
    const TTL_SECS: i64 = 1;
    let world =
        spawn_world_with(WorldOptions::default().game_var("EVENT_TICKET_TTL_SECS", TTL_SECS))
            .await?;
    let alice = world.player("alice")?;
    let ttl = Duration::from_secs(TTL_SECS.unsigned_abs());
    // Accepted while it lives. A refusal only counts once a whole TTL has passed since
    // asking for it (a loaded machine may be that slow): then try a fresh ticket.
    let ticket = {
        let mut attempt = 1;
        loop {
            let asked = Instant::now();
            let before = Utc::now();
            let ticket = issue(&alice).await?;
            ensure!(
                ticket.expires_at > before
                    && ticket.expires_at <= before + chrono::Duration::seconds(TTL_SECS) + SLACK,
                "expires_at {} should be about {TTL_SECS}s after {before}",
                ticket.expires_at
            );
            match alice.events_by_query(&query(&ticket, None), &[]).await? {
                Ok(_stream) => break ticket,
                Err(refusal) if asked.elapsed() < ttl => {
                    bail!("a ticket was refused before its TTL passed: {refusal:?}")
                }
                Err(refusal) if attempt < 3 => {
                    eprintln!("the ticket expired before it was used ({refusal:?}); again");
                    attempt += 1;
                }
                Err(refusal) => bail!("three tickets in a row expired unused: {refusal:?}"),
            }
        }
    };

    let refusal = eventually(
        "the expired ticket is refused",
        Duration::from_secs(10),
        || {
            let alice = &alice;
            let ticket = &ticket;
            async move {
                match alice.events_by_query(&query(ticket, None), &[]).await? {
                    Ok(_still_open) => Ok(None),
                    Err(refusal) => Ok(Some(refusal)),
                }
            }
        },
    )
    .await?;
    refusal.problem(401, ProblemCode::Unauthorized)?;
    ensure!(
        Utc::now() >= ticket.expires_at - chrono::Duration::seconds(1),
        "refused at {}, before its expires_at {}",
        Utc::now(),
        ticket.expires_at
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_opened_by_a_ticket_ends_when_the_token_it_was_issued_for_expires()
-> anyhow::Result<()> {
    const TOKEN_SECS: u64 = 3;
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let exp = now() + TOKEN_SECS;
    let token_expires_at =
        DateTime::<Utc>::from_timestamp(i64::try_from(exp)?, 0).context("a token expiry")?;
    let short_lived = alice.with_token(token(&alice.id, exp)?);
    let ticket = issue(&short_lived).await?;
    ensure!(
        ticket.expires_at <= token_expires_at,
        "the ticket ({}) outlives the token it was issued for ({token_expires_at})",
        ticket.expires_at
    );

    let mut stream = open(&alice, &ticket, None).await?;
    let solo = alice.connect().await?.live_session()?.clone();
    stream
        .wait_for("her solo session", |e| {
            e.session().is_ok_and(|s| s.id == solo.id)
        })
        .await?;
    let (_, end) = stream.until_end(Duration::from_secs(15)).await;
    let ended = Utc::now();
    ensure!(
        end == StreamEnd::Clean,
        "the stream ends cleanly at the token's expiry: {end:?}"
    );
    ensure!(
        ended >= token_expires_at - chrono::Duration::seconds(1),
        "the stream ended at {ended}, before the token expired at {token_expires_at}"
    );
    // The ticket dies with the token (give or take the second both round to).
    let refusal = eventually(
        "the ticket is refused once its token expired",
        Duration::from_secs(5),
        || {
            let alice = &alice;
            let ticket = &ticket;
            async move {
                match alice.events_by_query(&query(ticket, None), &[]).await? {
                    Ok(_still_open) => Ok(None),
                    Err(refusal) => Ok(Some(refusal)),
                }
            }
        },
    )
    .await?;
    refusal.problem(401, ProblemCode::Unauthorized)?;
    let refused_at = Utc::now();
    ensure!(
        refused_at <= token_expires_at + SLACK,
        "the ticket still opened streams at {refused_at}, its token expired at {token_expires_at}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_issued_by_one_replica_opens_a_stream_on_the_other_and_only_its_hash_is_stored()
-> anyhow::Result<()> {
    let mut world = spawn_world().await?;
    let other = world.spawn_game_replica().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    world.chatting(&[&alice, &bob]).await?;
    let from_first = issue(&alice).await?;
    let from_other = issue(&alice.via(&other)).await?;
    let mut on_other = open(&alice.via(&other), &from_first, None).await?;
    let mut on_first = open(&alice, &from_other, None).await?;

    let invite = alice.connect().await?.open_prompt()?.clone();
    on_other
        .wait_for(
            "the invite, on the replica that did not issue the ticket",
            |e| e.prompt().is_ok_and(|p| p.id == invite.id),
        )
        .await?;
    on_first
        .wait_for(
            "the invite, on the first replica with the other's ticket",
            |e| e.prompt().is_ok_and(|p| p.id == invite.id),
        )
        .await?;

    let prefix = format!("{}:ticket:", world.game_key_prefix());
    let stored = world.stored_keys().await?;
    let tickets: Vec<_> = stored
        .iter()
        .filter(|key| key.name.starts_with(&prefix))
        .collect();
    ensure!(
        tickets.len() == 2,
        "one key per ticket under {prefix}: {tickets:#?}"
    );
    for key in &tickets {
        let hash = &key.name[prefix.len()..];
        ensure!(
            hash.len() == 64
                && hash
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "a ticket's key ends in a SHA-256 in hex: {key:?}"
        );
        let max_ms = DEFAULT_TICKET_TTL_SECS * 1000;
        ensure!(
            key.pttl_ms > 0 && key.pttl_ms <= max_ms,
            "a ticket's key lives at most {DEFAULT_TICKET_TTL_SECS}s: {key:?}"
        );
    }
    for key in &stored {
        for ticket in [&from_first.ticket, &from_other.ticket] {
            ensure!(
                !key.name.contains(ticket.as_str())
                    && !key
                        .value
                        .as_deref()
                        .unwrap_or_default()
                        .contains(ticket.as_str()),
                "a ticket is stored in the clear: {key:?}"
            );
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_ticket_appears_in_the_game_services_logs_even_at_trace_level() -> anyhow::Result<()> {
    let mut world = spawn_world_with(WorldOptions::default().game_var("RUST_LOG", "trace")).await?;
    let other = world.spawn_game_replica().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    let bob_bearer = format!("Bearer {}", token("bob", now() + 600)?);
    let ticket = issue(&alice).await?;
    let other_ticket = issue(&alice.via(&other)).await?;
    let tickets = [&ticket.ticket, &other_ticket.ticket];

    // Every way a ticket reaches a replica: accepted, with a resume id, on the replica that
    // did not issue it, beside another player's token, with a malformed resume id.
    let mut streams = vec![
        open(&alice, &ticket, None).await?,
        open(&alice.via(&other), &ticket, None).await?,
        open(&alice, &other_ticket, Some("0-0")).await?,
    ];
    refused(
        &bob,
        &query(&ticket, None),
        &[("Authorization", &bob_bearer)],
    )
    .await?
    .problem(401, ProblemCode::Unauthorized)?;
    refused(&alice, &query(&ticket, Some("not-an-id")), &[])
        .await?
        .problem(400, ProblemCode::InvalidRequest)?;
    let solo = alice.connect().await?.live_session()?.clone();
    for stream in &mut streams {
        stream
            .wait_for("her solo session", |e| {
                e.session().is_ok_and(|s| s.id == solo.id)
            })
            .await?;
    }

    // The access log has a line for each of those requests (so the check below is not
    // vacuous): 2 tickets issued, 3 streams opened, 2 refused.
    let logs = eventually(
        "the access log lines of every ticket request",
        Duration::from_secs(5),
        || {
            let world = &world;
            async move {
                let lines = world.game_output()?;
                let served = |path: &str| {
                    lines
                        .iter()
                        .filter(|line| {
                            // The path alone, or (a leak the check below names) with its query.
                            line.contains(&format!("path={path}}}"))
                                || line.contains(&format!("path={path}?"))
                        })
                        .filter(|line| line.contains("served"))
                        .count()
                };
                let complete = served("/v1/events/tickets") >= 2 && served("/v1/events") >= 5;
                Ok(complete.then_some(lines))
            }
        },
    )
    .await
    .with_context(|| world.game_log_tails())?;
    ensure!(
        logs.iter().any(|line| line.contains("TRACE")),
        "the game services log at trace level: {:#?}",
        &logs[..logs.len().min(20)]
    );
    let leaks: Vec<&String> = logs
        .iter()
        .filter(|line| {
            tickets.iter().any(|t| line.contains(t.as_str())) || line.contains("ticket=")
        })
        .collect();
    ensure!(leaks.is_empty(), "a ticket in the logs: {leaks:#?}");
    Ok(())
}
