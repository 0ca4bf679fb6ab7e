//! Presence and contacts (who has talked with whom, so may see their presence): recording a presence change (step one; the feed is `feed`), reading a presence with its activity, adding contacts, reading a relationship.

use anyhow::anyhow;
use chrono::Utc;
use redis::{Cmd, Value};
use shared_types::{
    UserId,
    activity::{Activity, PresenceChange},
    presence::{Presence, PresenceStatus},
};

use super::{
    RedisStore, blocks,
    commands::ScriptCall,
    values::{Reply, from_millis, parse, parse_activity, parse_presence},
};
use crate::{
    domain::{Relationship, feed::MAX_UNFED},
    store::{PresenceRecorded, StoreError},
};

/// Step one of a presence change ([`crate::store::Store::record_presence`]): the script in
/// the user's slot records the status and, when it changed, its `seq` and unfed mark; then
/// the contacts hear of it.
pub(super) async fn record(
    store: &RedisStore,
    user: &UserId,
    status: PresenceStatus,
) -> Result<PresenceRecorded, StoreError> {
    let mut keys = vec![
        store.keys.user_presence(user),
        store.keys.user_blocks(user),
        store.keys.user_contacts(user),
        store.keys.user_presence_seq(user),
        store.keys.user_activity(user),
    ];
    let mut args = vec![
        status.as_str().to_owned(),
        store.retention_ms.to_string(),
        Utc::now().timestamp_millis().to_string(),
        MAX_UNFED.to_string(),
    ];
    // One server: the feed is appended in the same script (on a cluster its shard is
    // another slot: step two, `feed`).
    if !store.conn.is_cluster() {
        let shard = crate::domain::feed::shard_of(user, store.limits.feed_shards);
        keys.extend([
            store.keys.feed_changes(shard),
            store.keys.feed_appended(shard),
        ]);
        args.extend([
            user.to_string(),
            store.limits.feed_kept.to_string(),
            store.feed_ttl_ms().to_string(),
        ]);
    }
    let reply: Value = store
        .invoke(
            "setting presence",
            &store.scripts.set_presence,
            &keys,
            &args,
        )
        .await?;
    let mut reply = Reply::new(reply, "presence")?;
    let changed: i64 = reply.next("changed")?;
    let activity = parse_activity(
        user,
        reply.next("session")?,
        reply.next("mode")?,
        reply.next("since")?,
    )?;
    let count: usize = reply.next("unfed count")?;
    let mut unfed = Vec::with_capacity(count);
    for _ in 0..count {
        let seq: u64 = reply.next("unfed seq")?;
        let raw: String = reply.next("unfed status")?;
        let at: i64 = reply.next("unfed time")?;
        unfed.push(PresenceChange {
            user_id: user.clone(),
            status: parse_presence(user, Some(raw))?,
            seq,
            at: from_millis(at).map_err(StoreError::Unexpected)?,
        });
    }
    let presence = Presence {
        user_id: user.clone(),
        status,
        activity,
    };
    if changed == 1 {
        let watchers = reply.rest("watchers")?;
        store.notify_presence(&presence, &watchers).await;
    }
    Ok(PresenceRecorded { presence, unfed })
}

/// The command that reads `user`'s presence: nil when none is stored (offline).
pub(super) fn lookup(store: &RedisStore, user: &UserId) -> Cmd {
    let mut cmd = redis::cmd("GET");
    cmd.arg(store.keys.user_presence(user));
    cmd
}

/// The command that reads `user`'s activity (in their slot, beside [`lookup`]).
pub(super) fn activity_lookup(store: &RedisStore, user: &UserId) -> Cmd {
    let mut cmd = redis::cmd("HMGET");
    cmd.arg(store.keys.user_activity(user))
        .arg("session")
        .arg("mode")
        .arg("since");
    cmd
}

/// The reply of [`activity_lookup`].
pub(super) fn parse_activity_reply(
    user: &UserId,
    reply: Value,
) -> Result<Option<Activity>, StoreError> {
    let fields: Vec<Option<String>> = parse(reply, "activity")?;
    let mut fields = fields.into_iter();
    parse_activity(
        user,
        fields.next().flatten(),
        fields.next().flatten(),
        fields.next().flatten(),
    )
}

/// `user`'s presence and activity: one pipeline in their slot.
pub(super) async fn get(store: &RedisStore, user: &UserId) -> Result<Presence, StoreError> {
    let replies = store
        .batch(
            "reading presence",
            &[vec![lookup(store, user), activity_lookup(store, user)]],
        )
        .await?;
    let mut values = replies.into_iter().flatten();
    let status: Option<String> = parse(values.next().unwrap_or(Value::Nil), "presence")?;
    Ok(Presence {
        user_id: user.clone(),
        status: parse_presence(user, status)?,
        activity: parse_activity_reply(user, values.next().unwrap_or(Value::Nil))?,
    })
}

/// Whether `viewer` and `subject` talked, the blocks either way, and `subject`'s presence: one
/// batch over their two slots.
pub(super) async fn relationship(
    store: &RedisStore,
    viewer: &UserId,
    subject: &UserId,
) -> Result<(Relationship, Presence), StoreError> {
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
                    activity_lookup(store, subject),
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
    let activity = parse_activity_reply(subject, next("activity")?)?;
    Ok((
        Relationship {
            talked,
            viewer_blocks: viewer_blocks.is_some(),
            subject_blocks: subject_blocks.is_some(),
        },
        Presence {
            user_id: subject.clone(),
            status: parse_presence(subject, status)?,
            activity,
        },
    ))
}

impl RedisStore {
    /// Adds to each user their new contacts (`(user, contacts)`), each user in their own
    /// slot, all in one batch (one round trip on a standalone server).
    pub(super) async fn add_contacts(
        &self,
        each: &[(&UserId, &[&UserId])],
    ) -> Result<(), StoreError> {
        let calls: Vec<ScriptCall> = each
            .iter()
            .filter(|(_, users)| !users.is_empty())
            .map(|(user, users)| {
                let mut args = vec![self.retention_ms.to_string()];
                args.extend(users.iter().map(|u| u.to_string()));
                (vec![self.keys.user_contacts(user)], args)
            })
            .collect();
        if calls.is_empty() {
            return Ok(());
        }
        self.invoke_each("adding contacts", &self.scripts.add_contacts, &calls)
            .await
            .map(drop)
    }
}
