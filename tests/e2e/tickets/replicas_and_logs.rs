//! Any replica redeems a ticket another issued, only its hash is stored, and no log shows it.

use super::*;

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

    // 2 tickets issued, 3 streams opened, 2 refused: none of it in the logs.
    let tickets: Vec<&str> = tickets.iter().map(|t| t.as_str()).collect();
    world
        .assert_no_ticket_logged(Service::Game, &tickets, 2, 5)
        .await
}
