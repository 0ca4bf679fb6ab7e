//! Conversations: creating one (the creator's slot with the request's idempotency key, the others' indexes, then the conversation), reading, listing and closing them.

use std::{borrow::Cow, collections::HashMap};

use anyhow::{Context, anyhow};
use futures_util::future::try_join_all;
use serde::{Deserialize, Serialize};
use shared_types::{
    UserId,
    im::{Conversation, ImEvent},
};
use uuid::Uuid;

use super::{
    RedisStore,
    commands::Group,
    open_slots::Reserved,
    values::{from_millis, join_users, millis, parse, parse_users},
};
use crate::{
    domain::{ConversationRecord, IdempotencyKey, idempotency},
    store::{CreateOutcome, StoreError},
};

pub(super) async fn create(
    store: &RedisStore,
    conversation: &Conversation,
    key: Option<&IdempotencyKey>,
) -> Result<CreateOutcome, StoreError> {
    let Some(creator) = conversation.participants.first() else {
        return Err(StoreError::Unexpected(anyhow!(
            "a conversation without participants"
        )));
    };
    // 1. The creator's slot (the limit) and index, and the key's record with them.
    let conversation: Cow<'_, Conversation> = match key {
        None => {
            let (id, created) = (conversation.id, conversation.created_at);
            if !store.reserve(creator, id, created, &[]).await? {
                return Ok(CreateOutcome::Limit);
            }
            Cow::Borrowed(conversation)
        }
        Some(key) => match reserve_keyed(store, creator, conversation, key).await? {
            Keyed::Fresh => Cow::Borrowed(conversation),
            Keyed::Done(outcome) => return Ok(outcome),
            Keyed::Finish(first) => Cow::Owned(first),
        },
    };
    let conversation = conversation.as_ref();
    let id = conversation.id;
    let created = conversation.created_at;
    // 2. The others' indexes, in their own slots, each checking there whether they block
    //    the creator (then the conversation stays out of their index).
    let others: Vec<&UserId> = conversation.participants.iter().skip(1).collect();
    let created_ms = millis(created).to_string();
    let prune_before = millis(created)
        .saturating_sub(store.retention_ms)
        .to_string();
    let indexed: Vec<i64> = try_join_all(others.iter().map(|user| {
        let keys = [
            store.keys.user_conversations(user),
            store.keys.user_blocks(user),
        ];
        let args = [
            id.to_string(),
            created_ms.clone(),
            store.retention_ms.to_string(),
            prune_before.clone(),
            creator.to_string(),
        ];
        async move {
            store
                .invoke(
                    "indexing a conversation for a participant",
                    &store.scripts.index_participant,
                    &keys,
                    &args,
                )
                .await
        }
    }))
    .await?;
    let mut record = ConversationRecord::new(conversation.clone());
    record.hidden_from = others
        .iter()
        .zip(indexed)
        .filter(|(_, indexed)| *indexed == 0)
        .map(|(user, _)| (*user).clone())
        .collect();
    // 3. The conversation itself.
    store
        .invoke::<i64>(
            "creating a conversation",
            &store.scripts.create_conversation,
            &[store.keys.conversation_meta(id)],
            &[
                join_users(&conversation.participants),
                created_ms,
                store.retention_ms.to_string(),
                join_users(&record.hidden_from),
            ],
        )
        .await?;
    // 4. Then those who see it hear of it.
    notify_opened(store, &record).await;
    Ok(CreateOutcome::Created(record))
}

/// A creation with an idempotency key, once step 1 ran.
enum Keyed {
    /// The key is new: this request's conversation goes on with the next steps.
    Fresh,
    /// Nothing more to do.
    Done(CreateOutcome),
    /// The key opened this conversation, which an interruption left unwritten: its creation
    /// goes on from step 2 (every step is idempotent).
    Finish(Conversation),
}

/// Step 1 with `key`: the slot and the key's record in one script. A key already used answers
/// what it opened, as it was opened (its events told again, each once), or finishes it.
async fn reserve_keyed(
    store: &RedisStore,
    creator: &UserId,
    conversation: &Conversation,
    key: &IdempotencyKey,
) -> Result<Keyed, StoreError> {
    let fingerprint = idempotency::conversation_fingerprint(&conversation.participants);
    let opened = OpenedWith::from(conversation);
    let answer = serde_json::to_string(&opened).context("encoding a conversation as opened")?;
    let record = store.keys.user_keyed_conversation(creator, key);
    let (id, created) = (conversation.id, conversation.created_at);
    let first = match store
        .reserve_keyed(creator, id, created, record, &fingerprint, &answer)
        .await?
    {
        Reserved::Taken => return Ok(Keyed::Fresh),
        Reserved::Limit => return Ok(Keyed::Done(CreateOutcome::Limit)),
        Reserved::KeyReused => return Ok(Keyed::Done(CreateOutcome::KeyReused)),
        Reserved::KeyUsed(first) => first,
    };
    let first: OpenedWith = serde_json::from_str(&first)
        .with_context(|| format!("reading what {creator}'s idempotency key opened"))?;
    let first = first.conversation()?;
    let Some(stored) = find(store, first.id).await? else {
        // Interrupted after step 1: the slot again (it may have been reclaimed), then on.
        if !store
            .reserve(creator, first.id, first.created_at, &[])
            .await?
        {
            return Ok(Keyed::Done(CreateOutcome::Limit));
        }
        return Ok(Keyed::Finish(first));
    };
    let mut record = ConversationRecord::new(first);
    record.hidden_from = stored.hidden_from;
    notify_opened(store, &record).await;
    Ok(Keyed::Done(CreateOutcome::Created(record)))
}

