//! A ticket lives `EVENT_TICKET_TTL_SECS`, and its stream no longer than the token it came from.

use super::*;

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

    alice
        .expired_ticket_is_refused(Service::Game, &ticket)
        .await
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
    let refusal = refused_within(
        &alice,
        &ticket,
        "the ticket is refused once its token expired",
        Duration::from_secs(5),
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
