//! Messages: appending one (indexes first, then the message with its idempotency key, then the contacts it earns) and reading them back in pages.

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared_types::{
    UserId,
    im::{GameAnnouncement, ImEvent, Message, MessageKind},
};
use uuid::Uuid;

use super::{
    RedisStore,
    commands::ScriptCall,
    values::{from_millis, millis, parse_users},
};
use crate::{
    domain::{ConversationRecord, IdempotencyKey, idempotency},
    store::{AppendOutcome, StoreError},
};

/// A message as kept in the list; `seq` and the conversation id come from where it is stored.
#[derive(Serialize, Deserialize)]
struct StoredMessage {
    sender: UserId,
    text: String,
    sent_at_ms: i64,
    /// A `game` message's announcement; absent for people's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    game: Option<GameAnnouncement>,
}

pub(super) async fn append(
    store: &RedisStore,
    record: &ConversationRecord,
    sender: &UserId,
    text: &str,
    at: DateTime<Utc>,
    key: Option<&IdempotencyKey>,
) -> Result<AppendOutcome, StoreError> {
    let conversation = &record.conversation;
    let id = conversation.id;
    let keyed = keyed(store, id, sender, key, text, None)?;
    if conversation.closed {
        // A closed conversation takes nothing, but a key may have posted before the close:
        // the script answers that message (no index is touched).
        if keyed.is_none() {
            return Ok(AppendOutcome::Closed);
        }
    } else if !reserve_and_touch(store, record, sender, at).await? {
        // 1. Indexes first (refused at the limit).
        return Ok(AppendOutcome::Limit);
    }
    // 2. The message, the posters and the activity, in the conversation's slot.
    let stored_message = StoredMessage {
        sender: sender.clone(),
        text: text.to_owned(),
        sent_at_ms: millis(at),
        game: None,
    };
    let (seq, payload, stored, posters, newly) =
        match store_message(store, id, &stored_message, true, keyed).await? {
            Ok(stored) => stored,
            Err(outcome) => return Ok(outcome),
        };
    // 3. A first message that makes the sender talk with earlier posters: now (and only
    //    now, after the message) they may see each other's presence.
    if newly == 1 {
        let posters = parse_users(&posters)?;
        let others: Vec<&UserId> = posters.iter().filter(|p| *p != sender).collect();
        if !others.is_empty() {
            let senders_side = [sender];
            let mut each: Vec<(&UserId, &[&UserId])> = vec![(sender, &others)];
            each.extend(others.iter().map(|other| (*other, &senders_side[..])));
            store.add_contacts(&each).await?;
        }
    }
    let raw = if stored.is_empty() { &payload } else { &stored };
    let message = parse_message(id, seq, raw)?;
    // 4. Last, everyone who sees the conversation hears of the message.
    notify_message(store, record, &message).await;
    Ok(AppendOutcome::Appended(message))
}

/// Step 1 of an append: the indexes; a first message that answers a conversation takes the
/// sender's slot before anything else. `false` when refused at the limit (nothing written).
async fn reserve_and_touch(
    store: &RedisStore,
    record: &ConversationRecord,
    sender: &UserId,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let conversation = &record.conversation;
    let id = conversation.id;
    let at_ms = millis(at).to_string();
    // Pairs already complete before this message: re-adding them is safe (they lag the
    // truth) and heals a contact update an earlier append could not finish.
    let sender_contacts: Vec<&UserId> = record.talking_with(sender).collect();
    // Each other participant who sees the conversation: it moves forward in their indexes.
    let touches: Vec<ScriptCall> = conversation
        .participants
        .iter()
        .filter(|user| *user != sender && record.visible_to(user))
        .map(|user| {
            let keys = vec![
                store.keys.user_conversations(user),
                store.keys.user_open(user),
                store.keys.user_contacts(user),
            ];
            let mut args = vec![
                id.to_string(),
                at_ms.clone(),
                store.retention_ms.to_string(),
            ];
            args.extend(record.talking_with(user).map(|u| u.to_string()));
            (keys, args)
        })
        .collect();
    let touch = &store.scripts.touch_participant;
    let mut calls: Vec<(&redis::Script, &ScriptCall)> =
        touches.iter().map(|call| (touch, call)).collect();
    if record.counts_for(sender) {
        // The sender holds the slot already: keeping it and the touches go in one batch.
        let keep = store.keep_reserved_call(sender, id, at, &sender_contacts);
        calls.push((&store.scripts.reserve, &keep));
        store
            .invoke_all("moving a conversation forward", &calls)
            .await?;
    } else {
        if !store.reserve(sender, id, at, &sender_contacts).await? {
            return Ok(false);
        }
        store
            .invoke_all("moving a participant's conversation forward", &calls)
            .await?;
    }
    Ok(true)
}

