//! Every change of a player's prompt or session is pushed, and replayed after `Last-Event-ID`.

use std::time::Duration;

use shared_types::game::{PromptKind, SessionState};

use crate::helpers::{SseEvent, StateExt, spawn_world};

/// Silence that means "nothing more is coming" once the scenario is over.
const QUIET: Duration = Duration::from_millis(1000);

fn ids(events: &[SseEvent]) -> Vec<Option<&str>> {
    events.iter().map(|e| e.id.as_deref()).collect()
}

#[tokio::test]
async fn prompts_and_sessions_are_pushed_and_replayed_after_last_event_id() -> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    world.chatting(&[&alice, &bob]).await?;
    let mut stream = alice.events(None).await?;

    let invite = alice.connect().await?.open_prompt()?.clone();
    let pushed_prompt = stream
        .wait_for("her invite prompt", |e| {
            e.prompt().is_ok_and(|p| p.id == invite.id)
        })
        .await?;
    assert_eq!(pushed_prompt.prompt()?.kind, PromptKind::Invite);

    let lobby = alice.accept(invite.id, None).await?.live_session()?.clone();
    let join = bob.connect().await?.open_prompt()?.clone();
    bob.accept(join.id, None).await?;

    let mut seen = vec![pushed_prompt];
    seen.extend(stream.drain(QUIET).await?);
    let sessions: Vec<_> = seen.iter().filter_map(|e| e.session().ok()).collect();
    assert!(
        sessions
            .iter()
            .any(|s| s.id == lobby.id && s.state == SessionState::Waiting),
        "the lobby was pushed: {seen:#?}"
    );
    assert!(
        sessions
            .iter()
            .any(|s| s.id == lobby.id && s.state == SessionState::Active),
        "the session turning active was pushed: {seen:#?}"
    );
    assert!(
        seen.iter().all(|e| e.id.is_some()),
        "every event has an id: {seen:#?}"
    );
    let unique: std::collections::HashSet<_> = ids(&seen).into_iter().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "event ids are distinct: {seen:#?}"
    );

    let first = seen[0].id.clone().unwrap_or_default();
    let mut replay = alice.events(Some(&first)).await?;
    let replayed = replay.drain(QUIET).await?;

    assert_eq!(
        ids(&replayed),
        ids(&seen[1..]),
        "exactly the events after {first} are replayed"
    );
    assert_eq!(replayed, seen[1..], "replayed events carry the same data");
    Ok(())
}

#[tokio::test]
async fn an_invitee_is_pushed_the_join_prompt_and_the_active_session() -> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    world.chatting(&[&alice, &bob]).await?;
    let mut bob_stream = bob.events(None).await?;
    let invite = alice.connect().await?.open_prompt()?.clone();
    let lobby = alice.accept(invite.id, None).await?.live_session()?.clone();

    let join = bob.connect().await?.open_prompt()?.clone();
    bob_stream
        .wait_for("the join prompt", |e| {
            e.prompt().is_ok_and(|p| p.id == join.id)
        })
        .await?;
    bob.accept(join.id, None).await?;
    bob_stream
        .wait_for("the active session", |e| {
            e.session()
                .is_ok_and(|s| s.id == lobby.id && s.state == SessionState::Active)
        })
        .await?;
    Ok(())
}
