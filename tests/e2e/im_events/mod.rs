//! The IM service's event stream (`GET /v1/events` of the IM service): who hears of
//! conversations, messages and presence, in order; replay after an id on any replica; tickets.
//!
//! A negative ("carol hears nothing of it") is proved by a later event of the user's own:
//! events reach one user in order, so whatever was coming arrives before it.
//!
//! The steps the tests share are here; the tests, by topic, in the submodules.

mod delivery;
mod replay;
mod tickets;

use anyhow::{Context, bail, ensure};
use uuid::Uuid;

use crate::helpers::{EventStream, Player, Service, SseEvent};

/// `player`'s IM stream, opened with their bearer token, starting now.
async fn im_stream(player: &Player) -> anyhow::Result<EventStream> {
    player.stream(Service::Im, None).await
}

/// The next event, which must be a `conversation` event for `id` (`closed` as given).
async fn expect_conversation(
    stream: &mut EventStream,
    id: Uuid,
    closed: bool,
) -> anyhow::Result<SseEvent> {
    let event = stream
        .next_event(&format!("conversation {id} (closed: {closed})"))
        .await?;
    let conversation = event.conversation()?;
    ensure!(
        conversation.id == id && conversation.closed == closed,
        "expected conversation {id} with closed: {closed}, got {event:?}"
    );
    Ok(event)
}

/// The next event, which must be `sender`'s message `text` in `conversation`.
async fn expect_message(
    stream: &mut EventStream,
    conversation: Uuid,
    sender: &Player,
    text: &str,
) -> anyhow::Result<SseEvent> {
    let event = stream
        .next_event(&format!("{}'s message {text:?}", sender.id))
        .await?;
    let message = event.message()?;
    ensure!(
        message.conversation_id == conversation
            && message.sender.as_str() == sender.id
            && message.text == text,
        "expected {}'s message {text:?} in {conversation}, got {event:?}",
        sender.id
    );
    Ok(event)
}

/// The next event, which must be `user`'s presence `status`.
async fn expect_presence(
    stream: &mut EventStream,
    user: &Player,
    status: &str,
) -> anyhow::Result<SseEvent> {
    let event = stream
        .next_event(&format!("{}'s presence {status}", user.id))
        .await?;
    let presence = event.presence()?;
    ensure!(
        presence.user_id.as_str() == user.id && presence.status.as_str() == status,
        "expected {} {status}, got {event:?}",
        user.id
    );
    Ok(event)
}

/// Gives `player` an event of their own: a conversation they open with `with`.
async fn own_event(player: &Player, with: &Player) -> anyhow::Result<Uuid> {
    player.open_conversation(&[with]).await
}

/// Reads `player`'s stream up to the `conversation` event of `marker` (caused after whatever
/// must not have reached them): every event before it, none of which may be a presence event.
async fn no_presence_before(
    stream: &mut EventStream,
    player: &Player,
    marker: Uuid,
) -> anyhow::Result<()> {
    let (before, _) = stream
        .until(&format!("{}'s own conversation {marker}", player.id), |e| {
            e.conversation().is_ok_and(|c| c.id == marker)
        })
        .await?;
    let presences: Vec<_> = before.iter().filter(|e| e.event == "presence").collect();
    ensure!(
        presences.is_empty(),
        "{} heard presence they must not: {presences:#?}",
        player.id
    );
    Ok(())
}

/// Each event has an id, each greater than the one before.
fn ensure_increasing(who: &str, events: &[SseEvent]) -> anyhow::Result<()> {
    let positions = events
        .iter()
        .map(SseEvent::position)
        .collect::<anyhow::Result<Vec<_>>>()?;
    ensure!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "{who}'s event ids do not increase: {events:#?}"
    );
    Ok(())
}

fn event_id(event: &SseEvent) -> anyhow::Result<&str> {
    event
        .id
        .as_deref()
        .with_context(|| format!("an event without an id: {event:?}"))
}

/// The answer to `GET /v1/events?{query}` of the IM service, which must be a refusal.
async fn refused(
    player: &Player,
    query: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<crate::helpers::Reply> {
    match player.stream_by_query(Service::Im, query, headers).await? {
        Ok(_stream) => bail!("GET /v1/events?{query} opened {}'s IM stream", player.id),
        Err(refusal) => Ok(refusal),
    }
}

/// `GET /v1/events?{query}` of the IM service, which must open a stream.
async fn opened(
    player: &Player,
    query: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<EventStream> {
    match player.stream_by_query(Service::Im, query, headers).await? {
        Ok(stream) => Ok(stream),
        Err(refusal) => bail!(
            "{}: GET /v1/events?{query} of the IM service was refused: {refusal:?}",
            player.id
        ),
    }
}