/// A conversation as its creation's idempotency key records it: what it was opened with.
#[derive(Serialize, Deserialize)]
struct OpenedWith {
    id: Uuid,
    participants: Vec<UserId>,
    created_ms: i64,
}

impl From<&Conversation> for OpenedWith {
    fn from(conversation: &Conversation) -> Self {
        Self {
            id: conversation.id,
            participants: conversation.participants.clone(),
            created_ms: millis(conversation.created_at),
        }
    }
}

impl OpenedWith {
    fn conversation(self) -> anyhow::Result<Conversation> {
        Ok(Conversation {
            id: self.id,
            participants: self.participants,
            created_at: from_millis(self.created_ms)?,
            last_activity_at: None,
            closed: false,
        })
    }
}

/// Step 4: those who see the conversation hear that it was opened (once each).
async fn notify_opened(store: &RedisStore, record: &ConversationRecord) {
    let id = record.conversation.id;
    store
        .notify(
            record.visible_participants(),
            &ImEvent::Conversation(record.conversation.clone()),
            &format!("c.{id}.opened"),
        )
        .await;
}

pub(super) async fn find(
    store: &RedisStore,
    id: Uuid,
) -> Result<Option<ConversationRecord>, StoreError> {
    Ok(store.load_records(&[id]).await?.remove(&id))
}

/// The conversations `user` sees, newest activity first.
pub(super) async fn of_user(
    store: &RedisStore,
    user: &UserId,
) -> Result<Vec<Conversation>, StoreError> {
    let ids: Vec<String> = store
        .whole_sorted_set(
            "listing a user's conversations",
            &store.keys.user_conversations(user),
            false,
        )
        .await?;
    let ids: Vec<Uuid> = ids.iter().filter_map(|raw| raw.parse().ok()).collect();
    let mut conversations: Vec<Conversation> = store
        .load_records(&ids)
        .await?
        .into_values()
        .filter(|record| record.visible_to(user))
        .map(|record| record.conversation)
        .collect();
    crate::store::newest_conversation_first(&mut conversations);
    Ok(conversations)
}

pub(super) async fn close(
    store: &RedisStore,
    id: Uuid,
) -> Result<Option<Conversation>, StoreError> {
    let hash: HashMap<String, String> = store
        .invoke(
            "closing a conversation",
            &store.scripts.close_conversation,
            &[
                store.keys.conversation_meta(id),
                store.keys.conversation_messages(id),
            ],
            &[store.retention_ms.to_string()],
        )
        .await?;
    if hash.is_empty() {
        return Ok(None);
    }
    let record = parse_record(id, &hash)?;
    // Then every participant's slot is freed (closing again frees them again).
    store
        .free_slots(id, &record.conversation.participants)
        .await?;
    // Last, those who see it hear of it: once, when it is first closed.
    if hash.get("newly_closed").is_some_and(|newly| newly == "1") {
        store
            .notify(
                record.visible_participants(),
                &ImEvent::Conversation(record.conversation.clone()),
                &format!("c.{id}.closed"),
            )
            .await;
    }
    Ok(Some(record.conversation))
}

impl RedisStore {
    /// The conversations with these ids that exist, by id: one read per conversation, batched.
    pub(super) async fn load_records(
        &self,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, ConversationRecord>, StoreError> {
        let groups: Vec<Group> = ids
            .iter()
            .map(|id| {
                let mut cmd = redis::cmd("HGETALL");
                cmd.arg(self.keys.conversation_meta(*id));
                vec![cmd]
            })
            .collect();
        let replies = self.batch("reading conversations", &groups).await?;
        let mut found = HashMap::new();
        for (id, reply) in ids.iter().zip(replies) {
            let Some(value) = reply.into_iter().next() else {
                continue;
            };
            let hash: HashMap<String, String> = parse(value, "a conversation")?;
            if !hash.is_empty() {
                found.insert(*id, parse_record(*id, &hash)?);
            }
        }
        Ok(found)
    }
}

fn parse_record(id: Uuid, hash: &HashMap<String, String>) -> anyhow::Result<ConversationRecord> {
    let field = |name: &str| {
        hash.get(name)
            .ok_or_else(|| anyhow!("conversation {id} has no `{name}` field"))
    };
    let users = |name: &str| {
        hash.get(name)
            .map(|raw| parse_users(raw))
            .transpose()
            .map(Option::unwrap_or_default)
            .with_context(|| format!("conversation {id}, `{name}`"))
    };
    let participants = parse_users(field("participants")?)
        .with_context(|| format!("conversation {id}, `participants`"))?;
    let created: i64 = field("created")?.parse().context("parsing `created`")?;
    let active = hash
        .get("active")
        .map(|raw| raw.parse::<i64>())
        .transpose()
        .context("parsing `active`")?
        .map(from_millis)
        .transpose()?;
    Ok(ConversationRecord {
        conversation: Conversation {
            id,
            participants,
            created_at: from_millis(created)?,
            last_activity_at: active,
            closed: field("closed")? == "1",
        },
        posters: users("posters")?,
        hidden_from: users("hidden")?,
    })
}
