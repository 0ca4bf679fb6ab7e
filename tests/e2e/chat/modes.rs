//! Modes through the real services: the session has the mode asked for, and however many
//! invitees race to join on two replicas, a session never has more players than its mode
//! allows; the others are told `full`.

use anyhow::ensure;
use futures_util::future::join_all;
use reqwest::Method;
use shared_types::{
    game::{PlayerState, Reason},
    problem::ProblemCode,
};

use crate::helpers::{Player, Service, StateExt, WorldOptions, spawn_world_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_joiners_racing_on_two_replicas_never_overfill_a_session_and_the_rest_hear_full()
-> anyhow::Result<()> {
    let mut world =
        spawn_world_with(WorldOptions::default().game_var("GAME_MODES", "duel:2,squad:3")).await?;
    let second = world.spawn_game_replica().await?;
    let host = world.player("host")?;
    let joiners: Vec<Player> = (0..8)
        .map(|i| world.player(&format!("joiner{i}")))
        .collect::<anyhow::Result<_>>()?;
    let mut everyone: Vec<&Player> = vec![&host];
    everyone.extend(joiners.iter());
    world.chatting(&everyone).await?;

    let unknown = host
        .raw(
            Service::Game,
            Method::POST,
            "/v1/connect",
            Some(r#"{"mode":"raid"}"#),
        )
        .await?
        .problem(400, ProblemCode::UnknownMode)?;
    ensure!(
        unknown
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("duel, squad")),
        "{unknown:?}"
    );
    ensure!(
        host.me().await?.prompt.is_none(),
        "an unknown mode changes nothing"
    );

    let invite = host.connect_mode("squad").await?.open_prompt()?.clone();
    ensure!(
        invite.mode == "squad" && invite.candidates.len() == 8,
        "{invite:?}"
    );
    let lobby = host.accept(invite.id, None).await?.live_session()?.clone();
    ensure!(lobby.mode == "squad");

    // Half the joiners through each replica, all at once.
    let routed: Vec<Player> = joiners
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if i % 2 == 0 {
                p.clone()
            } else {
                p.via(&second)
            }
        })
        .collect();
    let prompts: Vec<PlayerState> = join_all(routed.iter().map(Player::connect))
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let answers = join_all(routed.iter().zip(&prompts).map(|(p, state)| async move {
        let prompt = state.open_prompt()?.id;
        answer_until_decided(p, prompt).await
    }))
    .await;
    let mut joined = 0;
    for answer in answers {
        match answer? {
            Decided::Joined => joined += 1,
            Decided::Full => {}
        }
    }
    ensure!(joined == 2, "exactly the room there was: {joined} joined");
    let session = host.session(lobby.id).await?;
    ensure!(
        session.players.len() == 3 && session.pending.is_empty(),
        "{session:?}"
    );
    for joiner in &joiners {
        let state = joiner.me().await?;
        let inside = session.players.iter().any(|p| p.as_str() == joiner.id);
        ensure!(
            state.session.as_ref().is_some_and(|s| s.id == lobby.id) == inside
                && (inside || state.prompt.is_none()),
            "{}: {state:?}",
            joiner.id
        );
    }
    Ok(())
}

enum Decided {
    Joined,
    Full,
}

/// Accepts a join prompt, again after a 503 (the players were busy), until it is decided.
async fn answer_until_decided(player: &Player, prompt: uuid::Uuid) -> anyhow::Result<Decided> {
    let path = format!("/v1/prompts/{prompt}/accept");
    for _ in 0..20 {
        let reply = player.raw(Service::Game, Method::POST, &path, None).await?;
        match reply.status.as_u16() {
            200 => return Ok(Decided::Joined),
            409 => {
                let problem = reply.problem(409, ProblemCode::PromptClosed)?;
                let reason = serde_json::to_value(Reason::Full)?;
                let full = reason.as_str().unwrap_or("full");
                ensure!(
                    problem.detail.as_deref().is_some_and(|d| d.contains(full)),
                    "{}: closed for another reason: {problem:?}",
                    player.id
                );
                return Ok(Decided::Full);
            }
            503 => continue,
            other => anyhow::bail!("{}: unexpected {other}: {reply:?}", player.id),
        }
    }
    anyhow::bail!("{}: still busy after 20 tries", player.id)
}
