//! Who may reach whom, on the real binaries: talking takes two, blocks are obeyed and never
//! revealed, and every per-user limit refuses past its bound with its problem `type` and
//! changes nothing.

use std::time::Duration;

use anyhow::{Context, ensure};
use reqwest::Method;
use shared_types::{
    game::Reason,
    im::{Conversation, ConversationList},
    problem::ProblemCode,
};

use crate::helpers::{
    Player, Service, StateExt, StreamEnd, WorldOptions, spawn_world, spawn_world_with,
};

async fn presence_of(viewer: &Player, user: &Player) -> anyhow::Result<u16> {
    let path = format!("/v1/users/{}/presence", user.id);
    Ok(viewer
        .raw(Service::Im, Method::GET, &path, None)
        .await?
        .status
        .as_u16())
}

async fn conversations(player: &Player) -> anyhow::Result<Vec<Conversation>> {
    let list: ConversationList = player
        .raw(Service::Im, Method::GET, "/v1/conversations", None)
        .await?
        .ok()?
        .json()?;
    Ok(list.conversations)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_sided_conversation_reveals_no_presence_and_plants_no_lobby() -> anyhow::Result<()> {
    let world = spawn_world().await?;
    let (alice, mallory) = (world.player("alice")?, world.player("mallory")?);
    for p in [&alice, &mallory] {
        p.set_presence("available").await?;
    }
    let conversation = mallory.open_conversation(&[&alice]).await?;
    mallory.post_message(conversation, "play with me").await?;
    ensure!(
        presence_of(&mallory, &alice).await? == 404,
        "one side posting reveals nothing"
    );
    ensure!(
        alice.partners(None).await?.partners.is_empty(),
        "alice talks to nobody"
    );
    // Mallory connects: nobody to invite, so no lobby can be planted in alice's next connect.
    mallory.connect().await?.solo(Reason::NoPartner)?;
    alice.connect().await?.solo(Reason::NoPartner)?;
    // Once alice answers, they talk.
    alice.post_message(conversation, "hi?").await?;
    ensure!(
        presence_of(&mallory, &alice).await? == 200,
        "both posted: presence is shared"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_user_is_no_partner_sees_no_presence_and_never_reaches_the_blocker()
-> anyhow::Result<()> {
    let world = spawn_world().await?;
    let (alice, bob) = (world.player("alice")?, world.player("bob")?);
    world.chatting(&[&alice, &bob]).await?;
    ensure!(presence_of(&bob, &alice).await? == 200);
    alice.block(&bob).await?;
    ensure!(
        presence_of(&bob, &alice).await? == 404,
        "as for any stranger"
    );
    alice.connect().await?.solo(Reason::NoPartner)?;
    bob.connect().await?.solo(Reason::NoPartner)?;
    // The block is not revealed: bob's new conversation is created as usual...
    let hidden = bob.open_conversation(&[&alice]).await?;
    bob.post_message(hidden, "why not?").await?;
    // ...but alice never sees it, nor its messages.
    let listed = conversations(&alice).await?;
    ensure!(listed.iter().all(|c| c.id != hidden), "{listed:#?}");
    let read = alice
        .raw(
            Service::Im,
            Method::GET,
            &format!("/v1/conversations/{hidden}/messages"),
            None,
        )
        .await?;
    read.problem(404, ProblemCode::NotFound)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_per_user_limit_refuses_past_its_bound_and_changes_nothing() -> anyhow::Result<()> {
    let world = spawn_world_with(
        WorldOptions::default()
            .im_var("IM_MAX_OPEN_CONVERSATIONS", 2)
            .im_var("IM_MESSAGES_KEPT", 3)
            .im_var("IM_MAX_BLOCKS", 2)
            .game_var("MAX_STREAMS_PER_PLAYER", 2),
    )
    .await?;
    let mallory = world.player("mallory")?;
    let others: Vec<Player> = (0..4)
        .map(|i| world.player(&format!("user-{i}")))
        .collect::<anyhow::Result<_>>()?;

    // Open conversations per user.
    let first = mallory.open_conversation(&[&others[0]]).await?;
    mallory.open_conversation(&[&others[1]]).await?;
    let before = conversations(&mallory).await?.len();
    let body = serde_json::json!({ "participants": [others[2].id] }).to_string();
    mallory
        .raw(Service::Im, Method::POST, "/v1/conversations", Some(&body))
        .await?
        .problem(409, ProblemCode::ConversationLimit)?;
    ensure!(
        conversations(&mallory).await?.len() == before,
        "nothing was created"
    );

    // Messages kept per conversation: the oldest are dropped.
    for i in 0..5 {
        mallory.post_message(first, &format!("message {i}")).await?;
    }
    let kept: serde_json::Value = mallory
        .raw(
            Service::Im,
            Method::GET,
            &format!("/v1/conversations/{first}/messages"),
            None,
        )
        .await?
        .ok()?
        .json()?;
    let texts: Vec<&str> = kept
        .as_array()
        .or_else(|| kept["messages"].as_array())
        .context("a list of messages")?
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    ensure!(
        texts == ["message 2", "message 3", "message 4"],
        "{texts:?}"
    );

    // Blocks per user.
    mallory.block(&others[0]).await?;
    mallory.block(&others[1]).await?;
    mallory
        .raw(
            Service::Im,
            Method::PUT,
            &format!("/v1/blocks/{}", others[2].id),
            None,
        )
        .await?
        .problem(409, ProblemCode::BlockLimit)?;
    let blocks: serde_json::Value = mallory
        .raw(Service::Im, Method::GET, "/v1/blocks", None)
        .await?
        .ok()?
        .json()?;
    ensure!(
        blocks["blocks"].as_array().map(Vec::len) == Some(2),
        "{blocks}"
    );

    // Partners returned: `limit` is bounded.
    mallory
        .raw(
            Service::Im,
            Method::GET,
            "/v1/users/mallory/partners?limit=101",
            None,
        )
        .await?
        .problem(400, ProblemCode::InvalidRequest)?;

    // Event streams per player: a third stream closes the oldest.
    let mut oldest = mallory.events(None).await?;
    let _second = mallory.events(None).await?;
    let _third = mallory.events(None).await?;
    let (_, end) = oldest.until_end(Duration::from_secs(10)).await;
    ensure!(
        end == StreamEnd::Clean,
        "the oldest stream is closed: {end:?}"
    );
    Ok(())
}
