//! The IM service's "who is this user talking to" answer, on its own.

use std::time::Duration;

use reqwest::Method;
use shared_types::problem::ProblemCode;

use crate::helpers::{Service, WorldOptions, spawn_world, spawn_world_with};

/// The IM service keeps activity times in milliseconds: activities this far apart have a
/// defined order, closer ones may tie.
const TICK: Duration = Duration::from_millis(20);

fn partner_ids(response: &shared_types::im::PartnersResponse) -> Vec<&str> {
    response
        .partners
        .iter()
        .map(|p| p.user_id.as_str())
        .collect()
}

#[tokio::test]
async fn partners_are_available_people_in_open_conversations_newest_first() -> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    let carol = world.player("carol")?;
    let dave = world.player("dave")?;
    alice.set_presence("available").await?;
    bob.set_presence("available").await?;
    carol.set_presence("busy").await?;
    dave.set_presence("away").await?;
    let with_bob = alice.talk_with(&bob).await?;
    tokio::time::sleep(TICK).await;
    alice.talk_with(&carol).await?;
    tokio::time::sleep(TICK).await;
    alice.talk_with(&dave).await?;

    assert_eq!(partner_ids(&alice.partners(None).await?), ["bob"]);
    assert_eq!(
        partner_ids(&alice.partners(Some("available,busy")).await?),
        ["carol", "bob"],
        "newest activity first"
    );
    tokio::time::sleep(TICK).await;
    bob.post_message(with_bob, "still there?").await?;
    assert_eq!(
        partner_ids(&alice.partners(Some("available,busy")).await?),
        ["bob", "carol"],
        "a message is activity"
    );
    let answer = alice.partners(None).await?;
    assert_eq!(answer.user_id.as_str(), "alice");
    assert_eq!(answer.partners[0].conversation_id, with_bob);
    Ok(())
}

#[tokio::test]
async fn an_offline_user_and_a_closed_conversation_talk_to_nobody() -> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    let conversation = world.chatting(&[&alice, &bob]).await?;
    assert_eq!(partner_ids(&alice.partners(None).await?), ["bob"]);

    alice.set_presence("offline").await?;
    assert!(alice.partners(None).await?.partners.is_empty());

    alice.set_presence("available").await?;
    bob.close_conversation(conversation).await?;
    assert!(alice.partners(None).await?.partners.is_empty());
    Ok(())
}

#[tokio::test]
async fn partners_are_forbidden_to_other_players_and_open_to_services() -> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    let mallory = world.player("mallory")?;
    world.chatting(&[&alice, &bob]).await?;

    mallory
        .raw(Service::Im, Method::GET, "/v1/users/alice/partners", None)
        .await?
        .problem(403, ProblemCode::Forbidden)?;
    let service = format!("Bearer {}", world.service_token()?);
    let answer: shared_types::im::PartnersResponse = world
        .raw(
            Service::Im,
            Method::GET,
            "/v1/users/alice/partners",
            Some(&service),
            None,
        )
        .await?
        .ok()?
        .json()?;
    assert_eq!(partner_ids(&answer), ["bob"]);
    Ok(())
}

#[tokio::test]
async fn an_unknown_status_filter_is_a_400() -> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    alice
        .raw(
            Service::Im,
            Method::GET,
            "/v1/users/alice/partners?status=available,sleeping",
            None,
        )
        .await?
        .problem(400, ProblemCode::InvalidRequest)?;
    Ok(())
}

#[tokio::test]
async fn a_stale_conversation_does_not_count_until_a_message_revives_it() -> anyhow::Result<()> {
    let world = spawn_world_with(WorldOptions {
        im_active_window_secs: Some(1),
        ..WorldOptions::default()
    })
    .await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    let conversation = world.chatting(&[&alice, &bob]).await?;
    assert_eq!(partner_ids(&alice.partners(None).await?), ["bob"]);

    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert!(
        alice.partners(None).await?.partners.is_empty(),
        "a conversation idle for longer than the window is stale"
    );

    bob.post_message(conversation, "hello again").await?;
    assert_eq!(partner_ids(&alice.partners(None).await?), ["bob"]);
    Ok(())
}