/// A service's `game` message: stored in the conversation's slot (no poster, no activity, no
/// index or limit is touched), then heard of.
pub(super) async fn announce(
    store: &RedisStore,
    record: &ConversationRecord,
    sender: &UserId,
    text: &str,
    game: &GameAnnouncement,
    at: DateTime<Utc>,
    key: Option<&IdempotencyKey>,
) -> Result<AppendOutcome, StoreError> {
    // No early "closed" answer here: a session announced before the close is answered with
    // its first message (the script checks the replays first, then whether it is closed).
    let id = record.conversation.id;
    let keyed = keyed(store, id, sender, key, text, Some(game))?;
    let stored_message = StoredMessage {
        sender: sender.clone(),
        text: text.to_owned(),
        sent_at_ms: millis(at),
        game: Some(game.clone()),
    };
    let (seq, payload, stored, _, _) =
        match store_message(store, id, &stored_message, false, keyed).await? {
            Ok(stored) => stored,
            Err(outcome) => return Ok(outcome),
        };
    // Announced before and trimmed since: the recorded seq with what this delivery says.
    let raw = if stored.is_empty() { &payload } else { &stored };
    let message = parse_message(id, seq, raw)?;
    // A replay finds the first fan-out's marks (same seq): nobody hears of it twice, and a
    // fan-out the first delivery could not finish is finished now.
    notify_message(store, record, &message).await;
    Ok(AppendOutcome::Appended(message))
}

/// What `append_message.lua` returned: the seq, the JSON sent, the JSON stored (the first
/// one's on a replay, empty when it was trimmed since), the posters and whether the sender
/// posts here for the first time; or the outcome when nothing was appended.
type Stored = (u64, String, String, String, i64);

/// An idempotency key's record in the conversation's slot: its name and the request's
/// fingerprint.
type Keyed = Option<(String, String)>;

fn keyed(
    store: &RedisStore,
    id: Uuid,
    sender: &UserId,
    key: Option<&IdempotencyKey>,
    text: &str,
    game: Option<&GameAnnouncement>,
) -> anyhow::Result<Keyed> {
    key.map(|key| {
        let fingerprint = idempotency::message_fingerprint(text, game)?;
        Ok((
            store.keys.conversation_keyed_message(id, sender, key),
            fingerprint,
        ))
    })
    .transpose()
}

/// Appends `message` in the conversation's slot (`talk`: people's, which records the poster
/// and moves the activity; a `game` one is appended once per announced session), and records
/// the idempotency key with it (a key already recorded: its message, or
/// [`AppendOutcome::KeyReused`]).
async fn store_message(
    store: &RedisStore,
    id: Uuid,
    message: &StoredMessage,
    talk: bool,
    keyed: Keyed,
) -> Result<Result<Stored, AppendOutcome>, StoreError> {
    let payload = serde_json::to_string(message).context("encoding a message")?;
    let append_id = Uuid::new_v4().to_string();
    let mut keys = vec![
        store.keys.conversation_meta(id),
        store.keys.conversation_messages(id),
        store.keys.conversation_games(id),
    ];
    let fingerprint = match keyed {
        Some((record, fingerprint)) => {
            keys.push(record);
            fingerprint
        }
        None => String::new(),
    };
    let (seq, stored, posters, newly): (i64, String, String, i64) = store
        .invoke(
            "appending a message",
            &store.scripts.append_message,
            &keys,
            &[
                payload.clone(),
                message.sent_at_ms.to_string(),
                store.retention_ms.to_string(),
                append_id,
                store.limits.messages_kept.to_string(),
                message.sender.to_string(),
                if talk { "1" } else { "0" }.to_owned(),
                message
                    .game
                    .as_ref()
                    .map(|game| game.session_id.to_string())
                    .unwrap_or_default(),
                fingerprint,
                super::keys::key_window_ms(store.retention_ms).to_string(),
            ],
        )
        .await?;
    Ok(match seq {
        -1 => Err(AppendOutcome::Missing),
        -2 => Err(AppendOutcome::Closed),
        -3 => Err(AppendOutcome::KeyReused),
        seq => Ok((
            u64::try_from(seq).context("negative message seq")?,
            payload,
            stored,
            posters,
            newly,
        )),
    })
}

/// Everyone who sees the conversation hears of the message (once per seq).
async fn notify_message(store: &RedisStore, record: &ConversationRecord, message: &Message) {
    let mark = format!("m.{}.{}", message.conversation_id, message.seq);
    store
        .notify(
            record.visible_participants(),
            &ImEvent::Message(message.clone()),
            &mark,
        )
        .await
}

/// Up to `limit` of the kept messages with a seq greater than `after`, oldest first.
pub(super) async fn read(
    store: &RedisStore,
    conversation_id: Uuid,
    after: u64,
    limit: usize,
) -> Result<Vec<Message>, StoreError> {
    if limit == 0 || i64::try_from(after).is_err() {
        return Ok(Vec::new());
    }
    let (first, raw): (i64, Vec<String>) = store
        .invoke(
            "reading messages",
            &store.scripts.read_messages,
            &[
                store.keys.conversation_meta(conversation_id),
                store.keys.conversation_messages(conversation_id),
            ],
            &[after.to_string(), limit.to_string()],
        )
        .await?;
    let first = u64::try_from(first).context("negative message seq")?;
    raw.iter()
        .zip(first..)
        .map(|(raw, seq)| parse_message(conversation_id, seq, raw).map_err(StoreError::from))
        .collect()
}

fn parse_message(conversation_id: Uuid, seq: u64, raw: &str) -> anyhow::Result<Message> {
    let stored: StoredMessage = serde_json::from_str(raw)
        .with_context(|| format!("parsing message {seq} of conversation {conversation_id}"))?;
    Ok(Message {
        seq,
        conversation_id,
        sender: stored.sender,
        text: stored.text,
        sent_at: from_millis(stored.sent_at_ms)?,
        kind: if stored.game.is_some() {
            MessageKind::Game
        } else {
            MessageKind::Text
        },
        game: stored.game,
    })
}
