//! The open-conversation limit: for the conversations a user opens and those they answer.

use anyhow::Context;
use im_service::store::{AppendOutcome, CreateOutcome, Store};

use crate::{
    helpers::{LIMITS, conversation, minutes, now, user},
    steps::{appended, available, listed, names, open, say, sees_presence, talk},
};

pub async fn the_open_conversation_limit_refuses_the_creator_and_changes_nothing(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let max = LIMITS.max_open_conversations;
    let t = now() - minutes(5);
    let mut opened = Vec::new();
    for i in 0..max {
        opened.push(open(store, &["alice", &format!("friend{i}")], t).await?);
    }
    let before = listed(store, "alice").await?;
    let refused = conversation(&["alice", "zed"], t)?;
    assert_eq!(
        store.create_conversation(&refused).await?,
        CreateOutcome::Limit
    );
    assert_eq!(store.conversation(refused.id).await?, None);
    assert_eq!(listed(store, "alice").await?, before);
    assert!(listed(store, "zed").await?.is_empty());
    // Others opening conversations with alice are not refused: they count for their creators.
    let invited = open(store, &["zed", "alice"], t).await?;
    assert!(
        listed(store, "alice")
            .await?
            .contains(&invited.conversation.id)
    );
    // Closing one frees a slot, for its creator as for every other participant.
    store.close_conversation(opened[0].conversation.id).await?;
    open(store, &["alice", "yan"], t).await?;
    assert_eq!(
        store
            .create_conversation(&conversation(&["alice", "xia"], t)?)
            .await?,
        CreateOutcome::Limit
    );
    Ok(())
}

pub async fn answering_a_conversation_counts_it_and_is_refused_at_the_limit(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let max = LIMITS.max_open_conversations;
    let t = now() - minutes(5);
    available(store, &["bob", "carol"]).await?;
    // bob answers max - 1 conversations others opened, and opens one himself.
    let mut answered = Vec::new();
    for i in 0..max - 1 {
        let record = open(store, &[&format!("friend{i}"), "bob"], t).await?;
        talk(store, record.conversation.id, &["bob"], t).await?;
        answered.push(record.conversation.id);
    }
    open(store, &["bob", "dave"], t).await?;
    // Unanswered invitations do not count: bob is invited to more.
    let unanswered = open(store, &["carol", "bob"], t).await?;
    talk(store, unanswered.conversation.id, &["carol"], t).await?;
    // Answering one more is refused and stores nothing.
    let before = store.messages(unanswered.conversation.id, 0, 50).await?;
    assert_eq!(
        say(
            store,
            unanswered.conversation.id,
            "bob",
            "hi",
            t + minutes(1)
        )
        .await?,
        AppendOutcome::Limit
    );
    assert_eq!(
        store.messages(unanswered.conversation.id, 0, 50).await?,
        before
    );
    let stored = store
        .conversation(unanswered.conversation.id)
        .await?
        .context("the conversation")?;
    assert_eq!(stored.posters, [user("carol")?]);
    assert!(names(store, "carol").await?.is_empty());
    assert!(!sees_presence(store, "carol", "bob").await?);
    // bob opening one more is refused too; posting where he already counts is fine.
    assert_eq!(
        store
            .create_conversation(&conversation(&["bob", "erin"], t)?)
            .await?,
        CreateOutcome::Limit
    );
    // Once bob closes one he answered, he may answer carol.
    store.close_conversation(answered[0]).await?;
    appended(
        say(
            store,
            unanswered.conversation.id,
            "bob",
            "hi",
            t + minutes(2),
        )
        .await?,
    )?;
    assert_eq!(names(store, "carol").await?, ["bob"]);
    Ok(())
}
