//! A ticket opens its own player's stream and replays like the header; anything else is refused.

use super::*;

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
