//! Presence and contacts (who has talked with whom, so may see their presence): setting and reading a presence, adding contacts, reading a relationship.

use anyhow::anyhow;
use redis::Cmd;
use shared_types::{
    UserId,
    presence::{Presence, PresenceStatus},
};

use super::{
    RedisStore, blocks,
    values::{parse, parse_presence},
};
use crate::{domain::Relationship, store::StoreError};

pub(super) async fn set(
    store: &RedisStore,
    user: &UserId,
    status: PresenceStatus,
) -> Result<(), StoreError> {
    let reply: Vec<redis::Value> = store
        .invoke(
            "setting presence",
            &store.scripts.set_presence,
            &[
                store.keys.user_presence(user),
                store.keys.user_blocks(user),
                store.keys.user_contacts(user),
            ],
            &[status.as_str().to_owned(), store.retention_ms.to_string()],
        )
        .await?;
    let (changed, watchers) = reply.split_first().unzip();
    if changed.is_some_and(|flag| matches!(flag, redis::Value::Int(1))) {
        let watchers: Vec<String> = watchers
            .unwrap_or_default()
            .iter()
            .filter_map(|value| redis::from_redis_value(value.clone()).ok())
            .collect();
        let presence = Presence {
            user_id: user.clone(),
            status,
        };
        store.notify_presence(&presence, &watchers).await;
    }
    Ok(())
}

/// The command that reads `user`'s presence: nil when none is stored (offline).
pub(super) fn lookup(store: &RedisStore, user: &UserId) -> Cmd {
    let mut cmd = redis::cmd("GET");
    cmd.arg(store.keys.user_presence(user));
    cmd
}

pub(super) async fn get(store: &RedisStore, user: &UserId) -> Result<PresenceStatus, StoreError> {
    let lookup = lookup(store, user);
    let raw: Option<String> = store
        .run("reading presence", |mut conn| {
            let lookup = &lookup;
            async move { lookup.query_async(&mut conn).await }
        })
        .await?;
    parse_presence(user, raw)
}

/// Whether `viewer` and `subject` talked, the blocks either way, and `subject`'s presence: one
/// batch over their two slots.
pub(super) async fn relationship(
    store: &RedisStore,
    viewer: &UserId,
    subject: &UserId,
) -> Result<(Relationship, PresenceStatus), StoreError> {
    let mut talked = redis::cmd("SISMEMBER");
    talked
        .arg(store.keys.user_contacts(viewer))
        .arg(subject.as_str());
    let replies = store
        .batch(
            "reading a relationship",
            &[
                vec![talked, blocks::lookup(store, viewer, subject)],
                vec![
                    lookup(store, subject),
                    blocks::lookup(store, subject, viewer),
                ],
            ],
        )
        .await?;
    let mut values = replies.into_iter().flatten();
    let mut next = |what: &str| {
        values
            .next()
            .ok_or_else(|| StoreError::Unexpected(anyhow!("no reply for {what}")))
    };
    let talked: bool = parse(next("contacts")?, "contacts")?;
    let viewer_blocks: Option<f64> = parse(next("blocks")?, "blocks")?;
    let status: Option<String> = parse(next("presence")?, "presence")?;
    let subject_blocks: Option<f64> = parse(next("blocks")?, "blocks")?;
    Ok((
        Relationship {
            talked,
            viewer_blocks: viewer_blocks.is_some(),
            subject_blocks: subject_blocks.is_some(),
        },
        parse_presence(subject, status)?,
    ))
}

impl RedisStore {
    /// Adds `users` to `user`'s contacts.
    pub(super) async fn add_contacts(
        &self,
        user: &UserId,
        users: &[&UserId],
    ) -> Result<(), StoreError> {
        if users.is_empty() {
            return Ok(());
        }
        let mut args = vec![self.retention_ms.to_string()];
        args.extend(users.iter().map(|u| u.to_string()));
        self.invoke::<i64>(
            "adding contacts",
            &self.scripts.add_contacts,
            &[self.keys.user_contacts(user)],
            &args,
        )
        .await
        .map(drop)
    }
}
