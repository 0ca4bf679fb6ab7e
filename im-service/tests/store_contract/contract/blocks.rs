//! Blocks: kept, listed and limited; what a block hides either way, and from whom.

use anyhow::{Context, bail};
use im_service::store::{BlockOutcome, CreateOutcome, Store};

use crate::{
    helpers::{LIMITS, conversation, minutes, now, user},
    steps::{available, listed, names, open, open_and_talk, sees_presence, talk},
};

pub async fn blocks_are_idempotent_listed_newest_first_and_limited(
    store: &dyn Store,
) -> anyhow::Result<()> {
    let alice = user("alice")?;
    let t0 = now() - minutes(10);
    assert!(store.blocks(&alice).await?.is_empty());
    assert_eq!(
        store.block(&alice, &user("bob")?, t0).await?,
        BlockOutcome::Blocked
    );
    assert_eq!(
        store.block(&alice, &user("bob")?, t0 + minutes(5)).await?,
        BlockOutcome::AlreadyBlocked
    );
    for (i, who) in ["carol", "dave", "erin"].iter().enumerate() {
        let at = t0 + minutes(i64::try_from(i)? + 1);
        assert_eq!(
            store.block(&alice, &user(who)?, at).await?,
            BlockOutcome::Blocked
        );
    }
    let listed = |blocks: Vec<shared_types::im::Block>| {
        blocks
            .into_iter()
            .map(|b| (b.user_id.to_string(), b.blocked_at))
            .collect::<Vec<_>>()
    };
    let before = listed(store.blocks(&alice).await?);
    assert_eq!(
        before,
        [
            ("erin".to_owned(), t0 + minutes(3)),
            ("dave".to_owned(), t0 + minutes(2)),
            ("carol".to_owned(), t0 + minutes(1)),
            ("bob".to_owned(), t0),
        ],
        "newest first; blocking bob again kept his first time"
    );
    // At the limit: refused, nothing changes; blocking someone already blocked still works.
    assert_eq!(LIMITS.max_blocks, 4);
    assert_eq!(
        store.block(&alice, &user("frank")?, now()).await?,
        BlockOutcome::Limit
    );
    assert_eq!(
        store.block(&alice, &user("carol")?, now()).await?,
        BlockOutcome::AlreadyBlocked
    );
    assert_eq!(listed(store.blocks(&alice).await?), before);
    // Unblocking frees a place, and is idempotent.
    store.unblock(&alice, &user("dave")?).await?;
    store.unblock(&alice, &user("dave")?).await?;
    store.unblock(&alice, &user("nobody")?).await?;
    assert_eq!(
        store.block(&alice, &user("frank")?, now()).await?,
        BlockOutcome::Blocked
    );
    let names: Vec<String> = listed(store.blocks(&alice).await?)
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(names, ["frank", "erin", "carol", "bob"]);
    assert!(
        store.blocks(&user("bob")?).await?.is_empty(),
        "bob blocks nobody"
    );
    Ok(())
}

pub async fn a_block_either_way_unmakes_partners_and_hides_presence_until_lifted(
    store: &dyn Store,
) -> anyhow::Result<()> {
    available(store, &["alice", "bob", "carol"]).await?;
    let t = now() - minutes(5);
    let with_bob = open_and_talk(store, &["alice", "bob"], t, t).await?;
    open_and_talk(store, &["carol", "alice", "bob"], t, t + minutes(1)).await?;
    assert_eq!(names(store, "alice").await?, ["bob", "carol"]);

    // bob blocks alice: neither is the other's partner, neither sees the other's presence,
    // through any conversation; carol is unaffected.
    store.block(&user("bob")?, &user("alice")?, now()).await?;
    assert_eq!(names(store, "alice").await?, ["carol"]);
    assert_eq!(names(store, "bob").await?, ["carol"]);
    assert_eq!(names(store, "carol").await?, ["alice", "bob"]);
    assert!(
        !sees_presence(store, "alice", "bob").await?,
        "the blocked user"
    );
    assert!(!sees_presence(store, "bob", "alice").await?, "the blocker");
    assert!(sees_presence(store, "alice", "carol").await?);
    assert!(sees_presence(store, "bob", "carol").await?);
    // New messages change nothing while the block stands.
    talk(store, with_bob.conversation.id, &["alice", "bob"], now()).await?;
    assert_eq!(names(store, "alice").await?, ["carol"]);

    store.unblock(&user("bob")?, &user("alice")?).await?;
    assert_eq!(names(store, "alice").await?, ["bob", "carol"]);
    assert!(sees_presence(store, "alice", "bob").await?);
    assert!(sees_presence(store, "bob", "alice").await?);

    // The other way round: alice blocks bob.
    store.block(&user("alice")?, &user("bob")?, now()).await?;
    assert_eq!(names(store, "alice").await?, ["carol"]);
    assert_eq!(names(store, "bob").await?, ["carol"]);
    assert!(!sees_presence(store, "bob", "alice").await?);
    assert!(!sees_presence(store, "alice", "bob").await?);
    Ok(())
}

pub async fn a_conversation_a_blocked_user_opens_is_hidden_from_the_blocker_only(
    store: &dyn Store,
) -> anyhow::Result<()> {
    available(store, &["alice", "mallory", "carol"]).await?;
    let (alice, mallory) = (user("alice")?, user("mallory")?);
    store.block(&alice, &mallory, now()).await?;
    let t = now() - minutes(5);
    // mallory opens a conversation with alice, and a group with alice and carol: created as
    // usual for mallory, who sees exactly what they asked for.
    let direct = conversation(&["mallory", "alice"], t)?;
    let CreateOutcome::Created(record) = store.create_conversation(&direct).await? else {
        bail!("refused");
    };
    assert_eq!(record.conversation, direct, "nothing tells mallory");
    assert_eq!(record.hidden_from, std::slice::from_ref(&alice));
    let group = open(store, &["mallory", "alice", "carol"], t).await?;
    assert_eq!(group.hidden_from, std::slice::from_ref(&alice));
    assert_eq!(
        listed(store, "mallory").await?.len(),
        2,
        "mallory sees both"
    );
    assert!(
        listed(store, "alice").await?.is_empty(),
        "alice sees neither"
    );
    assert_eq!(listed(store, "carol").await?, [group.conversation.id]);
    let stored = store
        .conversation(direct.id)
        .await?
        .context("the conversation")?;
    assert!(!stored.visible_to(&alice) && stored.visible_to(&mallory));

    // mallory posts; the group talks between mallory and carol; nothing counts for alice.
    talk(store, direct.id, &["mallory"], t).await?;
    talk(store, group.conversation.id, &["mallory", "carol"], t).await?;
    assert!(names(store, "alice").await?.is_empty());
    assert_eq!(names(store, "mallory").await?, ["carol"]);
    assert_eq!(names(store, "carol").await?, ["mallory"]);
    assert!(!sees_presence(store, "mallory", "alice").await?);
    // Neither conversation takes one of alice's open-conversation slots.
    for i in 0..LIMITS.max_open_conversations {
        open(store, &["alice", &format!("friend{i}")], t).await?;
    }

    // Unblocking does not reveal what was opened while blocked.
    store.unblock(&alice, &mallory).await?;
    let stored = store
        .conversation(direct.id)
        .await?
        .context("the conversation")?;
    assert!(!stored.visible_to(&alice));
    assert!(!listed(store, "alice").await?.contains(&direct.id));
    // But a conversation mallory opens now is an ordinary one.
    let later = open(store, &["carol", "mallory"], t).await?;
    assert!(later.hidden_from.is_empty());
    Ok(())
}
