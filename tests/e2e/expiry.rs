//! Unanswered invitations expire after `INVITE_TTL_SECS` and count as rejections.

use std::time::Duration;

use chrono::Utc;
use reqwest::Method;
use shared_types::{
    game::{PlayerState, Reason, SessionKind},
    problem::ProblemCode,
};

use crate::helpers::{Player, Service, StateExt, WorldOptions, eventually, spawn_world_with};

/// Short, so the suite stays fast; long enough to set a scenario up before it runs out.
const TTL_SECS: u64 = 2;
/// The TTL plus the expiry sweep (200 ms by default) plus slack for a loaded machine.
const EXPIRY_LIMIT: Duration = Duration::from_secs(TTL_SECS + 5);

fn short_ttl() -> WorldOptions {
    WorldOptions {
        invite_ttl_secs: TTL_SECS,
        ..WorldOptions::default()
    }
}

/// Waits until the player's session is solo (whatever the reason) and returns the state.
async fn until_solo(player: &Player) -> anyhow::Result<PlayerState> {
    eventually(
        &format!("{}'s session turning solo", player.id),
        EXPIRY_LIMIT,
        || async {
            let state = player.me().await?;
            let solo = state
                .session
                .as_ref()
                .is_some_and(|s| s.kind == SessionKind::Solo);
            Ok(solo.then_some(state))
        },
    )
    .await
}

#[tokio::test]
async fn an_unanswered_invite_prompt_expires_into_a_solo_session() -> anyhow::Result<()> {
    let world = spawn_world_with(short_ttl()).await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    world.chatting(&[&alice, &bob]).await?;
    let before = Utc::now();
    let prompt = alice.connect().await?.open_prompt()?.clone();
    let ttl = chrono::Duration::seconds(i64::try_from(TTL_SECS)?);
    let slack = chrono::Duration::seconds(1);
    assert!(
        prompt.expires_at > before && prompt.expires_at <= Utc::now() + ttl + slack,
        "expires_at {} should be about {TTL_SECS}s after {before}",
        prompt.expires_at
    );

    let state = until_solo(&alice).await?;

    state.solo(Reason::Expired)?;
    alice
        .raw(
            Service::Game,
            Method::POST,
            &format!("/v1/prompts/{}/accept", prompt.id),
            None,
        )
        .await?
        .problem(409, ProblemCode::PromptClosed)?;
    Ok(())
}

#[tokio::test]
async fn an_invitee_who_never_answers_lets_the_hosts_lobby_expire() -> anyhow::Result<()> {
    let world = spawn_world_with(short_ttl()).await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    world.chatting(&[&alice, &bob]).await?;
    let invite = alice.connect().await?.open_prompt()?.clone();
    let lobby = alice.accept(invite.id, None).await?.live_session()?.clone();

    let state = until_solo(&alice).await?;

    assert_eq!(
        state.solo(Reason::Expired)?.id,
        lobby.id,
        "the lobby itself turns solo"
    );
    Ok(())
}

#[tokio::test]
async fn a_join_prompt_left_unanswered_expires_for_invitee_and_host() -> anyhow::Result<()> {
    let world = spawn_world_with(short_ttl()).await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    world.chatting(&[&alice, &bob]).await?;
    let invite = alice.connect().await?.open_prompt()?.clone();
    let lobby = alice.accept(invite.id, None).await?.live_session()?.clone();
    let join = bob.connect().await?.open_prompt()?.clone();
    assert!(join.expires_at <= Utc::now() + chrono::Duration::seconds(3));

    let bob_state = until_solo(&bob).await?;
    let alice_state = until_solo(&alice).await?;

    bob_state.solo(Reason::Expired)?;
    assert_eq!(alice_state.solo(Reason::Expired)?.id, lobby.id);
    bob.raw(
        Service::Game,
        Method::POST,
        &format!("/v1/prompts/{}/accept", join.id),
        None,
    )
    .await?
    .problem(409, ProblemCode::PromptClosed)?;
    Ok(())
}
