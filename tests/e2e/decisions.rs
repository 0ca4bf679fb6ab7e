//! Connecting again returns the same state; answers are final.

use reqwest::Method;
use shared_types::{
    game::{PlayerState, Reason, SessionState},
    problem::ProblemCode,
};

use crate::helpers::{Player, Service, StateExt, spawn_world};

async fn answer_raw(
    player: &Player,
    prompt: uuid::Uuid,
    verb: &str,
) -> anyhow::Result<crate::helpers::Reply> {
    player
        .raw(
            Service::Game,
            Method::POST,
            &format!("/v1/prompts/{prompt}/{verb}"),
            None,
        )
        .await
}

/// The parts of a state that must not move; join tokens may be re-issued.
fn essence(state: &PlayerState) -> String {
    let prompt = state.prompt.as_ref().map(|p| p.id);
    let session = state.session.as_ref().map(|s| {
        (
            s.id,
            s.kind,
            s.state,
            s.players.clone(),
            s.pending.clone(),
            s.reason,
        )
    });
    format!("{prompt:?} {session:?} degraded={}", state.degraded)
}

#[tokio::test]
async fn reconnecting_returns_the_same_prompt_and_the_same_session() -> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    let carol = world.player("carol")?;
    world.chatting(&[&alice, &bob]).await?;
    carol.set_presence("available").await?;

    let first = alice.connect().await?;
    let second = alice.connect().await?;
    assert_eq!(
        first.open_prompt()?,
        second.open_prompt()?,
        "one prompt, asked once"
    );

    let lobby = alice.accept(first.open_prompt()?.id, None).await?;
    let again = alice.connect().await?;
    assert_eq!(essence(&again), essence(&lobby));

    let join = bob.connect().await?.open_prompt()?.clone();
    assert_eq!(bob.connect().await?.open_prompt()?.id, join.id);
    let joined = bob.accept(join.id, None).await?;
    assert_eq!(essence(&bob.connect().await?), essence(&joined));
    assert_eq!(
        alice.connect().await?.live_session()?.state,
        SessionState::Active
    );

    let solo = carol.connect().await?;
    let solo_again = carol.connect().await?;
    assert_eq!(
        solo.solo(Reason::NoPartner)?.id,
        solo_again.solo(Reason::NoPartner)?.id,
        "never a second session"
    );
    Ok(())
}

#[tokio::test]
async fn an_accepted_prompt_accepts_again_harmlessly_and_refuses_a_rejection() -> anyhow::Result<()>
{
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    world.chatting(&[&alice, &bob]).await?;
    let prompt = alice.connect().await?.open_prompt()?.clone();
    let accepted = alice.accept(prompt.id, None).await?;

    let twice = alice.accept(prompt.id, None).await?;
    assert_eq!(essence(&twice), essence(&accepted));

    answer_raw(&alice, prompt.id, "reject")
        .await?
        .problem(409, ProblemCode::AlreadyAnswered)?;
    assert_eq!(essence(&alice.me().await?), essence(&accepted));
    Ok(())
}

#[tokio::test]
async fn a_rejected_prompt_rejects_again_harmlessly_and_refuses_an_acceptance() -> anyhow::Result<()>
{
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    world.chatting(&[&alice, &bob]).await?;
    let prompt = alice.connect().await?.open_prompt()?.clone();
    let rejected = alice.reject(prompt.id).await?;
    rejected.solo(Reason::Rejected)?;

    let twice = alice.reject(prompt.id).await?;
    assert_eq!(essence(&twice), essence(&rejected));

    answer_raw(&alice, prompt.id, "accept")
        .await?
        .problem(409, ProblemCode::AlreadyAnswered)?;
    assert_eq!(essence(&alice.me().await?), essence(&rejected));
    Ok(())
}

#[tokio::test]
async fn a_join_prompt_answered_once_is_final_too() -> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    world.chatting(&[&alice, &bob]).await?;
    let invite = alice.connect().await?.open_prompt()?.clone();
    alice.accept(invite.id, None).await?;
    let join = bob.connect().await?.open_prompt()?.clone();
    let joined = bob.accept(join.id, None).await?;

    assert_eq!(essence(&bob.accept(join.id, None).await?), essence(&joined));
    answer_raw(&bob, join.id, "reject")
        .await?
        .problem(409, ProblemCode::AlreadyAnswered)?;
    assert_eq!(essence(&bob.me().await?), essence(&joined));
    assert_eq!(
        alice.me().await?.live_session()?.state,
        SessionState::Active
    );
    Ok(())
}
