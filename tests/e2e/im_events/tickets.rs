//! Tickets of the IM service: one replica's ticket opens the stream on the other; another
//! user's, an unknown and an expired ticket are 401; a `service` token is 403; no log shows a
//! ticket.

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use reqwest::Method;
use shared_types::problem::ProblemCode;

use super::{expect_conversation, opened, refused};
use crate::helpers::{Service, WorldOptions, spawn_world, spawn_world_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_from_one_im_replica_opens_the_users_stream_on_the_other() -> anyhow::Result<()> {
    let mut world = spawn_world().await?;
    let other = world.spawn_im_replica().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    let carol = world.player("carol")?;
    let from_first = alice.event_ticket(Service::Im).await?;
    let from_other = alice.via(&other).event_ticket(Service::Im).await?;
    let mut on_other = opened(
        &alice.via(&other),
        &format!("ticket={}", from_first.ticket),
        &[],
    )
    .await?;
    let mut on_first = opened(&alice, &format!("ticket={}", from_other.ticket), &[]).await?;

    // Something alice does not hear of, then something she does: her stream's first event is
    // the second (so the ticket opened alice's stream, not someone else's).
    bob.open_conversation(&[&carol]).await?;
    let hers = carol.open_conversation(&[&alice]).await?;
    expect_conversation(&mut on_other, hers, false)
        .await
        .context("on the replica that did not issue the ticket")?;
    expect_conversation(&mut on_first, hers, false)
        .await
        .context("on the first replica, with the other's ticket")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_and_unknown_im_tickets_are_401_and_a_service_token_is_403()
-> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    let alice_ticket = alice.event_ticket(Service::Im).await?;
    let bob_ticket = bob.event_ticket(Service::Im).await?;
    let bob_bearer = bob.authorization();

    // bob's token beside alice's ticket: refused, though each is valid on its own.
    refused(
        &bob,
        &format!("ticket={}", alice_ticket.ticket),
        &[("Authorization", &bob_bearer)],
    )
    .await?
    .problem(401, ProblemCode::Unauthorized)
    .context("another user's ticket")?;
    let invented = "q3Vb0m8yXc1Zp9RkT4sLwE7uHn2JfA6dGiK5oYtBvQe";
    ensure!(
        invented.len() == alice_ticket.ticket.len(),
        "{alice_ticket:?}"
    );
    // A game-service ticket is not an IM ticket: each service keeps its own.
    let game_ticket = alice.event_ticket(Service::Game).await?;
    for (what, query) in [
        ("an unknown ticket", format!("ticket={invented}")),
        ("an empty ticket", "ticket=".to_owned()),
        (
            "a game-service ticket",
            format!("ticket={}", game_ticket.ticket),
        ),
    ] {
        refused(&alice, &query, &[])
            .await?
            .problem(401, ProblemCode::Unauthorized)
            .context(what)?;
    }

    // bob's token beside his own ticket opens his stream; alice's ticket still opens hers.
    let mut bob_stream = opened(
        &bob,
        &format!("ticket={}", bob_ticket.ticket),
        &[("Authorization", &bob_bearer)],
    )
    .await?;
    let mut alice_stream = opened(&alice, &format!("ticket={}", alice_ticket.ticket), &[]).await?;
    let carol = world.player("carol")?;
    let bobs = bob.open_conversation(&[&carol]).await?;
    let alices = alice.open_conversation(&[&carol]).await?;
    expect_conversation(&mut bob_stream, bobs, false).await?;
    expect_conversation(&mut alice_stream, alices, false)
        .await
        .context("alice's ticket streams alice's events, not bob's")?;

    // A service token: no ticket, no stream.
    let service = format!("Bearer {}", world.service_token()?);
    for (method, path) in [
        (Method::POST, "/v1/events/tickets"),
        (Method::GET, "/v1/events"),
    ] {
        world
            .raw(Service::Im, method, path, Some(&service), None)
            .await?
            .problem(403, ProblemCode::Forbidden)
            .with_context(|| format!("a service token on {path}"))?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_im_ticket_opens_streams_until_event_ticket_ttl_secs_and_then_is_refused_with_401()
-> anyhow::Result<()> {
    const TTL_SECS: u64 = 1;
    let world =
        spawn_world_with(WorldOptions::default().im_var("EVENT_TICKET_TTL_SECS", TTL_SECS)).await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    // Accepted while it lives. A refusal only counts once a whole TTL has passed since
    // asking for it (a loaded machine may be that slow): then try a fresh ticket.
    let (ticket, mut stream) = {
        let mut attempt = 1;
        loop {
            let asked = Instant::now();
            let ticket = alice.event_ticket(Service::Im).await?;
            let query = format!("ticket={}", ticket.ticket);
            match alice.stream_by_query(Service::Im, &query, &[]).await? {
                Ok(stream) => break (ticket, stream),
                Err(refusal) if asked.elapsed() < Duration::from_secs(TTL_SECS) => {
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
    let hers = alice.open_conversation(&[&bob]).await?;
    expect_conversation(&mut stream, hers, false).await?;

    alice.expired_ticket_is_refused(Service::Im, &ticket).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_ticket_appears_in_the_im_services_logs_even_at_trace_level() -> anyhow::Result<()> {
    let mut world = spawn_world_with(WorldOptions::default().im_var("RUST_LOG", "trace")).await?;
    let other = world.spawn_im_replica().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    let bob_bearer = bob.authorization();
    let ticket = alice.event_ticket(Service::Im).await?;
    let other_ticket = alice.via(&other).event_ticket(Service::Im).await?;
    let tickets = [&ticket.ticket, &other_ticket.ticket];

    // Every way a ticket reaches a replica: accepted, on the replica that did not issue it,
    // with a resume id, beside another user's token, with a malformed resume id.
    let query = format!("ticket={}", ticket.ticket);
    let mut streams = vec![
        opened(&alice, &query, &[]).await?,
        opened(&alice.via(&other), &query, &[]).await?,
        opened(
            &alice,
            &format!("ticket={}&last_event_id=0-0", other_ticket.ticket),
            &[],
        )
        .await?,
    ];
    refused(&bob, &query, &[("Authorization", &bob_bearer)])
        .await?
        .problem(401, ProblemCode::Unauthorized)?;
    refused(&alice, &format!("{query}&last_event_id=not-an-id"), &[])
        .await?
        .problem(400, ProblemCode::InvalidRequest)?;
    let hers = bob.open_conversation(&[&alice]).await?;
    for stream in &mut streams {
        expect_conversation(stream, hers, false).await?;
    }

    // 2 tickets issued, 3 streams opened, 2 refused: none of it in the logs.
    let tickets: Vec<&str> = tickets.iter().map(|t| t.as_str()).collect();
    world
        .assert_no_ticket_logged(Service::Im, &tickets, 2, 5)
        .await
}
