//! Conversations: creating one (the creator's slot, the others' indexes, then the conversation), reading, listing and closing them.

use std::collections::HashMap;

use anyhow::{Context, anyhow};
use futures_util::future::try_join_all;
use shared_types::{
    UserId,
    im::{Conversation, ImEvent},
};
use uuid::Uuid;

use super::{
    RedisStore,
    commands::Group,
    values::{from_millis, join_users, millis, parse, parse_users},
};
use crate::{
    domain::ConversationRecord,
    store::{CreateOutcome, StoreError},
};

pub(super) async fn create(
    store: &RedisStore,
    conversation: &Conversation,
) -> Result<CreateOutcome, StoreError> {
    let Some(creator) = conversation.participants.first() else {
        return Err(StoreError::Unexpected(anyhow!(
            "a conversation without participants"
        )));
    };
    let id = conversation.id;
    let created = conversation.created_at;
    // 1. The creator's slot (the limit) and index.
    if !store.reserve(creator, id, created, &[]).await? {
        return Ok(CreateOutcome::Limit);
    }
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
    store
        .notify(
            record.visible_participants(),
            &ImEvent::Conversation(conversation.clone()),
            &format!("c.{id}.opened"),
        )
        .await;
    Ok(CreateOutcome::Created(record))
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
