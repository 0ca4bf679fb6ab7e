//! Who counts as a partner: only available people in open, recent conversations.

use shared_types::game::{PromptKind, Reason, SessionKind};

use crate::helpers::{StateExt, names, sorted, spawn_world};

#[tokio::test]
async fn a_player_talking_to_nobody_gets_a_solo_session_at_once() -> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    alice.set_presence("available").await?;

    let state = alice.connect().await?;

    let session = state.solo(Reason::NoPartner)?;
    assert_eq!(sorted(&session.players), ["alice"]);
    assert_eq!(session.host.as_str(), "alice");
    assert!(session.pending.is_empty(), "{session:#?}");
    assert!(!session.join_token.is_empty(), "{session:#?}");
    assert!(!state.degraded, "{state:#?}");
    Ok(())
}

#[tokio::test]
async fn busy_away_and_offline_partners_and_closed_conversations_do_not_count() -> anyhow::Result<()>
{
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let busy = world.player("bob")?;
    let away = world.player("carol")?;
    let offline = world.player("dave")?;
    let closed = world.player("erin")?;
    let eligible = world.player("frank")?;
    alice.set_presence("available").await?;
    busy.set_presence("busy").await?;
    away.set_presence("away").await?;
    offline.set_presence("offline").await?;
    closed.set_presence("available").await?;
    eligible.set_presence("available").await?;
    for partner in [&busy, &away, &offline, &closed, &eligible] {
        let conversation = alice.talk_with(partner).await?;
        if partner.id == closed.id {
            alice.close_conversation(conversation).await?;
        }
    }

    let state = alice.connect().await?;

    let prompt = state.open_prompt()?;
    assert_eq!(prompt.kind, PromptKind::Invite);
    assert_eq!(
        sorted(&prompt.candidates),
        names(&[&eligible]),
        "{prompt:#?}"
    );
    assert!(state.session.is_none(), "{state:#?}");
    Ok(())
}

#[tokio::test]
async fn a_player_whose_only_partners_are_unavailable_plays_solo() -> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    let carol = world.player("carol")?;
    alice.set_presence("available").await?;
    bob.set_presence("busy").await?;
    carol.set_presence("available").await?;
    alice.talk_with(&bob).await?;
    let with_carol = alice.talk_with(&carol).await?;
    carol.close_conversation(with_carol).await?;

    let state = alice.connect().await?;

    let session = state.solo(Reason::NoPartner)?;
    assert_eq!(session.kind, SessionKind::Solo);
    Ok(())
}

#[tokio::test]
async fn an_offline_player_talks_to_nobody_and_plays_solo() -> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    world.chatting(&[&alice, &bob]).await?;
    alice.set_presence("offline").await?;

    let state = alice.connect().await?;

    state.solo(Reason::NoPartner)?;
    Ok(())
}
