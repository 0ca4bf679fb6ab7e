//! Events: who hears of a conversation, a message and a presence change, once each, in order,
//! replayable after an id.

use anyhow::{Context, ensure};
use im_service::store::Store;
use shared_types::{
    game::SessionState,
    im::{GameAnnouncement, ImEvent, MessageKind},
    presence::PresenceStatus,
};

use crate::{
    helpers::{now, user},
    steps::{appended, open, say, talk},
};

/// `who`'s kept events, oldest first.
pub(super) async fn events_of(store: &dyn Store, who: &str) -> anyhow::Result<Vec<ImEvent>> {
    Ok(store
        .events_after(&user(who)?, Some("0"), usize::MAX)
        .await?
        .into_iter()
        .map(|stored| stored.event)
        .collect())
}

pub async fn participants_hear_of_a_conversation_and_its_messages_in_order(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let record = open(store, &["alice", "bob"], now()).await?;
    let id = record.conversation.id;
    let first = appended(say(store, id, "alice", "play?", now()).await?)?;
    let second = appended(say(store, id, "bob", "sure", now()).await?)?;
    for who in ["alice", "bob"] {
        let events = events_of(store, who).await?;
        ensure!(
            events
                == [
                    ImEvent::Conversation(record.conversation.clone()),
                    ImEvent::Message(first.clone()),
                    ImEvent::Message(second.clone()),
                ],
            "{who} hears of the conversation, then both messages (their own included): {events:?}"
        );
    }
    ensure!(
        events_of(store, "carol").await?.is_empty(),
        "nobody else does"
    );
    // Replay after an id: what came after it, in order.
    let alice = user("alice")?;
    let all = store.events_after(&alice, Some("0"), usize::MAX).await?;
    let after_first = store
        .events_after(&alice, Some(&all[0].id), usize::MAX)
        .await?;
    ensure!(after_first == all[1..], "replay after the first event");
    let newest = store.events_after(&alice, None, 1).await?;
    ensure!(newest == all[2..], "without an id: the newest");
    Ok(())
}

pub async fn closing_is_heard_once_and_a_hidden_conversation_is_not_heard_of(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let record = open(store, &["alice", "bob"], now()).await?;
    let id = record.conversation.id;
    store.close_conversation(id).await?;
    store.close_conversation(id).await?;
    let events = events_of(store, "bob").await?;
    ensure!(events.len() == 2, "opened, then closed once: {events:?}");
    ensure!(
        matches!(&events[1], ImEvent::Conversation(c) if c.closed && c.id == id),
        "the second says it is closed: {events:?}"
    );
    // bob blocks mallory: mallory's conversation with bob is hidden from him, and unheard of.
    store.block(&user("bob")?, &user("mallory")?, now()).await?;
    let hidden = open(store, &["mallory", "bob"], now()).await?;
    appended(say(store, hidden.conversation.id, "mallory", "hi", now()).await?)?;
    ensure!(
        events_of(store, "bob").await?.len() == 2,
        "bob hears nothing of it"
    );
    ensure!(
        events_of(store, "mallory").await?.len() == 2,
        "mallory hears of her own"
    );
    Ok(())
}

pub async fn a_presence_change_is_heard_by_those_who_talked_and_are_not_blocked(
    store: &dyn Store,
) -> anyhow::Result<()> {
    // alice talked with bob and with carol; she only opened a conversation with dave.
    for other in ["bob", "carol"] {
        let talked = open(store, &["alice", other], now()).await?;
        talk(store, talked.conversation.id, &["alice", other], now()).await?;
    }
    open(store, &["alice", "dave"], now()).await?;
    store.block(&user("carol")?, &user("alice")?, now()).await?;
    let before = |who| async move { events_of(store, who).await.map(|e| e.len()) };
    let (bob, carol, dave) = (
        before("bob").await?,
        before("carol").await?,
        before("dave").await?,
    );

    store
        .set_presence(&user("alice")?, PresenceStatus::Busy)
        .await?;
    store
        .set_presence(&user("alice")?, PresenceStatus::Busy)
        .await?;
    let heard = events_of(store, "bob").await?;
    ensure!(
        heard.len() == bob + 1,
        "bob hears one change (the same status again is none)"
    );
    ensure!(
        matches!(heard.last(), Some(ImEvent::Presence(p)) if p.user_id.as_str() == "alice" && p.status == PresenceStatus::Busy),
        "{heard:?}"
    );
    ensure!(
        events_of(store, "carol").await?.len() == carol,
        "carol blocks alice: nothing"
    );
    ensure!(
        events_of(store, "dave").await?.len() == dave,
        "dave never talked with alice"
    );
    ensure!(
        !events_of(store, "alice")
            .await?
            .iter()
            .any(|e| matches!(e, ImEvent::Presence(_))),
        "alice hears nothing of her own presence"
    );
    Ok(())
}

pub async fn a_service_announcement_is_heard_but_is_nobodys_talk(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let record = open(store, &["alice", "bob"], now()).await?;
    let id = record.conversation.id;
    let said = appended(say(store, id, "alice", "play?", now()).await?)?;
    let game = GameAnnouncement {
        session_id: uuid::Uuid::new_v4(),
        host: user("alice")?,
        mode: "default".into(),
        state: SessionState::Waiting,
    };
    let later = now() + chrono::TimeDelta::seconds(5);
    let current = store.conversation(id).await?.context("the conversation")?;
    let announced = appended(
        store
            .announce(
                &current,
                &user("game-service")?,
                "alice opened a game",
                &game,
                later,
            )
            .await?,
    )?;
    ensure!(announced.kind == MessageKind::Game && announced.game.as_ref() == Some(&game));
    ensure!(announced.seq == said.seq + 1, "next in the conversation");
    let after = store.conversation(id).await?.context("the conversation")?;
    ensure!(
        after.posters == current.posters,
        "no poster: {:?}",
        after.posters
    );
    ensure!(
        after.conversation.last_activity_at == current.conversation.last_activity_at,
        "no activity"
    );
    let read = store.messages(id, said.seq, 10).await?;
    ensure!(
        read == [announced.clone()],
        "read back as announced: {read:?}"
    );
    for who in ["alice", "bob"] {
        let events = events_of(store, who).await?;
        ensure!(
            events.last() == Some(&ImEvent::Message(announced.clone())),
            "{who} hears of it: {events:?}"
        );
    }
    store.close_conversation(id).await?;
    let closed = store.conversation(id).await?.context("the conversation")?;
    // A new session (the same one again is a replay: see `announcements`).
    let late = GameAnnouncement {
        session_id: uuid::Uuid::new_v4(),
        ..game
    };
    ensure!(matches!(
        store
            .announce(&closed, &user("game-service")?, "late", &late, later)
            .await?,
        im_service::store::AppendOutcome::Closed
    ));
    Ok(())
}
