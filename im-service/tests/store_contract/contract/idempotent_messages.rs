//! Idempotency keys on messages: one message per (conversation, sender, key), the same message (same `seq`) to every repeat, closed or trimmed since, another text under the same key refused, each sender's keys their own.

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, TimeDelta, Utc};
use futures_util::future::join_all;
use im_service::{
    domain::{ConversationRecord, IdempotencyKey},
    store::{AppendOutcome, Store},
};
use shared_types::{
    game::SessionState,
    im::{GameAnnouncement, ImEvent, Message},
};
use uuid::Uuid;

use super::{events::events_of, idempotent_conversations::key};
use crate::{
    helpers::{LIMITS, now, user},
    steps::{appended, open, say, sees_presence},
};

/// `who` posts `text` in conversation `id` (as stored now) at `at`, with `key`.
async fn say_once(
    store: &dyn Store,
    id: Uuid,
    who: &str,
    text: &str,
    at: DateTime<Utc>,
    key: &IdempotencyKey,
) -> anyhow::Result<AppendOutcome> {
    let record = store.conversation(id).await?.context("the conversation")?;
    Ok(store
        .append_message_keyed(&record, &user(who)?, text, at, Some(key))
        .await?)
}

/// The game service announces `game` in the conversation of `record`, with `key`.
async fn announce(
    store: &dyn Store,
    record: &ConversationRecord,
    game: &GameAnnouncement,
    key: Option<&IdempotencyKey>,
) -> anyhow::Result<AppendOutcome> {
    let service = user("game-service")?;
    Ok(store
        .announce_keyed(record, &service, "a game", game, now(), key)
        .await?)
}

/// How many `message` events with this `seq` `who` heard.
async fn heard(store: &dyn Store, who: &str, message: &Message) -> anyhow::Result<usize> {
    Ok(events_of(store, who)
        .await?
        .iter()
        .filter(|event| matches!(event, ImEvent::Message(m) if m.seq == message.seq && m.conversation_id == message.conversation_id))
        .count())
}

pub async fn a_repeated_message_key_appends_once_and_answers_the_first_message(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let id = open(store, &["alice", "bob"], now()).await?.conversation.id;
    let k = key("5b0c3f8e-9a6d-4f41-8a3e-2d7c1b9e4f60")?;
    let t = now();
    let first = appended(say_once(store, id, "bob", "hi alice", t, &k).await?)?;
    // The retry after a 503 or a lost answer, a little later.
    let again =
        appended(say_once(store, id, "bob", "hi alice", t + TimeDelta::seconds(3), &k).await?)?;
    ensure!(
        again == first,
        "the first message again: {again:?} vs {first:?}"
    );
    ensure!(
        store.messages(id, 0, 100).await? == std::slice::from_ref(&first),
        "one message"
    );
    let stored = store.conversation(id).await?.context("the conversation")?;
    ensure!(
        stored.conversation.last_activity_at == Some(t),
        "the activity is the first message's"
    );
    for who in ["alice", "bob"] {
        ensure!(
            heard(store, who, &first).await? == 1,
            "{who} heard of it once"
        );
    }
    // bob's first message answered the conversation once: alice and bob talk once both posted.
    appended(say(store, id, "alice", "hi bob", now()).await?)?;
    ensure!(sees_presence(store, "alice", "bob").await?);
    let later = appended(say_once(store, id, "bob", "hi alice", now(), &k).await?)?;
    ensure!(later == first, "after other messages, still the first");
    // Pushed out of the kept messages, and closed: still the first message, nothing appended.
    for i in 0..LIMITS.messages_kept {
        appended(say(store, id, "alice", &format!("more {i}"), now()).await?)?;
    }
    store.close_conversation(id).await?;
    let kept = store.messages(id, 0, 100).await?;
    let closed = appended(say_once(store, id, "bob", "hi alice", now(), &k).await?)?;
    ensure!(closed == first, "closed and trimmed: {closed:?}");
    ensure!(
        store.messages(id, 0, 100).await? == kept,
        "nothing appended"
    );
    ensure!(
        heard(store, "alice", &first).await? == 1,
        "nobody hears of it twice"
    );
    // A new key in the closed conversation is refused as any message.
    let refused = say_once(store, id, "bob", "hi alice", now(), &key("new")?).await?;
    ensure!(refused == AppendOutcome::Closed, "{refused:?}");
    Ok(())
}

