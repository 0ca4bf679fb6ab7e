//! Reconnecting with `Last-Event-ID` (or `?last_event_id=`) replays exactly what followed that
//! id, on any IM replica; a malformed id is a 400.

use anyhow::ensure;
use reqwest::Method;
use shared_types::problem::ProblemCode;

use super::{event_id, expect_conversation, expect_message, im_stream, opened, refused};
use crate::helpers::{Service, SseEvent, WorldOptions, spawn_world, spawn_world_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_to_the_other_im_replica_replays_exactly_the_events_after_the_id()
-> anyhow::Result<()> {
    let mut world = spawn_world().await?;
    let other = world.spawn_im_replica().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    let mut live = im_stream(&alice).await?;

    let conversation = alice.open_conversation(&[&bob]).await?;
    alice.post_message(conversation, "one").await?;
    bob.post_message(conversation, "two").await?;
    alice.post_message(conversation, "three").await?;
    let seen = [
        expect_conversation(&mut live, conversation, false).await?,
        expect_message(&mut live, conversation, &alice, "one").await?,
        expect_message(&mut live, conversation, &bob, "two").await?,
        expect_message(&mut live, conversation, &alice, "three").await?,
    ];

    // By the header, on the replica that did not serve the first stream.
    let first = event_id(&seen[0])?;
    let mut by_header = alice.via(&other).stream(Service::Im, Some(first)).await?;
    let mut replayed = Vec::new();
    for _ in &seen[1..] {
        replayed.push(by_header.next_event("a replayed event").await?);
    }
    ensure!(
        replayed == seen[1..],
        "after {first}: exactly the events after it, with their ids and data: {replayed:#?}"
    );
    // Nothing else was replayed: the next event is the next one posted (relayed live from
    // the first replica to the other).
    bob.post_message(conversation, "four").await?;
    let four = expect_message(&mut live, conversation, &bob, "four").await?;
    let next = by_header.next_event("the next message, live").await?;
    ensure!(next == four, "after the replay, the live event: {next:?}");

    // By the query, again on the other replica, with the bearer token.
    let second = event_id(&seen[1])?;
    let authorization = alice.authorization();
    let mut by_query = opened(
        &alice.via(&other),
        &format!("last_event_id={second}"),
        &[("Authorization", &authorization)],
    )
    .await?;
    let expected: Vec<SseEvent> = seen[2..].iter().cloned().chain([four]).collect();
    let mut replayed = Vec::new();
    for _ in &expected {
        replayed.push(by_query.next_event("a replayed event").await?);
    }
    ensure!(
        replayed == expected,
        "after {second} by the query: exactly the events after it: {replayed:#?}"
    );
    alice.post_message(conversation, "five").await?;
    let five = expect_message(&mut live, conversation, &alice, "five").await?;
    let next = by_query.next_event("the next message, live").await?;
    ensure!(next == five, "after the replay, the live event: {next:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_last_event_id_is_a_400_problem_by_header_and_by_query() -> anyhow::Result<()> {
    let mut world = spawn_world().await?;
    let other = world.spawn_im_replica().await?;
    let alice = world.player("alice")?;
    let authorization = alice.authorization();
    for player in [alice.clone(), alice.via(&other)] {
        for bad in [
            "not-an-id",
            "12-x",
            "-1",
            "18446744073709551615-18446744073709551615",
        ] {
            player
                .raw_with_header(
                    Service::Im,
                    Method::GET,
                    "/v1/events",
                    ("Last-Event-ID", bad),
                )
                .await?
                .problem(400, ProblemCode::InvalidRequest)
                .map_err(|e| e.context(format!("Last-Event-ID: {bad}")))?;
            refused(
                &player,
                &format!("last_event_id={bad}"),
                &[("Authorization", &authorization)],
            )
            .await?
            .problem(400, ProblemCode::InvalidRequest)
            .map_err(|e| e.context(format!("?last_event_id={bad}")))?;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_far_behind_is_replayed_every_kept_event_after_its_id() -> anyhow::Result<()> {
    // Past the kept count (the contract's newest 256): Redis trims streams approximately and
    // keeps a few more, all of which a replay must send (a COUNT of 256 dropped the newest).
    const KEPT: usize = 256;
    const POSTS: usize = 300;
    let world = spawn_world_with(WorldOptions::default().im_var("RATE_LIMIT_PER_SEC", "0")).await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    let conversation = alice.open_conversation(&[&bob]).await?;
    for n in 0..POSTS {
        alice.post_message(conversation, &format!("m{n}")).await?;
    }
    let newest = format!("m{}", POSTS - 1);
    let mut replay = bob.stream(Service::Im, Some("0")).await?;
    let mut replayed = 0;
    loop {
        let event = replay.next_event("the rest of bob's kept events").await?;
        replayed += 1;
        if event.event == "message" && event.message()?.text == newest {
            break;
        }
    }
    ensure!(
        replayed >= KEPT,
        "at least the newest {KEPT} events, up to the newest message: {replayed}"
    );
    Ok(())
}
