//! Who hears what: participants hear of a conversation and its messages in order, their own
//! included, strangers nothing; presence reaches those who talked, unless a block stands
//! between them; closing is heard by both.

use anyhow::ensure;

use super::{
    ensure_increasing, expect_conversation, expect_message, expect_presence, im_stream,
    no_presence_before, own_event,
};
use crate::helpers::spawn_world;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participants_hear_of_a_conversation_then_its_messages_in_order_and_a_stranger_nothing()
-> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    let carol = world.player("carol")?;
    let dave = world.player("dave")?;
    let mut alice_stream = im_stream(&alice).await?;
    let mut bob_stream = im_stream(&bob).await?;
    let mut carol_stream = im_stream(&carol).await?;

    let conversation = alice.open_conversation(&[&bob]).await?;
    alice.post_message(conversation, "play?").await?;
    bob.post_message(conversation, "sure").await?;

    for (who, stream) in [(&alice, &mut alice_stream), (&bob, &mut bob_stream)] {
        let opened = expect_conversation(stream, conversation, false).await?;
        let participants = opened.conversation()?.participants;
        ensure!(
            participants.iter().map(|p| p.as_str()).eq(["alice", "bob"]),
            "{}: the conversation's participants, its creator first: {opened:?}",
            who.id
        );
        // The sender hears their own message too.
        let first = expect_message(stream, conversation, &alice, "play?").await?;
        let second = expect_message(stream, conversation, &bob, "sure").await?;
        ensure!(
            first.message()?.seq < second.message()?.seq,
            "{}: message seqs increase: {first:?} {second:?}",
            who.id
        );
        ensure_increasing(&who.id, &[opened, first, second])?;
    }

    // carol heard nothing of it: the first event she gets is one of her own, caused later.
    let hers = own_event(&carol, &dave).await?;
    expect_conversation(&mut carol_stream, hers, false).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_reaches_those_who_talked_once_per_change_and_no_more_after_a_block()
-> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    let carol = world.player("carol")?;
    let dave = world.player("dave")?;
    let erin = world.player("erin")?;
    // alice and bob talked (both posted); alice only opened a conversation with dave.
    let talked = alice.talk_with(&bob).await?;
    alice.open_conversation(&[&dave]).await?;
    // Opened now, the streams start after all that.
    let mut alice_stream = im_stream(&alice).await?;
    let mut bob_stream = im_stream(&bob).await?;
    let mut dave_stream = im_stream(&dave).await?;

    alice.set_presence("busy").await?;
    expect_presence(&mut bob_stream, &alice, "busy").await?;
    // The same status again is no event: bob's next one is the next change.
    alice.set_presence("busy").await?;
    alice.set_presence("away").await?;
    expect_presence(&mut bob_stream, &alice, "away").await?;

    // dave never posted: he heard neither change.
    let daves = own_event(&dave, &erin).await?;
    expect_conversation(&mut dave_stream, daves, false).await?;
    // alice never hears her own presence: her first event is her next message.
    alice.post_message(talked, "still there?").await?;
    expect_message(&mut alice_stream, talked, &alice, "still there?").await?;
    expect_message(&mut bob_stream, talked, &alice, "still there?").await?;

    // bob blocks alice: her changes reach him no more, nor his her (a block either way).
    bob.block(&alice).await?;
    alice.set_presence("available").await?;
    bob.set_presence("busy").await?;
    let bobs = own_event(&bob, &carol).await?;
    no_presence_before(&mut bob_stream, &bob, bobs).await?;
    let alices = own_event(&alice, &carol).await?;
    no_presence_before(&mut alice_stream, &alice, alices).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_conversation_is_heard_by_both_once() -> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let bob = world.player("bob")?;
    let carol = world.player("carol")?;
    let conversation = alice.talk_with(&bob).await?;
    let mut alice_stream = im_stream(&alice).await?;
    let mut bob_stream = im_stream(&bob).await?;

    bob.close_conversation(conversation).await?;
    // Closing it again changes nothing, and is heard of by nobody.
    alice.close_conversation(conversation).await?;
    for (who, stream) in [(&alice, &mut alice_stream), (&bob, &mut bob_stream)] {
        let closed = expect_conversation(stream, conversation, true).await?;
        ensure!(
            closed.conversation()?.participants.len() == 2,
            "{}: {closed:?}",
            who.id
        );
        let own = own_event(who, &carol).await?;
        expect_conversation(stream, own, false).await?;
    }
    Ok(())
}
