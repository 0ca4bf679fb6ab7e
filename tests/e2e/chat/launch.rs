//! Launching a game from a conversation: the caller gets a waiting lobby, the eligible
//! participants join prompts, the others nothing; every failure of the game side reaches
//! the chat user as a clear problem.

use anyhow::ensure;
use shared_types::{
    game::{PlayerState, PromptKind, SessionState},
    problem::ProblemCode,
};

use super::announced_once;
use crate::helpers::{StateExt, spawn_world};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launching_from_a_chat_invites_the_eligible_participants_only_and_is_announced_there()
-> anyhow::Result<()> {
    let world = spawn_world().await?;
    let [alice, bob, carol, dave, erin, frank] =
        ["alice", "bob", "carol", "dave", "erin", "frank"].map(|id| world.player(id));
    let (alice, bob, carol, dave, erin, frank) = (alice?, bob?, carol?, dave?, erin?, frank?);
    for person in [&alice, &bob, &carol, &dave, &erin, &frank] {
        person.set_presence("available").await?;
    }
    let conversation = alice
        .open_conversation(&[&bob, &carol, &dave, &erin, &frank])
        .await?;
    // bob answers; carol never does (one-sided); dave answers, then goes offline; erin
    // answers, then blocks alice; frank answers, then is busy.
    for person in [&alice, &bob, &dave, &erin, &frank] {
        person.post_message(conversation, "who's in?").await?;
    }
    dave.set_presence("offline").await?;
    erin.block(&alice).await?;
    frank.set_presence("busy").await?;

    let reply = alice.launch_game(conversation, None).await?;
    ensure!(reply.status.as_u16() == 201, "{reply:?}");
    let host: PlayerState = reply.json()?;
    let lobby = host.live_session()?.clone();
    ensure!(lobby.state == SessionState::Waiting && lobby.host.as_str() == "alice");
    ensure!(
        lobby.pending.iter().map(|p| p.as_str()).eq(["bob"]),
        "only bob was eligible: {lobby:?}"
    );
    let prompt = bob.me().await?.open_prompt()?.clone();
    ensure!(prompt.kind == PromptKind::Join && prompt.session_id == Some(lobby.id));
    for skipped in [&carol, &dave, &erin, &frank] {
        let state = skipped.me().await?;
        ensure!(
            state.prompt.is_none(),
            "{} was skipped: {state:?}",
            skipped.id
        );
    }
    announced_once(&bob, conversation, lobby.id).await?;
    let joined = bob.accept(prompt.id, None).await?;
    ensure!(joined.live_session()?.state == SessionState::Active);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launching_again_or_for_an_unknown_mode_or_with_nobody_to_invite_is_a_clear_problem()
-> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    let carol = world.player("carol")?;
    let conversation = world.chatting(&[&alice, &bob]).await?;

    alice
        .launch_game(conversation, Some("raid"))
        .await?
        .problem(400, ProblemCode::UnknownMode)?;
    ensure!(alice.me().await?.session.is_none(), "nothing changed");

    let lobby = alice.launch_game(conversation, None).await?;
    ensure!(lobby.status.as_u16() == 201, "{lobby:?}");
    alice
        .launch_game(conversation, None)
        .await?
        .problem(409, ProblemCode::AlreadyPlaying)?;

    // carol only opened a conversation with bob: nobody in it talks with her.
    let lonely = carol.open_conversation(&[&bob]).await?;
    carol
        .launch_game(lonely, None)
        .await?
        .problem(409, ProblemCode::NobodyToInvite)?;
    ensure!(carol.me().await?.session.is_none());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_game_service_down_launching_is_a_503_game_unavailable() -> anyhow::Result<()> {
    let mut world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    let conversation = world.chatting(&[&alice, &bob]).await?;
    world.signal_game("KILL")?;
    world
        .wait_game_exit(std::time::Duration::from_secs(10))
        .await?;
    let reply = alice.launch_game(conversation, None).await?;
    reply.problem(503, ProblemCode::GameUnavailable)?;
    ensure!(reply.headers.contains_key("retry-after"), "{reply:?}");
    world.restart_game().await?;
    let lobby = alice.launch_game(conversation, None).await?;
    ensure!(
        lobby.status.as_u16() == 201,
        "works again once it is back: {lobby:?}"
    );
    Ok(())
}
