//! Game announcements: one message per (conversation, session), however often the game service delivers it.

use anyhow::{Context, ensure};
use chrono::TimeDelta;
use im_service::store::{AppendOutcome, Store};
use shared_types::{
    game::SessionState,
    im::{GameAnnouncement, ImEvent, Message, MessageKind},
};
use uuid::Uuid;

use super::events::events_of;
use crate::{
    helpers::{LIMITS, now, user},
    steps::{appended, open, say},
};

fn session_of(host: &str) -> anyhow::Result<GameAnnouncement> {
    Ok(GameAnnouncement {
        session_id: Uuid::new_v4(),
        host: user(host)?,
        mode: "default".into(),
        state: SessionState::Waiting,
    })
}

/// The game service announces `game` in conversation `id` (as stored now), saying `text`.
async fn announce(
    store: &dyn Store,
    id: Uuid,
    text: &str,
    game: &GameAnnouncement,
    at: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<AppendOutcome> {
    let record = store.conversation(id).await?.context("the conversation")?;
    Ok(store
        .announce(&record, &user("game-service")?, text, game, at)
        .await?)
}

/// How many `message` events `who` heard of that announce `game`.
async fn heard_of(store: &dyn Store, who: &str, game: &GameAnnouncement) -> anyhow::Result<usize> {
    Ok(events_of(store, who)
        .await?
        .iter()
        .filter(|event| {
            matches!(event, ImEvent::Message(m) if m.game.as_ref().is_some_and(|g| g.session_id == game.session_id))
        })
        .count())
}

fn games(messages: &[Message]) -> Vec<&Message> {
    messages
        .iter()
        .filter(|m| m.kind == MessageKind::Game)
        .collect()
}

pub async fn announcing_a_session_again_answers_the_first_message_and_tells_nobody_twice(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let id = open(store, &["alice", "bob"], now()).await?.conversation.id;
    appended(say(store, id, "alice", "play?", now()).await?)?;
    let game = session_of("alice")?;
    let first = appended(announce(store, id, "alice opened a game", &game, now()).await?)?;
    // A retry after a lost answer, a moment later, saying something else.
    let later = now() + TimeDelta::seconds(3);
    let again = appended(announce(store, id, "retried", &game, later).await?)?;
    ensure!(
        again == first,
        "the first message again: {again:?} vs {first:?}"
    );
    let kept = store.messages(id, 0, 100).await?;
    ensure!(games(&kept) == [&first], "one announcement kept: {kept:?}");
    for who in ["alice", "bob"] {
        let heard = heard_of(store, who, &game).await?;
        ensure!(heard == 1, "{who} heard of it {heard} times");
    }
    // Another session is another announcement.
    let other = session_of("alice")?;
    let next = appended(announce(store, id, "another game", &other, later).await?)?;
    ensure!(
        next.seq == first.seq + 1,
        "appended after the first: {next:?}"
    );
    // The same session in another conversation is announced there too.
    let elsewhere = open(store, &["alice", "carol"], now())
        .await?
        .conversation
        .id;
    let there = appended(announce(store, elsewhere, "alice opened a game", &game, later).await?)?;
    ensure!(
        there.conversation_id == elsewhere && there.seq == 1,
        "{there:?}"
    );
    // Closed since: a retry still gets the first answer; a new session is refused.
    store.close_conversation(id).await?;
    let after_close = appended(announce(store, id, "retried", &game, later).await?)?;
    ensure!(after_close == first, "{after_close:?}");
    ensure!(matches!(
        announce(store, id, "too late", &session_of("alice")?, later).await?,
        AppendOutcome::Closed
    ));
    ensure!(
        store.messages(id, 0, 100).await? == [kept, vec![next]].concat(),
        "nothing more was appended"
    );
    Ok(())
}

pub async fn a_session_announced_before_newer_messages_pushed_it_out_is_not_announced_again(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let id = open(store, &["alice", "bob"], now()).await?.conversation.id;
    let game = session_of("alice")?;
    let first = appended(announce(store, id, "alice opened a game", &game, now()).await?)?;
    for i in 0..LIMITS.messages_kept {
        appended(say(store, id, "bob", &format!("message {i}"), now()).await?)?;
    }
    let kept = store.messages(id, 0, 100).await?;
    ensure!(
        games(&kept).is_empty(),
        "the announcement was pushed out: {kept:?}"
    );
    let events = events_of(store, "alice").await?.len();
    let later = now() + TimeDelta::seconds(3);
    let again = appended(announce(store, id, "retried", &game, later).await?)?;
    // The first is kept nowhere any more: its seq, with what this delivery says.
    ensure!(
        again.seq == first.seq
            && again.kind == MessageKind::Game
            && again.game.as_ref() == Some(&game)
            && again.text == "retried",
        "{again:?}"
    );
    ensure!(
        store.messages(id, 0, 100).await? == kept,
        "nothing was appended"
    );
    ensure!(
        events_of(store, "alice").await?.len() == events,
        "nobody heard of it again"
    );
    Ok(())
}
