//! Presence: what a user set, and who may see it once two users have talked.

use im_service::store::Store;
use shared_types::presence::PresenceStatus;

use crate::{
    helpers::{minutes, now, user},
    steps::{open, open_and_talk, sees_presence, talk},
};

pub async fn presence_is_offline_until_set_then_what_was_set(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let alice = user("alice")?;
    assert_eq!(
        store.presence(&alice).await?.status,
        PresenceStatus::Offline
    );
    store.set_presence(&alice, PresenceStatus::Busy).await?;
    assert_eq!(store.presence(&alice).await?.status, PresenceStatus::Busy);
    store
        .set_presence(&alice, PresenceStatus::Available)
        .await?;
    assert_eq!(
        store.presence(&alice).await?.status,
        PresenceStatus::Available
    );
    Ok(())
}

pub async fn talking_in_a_conversation_open_or_closed_lets_both_see_presence_for_good(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let t = now() - minutes(5);
    let open_one = open(store, &["alice", "bob"], t).await?;
    talk(store, open_one.conversation.id, &["bob", "alice"], t).await?;
    let closed = open_and_talk(store, &["carol", "alice"], t, t).await?;
    store.close_conversation(closed.conversation.id).await?;
    for (viewer, subject) in [
        ("alice", "bob"),
        ("bob", "alice"),
        ("alice", "carol"),
        ("carol", "alice"),
    ] {
        assert!(
            sees_presence(store, viewer, subject).await?,
            "{viewer} → {subject}"
        );
    }
    for (viewer, subject) in [("bob", "carol"), ("alice", "dave"), ("dave", "alice")] {
        assert!(
            !sees_presence(store, viewer, subject).await?,
            "{viewer} → {subject}"
        );
    }
    Ok(())
}