pub async fn a_message_key_reused_for_another_text_is_refused_and_changes_nothing(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let id = open(store, &["alice", "bob"], now()).await?.conversation.id;
    let k = key("m-1")?;
    let t = now();
    let first = appended(say_once(store, id, "alice", "hi", t, &k).await?)?;
    let before = store.conversation(id).await?;
    let heard_before = events_of(store, "bob").await?;
    for text in ["hi!", "bye", "Hi"] {
        let outcome = say_once(store, id, "alice", text, t + TimeDelta::seconds(1), &k).await?;
        ensure!(outcome == AppendOutcome::KeyReused, "{text:?}: {outcome:?}");
    }
    ensure!(store.messages(id, 0, 100).await? == std::slice::from_ref(&first));
    ensure!(store.conversation(id).await? == before, "nothing moved");
    ensure!(
        events_of(store, "bob").await? == heard_before,
        "nobody heard anything"
    );
    ensure!(appended(say_once(store, id, "alice", "hi", now(), &k).await?)? == first);
    // The same key in another conversation is another request there.
    let other = open(store, &["alice", "bob"], now()).await?.conversation.id;
    let there = appended(say_once(store, other, "alice", "bye", now(), &k).await?)?;
    ensure!(there.conversation_id == other && there.seq == 1);
    Ok(())
}

pub async fn message_keys_are_each_senders_own(store: &dyn Store) -> anyhow::Result<()> {
    let id = open(store, &["alice", "bob"], now()).await?.conversation.id;
    let k = key("same-key")?;
    let alices = appended(say_once(store, id, "alice", "hi", now(), &k).await?)?;
    let bobs = appended(say_once(store, id, "bob", "hi", now(), &k).await?)?;
    ensure!((alices.seq, bobs.seq) == (1, 2), "two messages");
    ensure!(bobs.sender.as_str() == "bob");
    // bob's key with another text is his own first use: not alice's text.
    let bye = appended(say_once(store, id, "bob", "bye", now(), &key("bob-2")?).await?)?;
    ensure!(bye.seq == 3);
    ensure!(appended(say_once(store, id, "alice", "hi", now(), &k).await?)? == alices);
    ensure!(appended(say_once(store, id, "bob", "hi", now(), &k).await?)? == bobs);
    ensure!(store.messages(id, 0, 100).await?.len() == 3);
    Ok(())
}

pub async fn racing_posts_with_one_key_append_one_message(store: &dyn Store) -> anyhow::Result<()> {
    let id = open(store, &["alice", "bob"], now()).await?.conversation.id;
    let record = store.conversation(id).await?.context("the conversation")?;
    let (bob, k) = (user("bob")?, key("race")?);
    let t = now();
    let outcomes = join_all((0..8).map(|i| {
        let at = t + TimeDelta::milliseconds(i);
        store.append_message_keyed(&record, &bob, "only once", at, Some(&k))
    }))
    .await;
    let mut answers = Vec::new();
    for outcome in outcomes {
        answers.push(appended(outcome?)?);
    }
    ensure!(
        answers.iter().all(|a| *a == answers[0]),
        "one answer: {answers:?}"
    );
    let kept = store.messages(id, 0, 100).await?;
    ensure!(kept == answers[..1], "one message: {kept:?}");
    for who in ["alice", "bob"] {
        ensure!(
            heard(store, who, &answers[0]).await? == 1,
            "{who} heard once"
        );
    }
    Ok(())
}

pub async fn an_announcement_key_answers_its_first_message_before_the_session_is_looked_up(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let id = open(store, &["alice", "bob"], now()).await?.conversation.id;
    let record = store.conversation(id).await?.context("the conversation")?;
    let game = || -> anyhow::Result<GameAnnouncement> {
        Ok(GameAnnouncement {
            session_id: Uuid::new_v4(),
            host: user("alice")?,
            mode: "default".into(),
            state: SessionState::Waiting,
        })
    };
    let (one, two) = (game()?, game()?);
    let k = key("announce-1")?;
    let first = appended(announce(store, &record, &one, Some(&k)).await?)?;
    ensure!(appended(announce(store, &record, &one, Some(&k)).await?)? == first);
    let reused = announce(store, &record, &two, Some(&k)).await?;
    ensure!(
        reused == AppendOutcome::KeyReused,
        "another session: {reused:?}"
    );
    // The session itself stays announced once, whatever key (or none) comes with it.
    ensure!(appended(announce(store, &record, &one, None).await?)? == first);
    ensure!(appended(announce(store, &record, &one, Some(&key("announce-2")?)).await?)? == first);
    let kept = store.messages(id, 0, 100).await?;
    match kept.as_slice() {
        [only] if *only == first => Ok(()),
        other => bail!("one announcement kept: {other:?}"),
    }
}
