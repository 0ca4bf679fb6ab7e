//! The presence feed in Redis: one stream per shard (`{feed.<n>}`), appended by a script in the shard's slot after the change was recorded in the user's, and read with one batch over every shard.

use std::collections::HashMap;

use anyhow::{Context, anyhow};
use redis::Value;
use shared_types::{UserId, activity::PresenceChange};

use super::{
    RedisStore,
    commands::Group,
    values::{from_millis, millis, parse},
};
use crate::{
    domain::feed::{Cursor, MIN_FEED_TTL_MS, Position, merge, shard_of},
    store::StoreError,
};

impl RedisStore {
    /// How long the feed's keys live after their newest change: the retention, at least a day.
    pub(super) fn feed_ttl_ms(&self) -> i64 {
        self.retention_ms
            .max(i64::try_from(MIN_FEED_TTL_MS).unwrap_or(i64::MAX))
    }
}

/// Appends `changes` (`user`'s, oldest first) to the user's shard, each once, then clears
/// their unfed marks in the user's slot. The marks are cleared only after the append went
/// through; clearing them is not essential (a mark left would only make the next
/// `PUT /v1/presence` append the change again, which the shard refuses as a repeat), so a
/// failure there is logged, not returned.
pub(super) async fn append(
    store: &RedisStore,
    user: &UserId,
    changes: &[PresenceChange],
) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    let shard = shard_of(user, store.limits.feed_shards);
    let mut args = vec![
        store.limits.feed_kept.to_string(),
        store.feed_ttl_ms().to_string(),
    ];
    for change in changes {
        args.extend([
            change.user_id.to_string(),
            change.status.as_str().to_owned(),
            change.seq.to_string(),
            millis(change.at).to_string(),
        ]);
    }
    store
        .invoke::<i64>(
            "appending to the presence feed",
            &store.scripts.append_feed,
            &[
                store.keys.feed_changes(shard),
                store.keys.feed_appended(shard),
            ],
            &args,
        )
        .await?;
    let mut clear = redis::cmd("HDEL");
    clear.arg(store.keys.user_presence_seq(user));
    for change in changes {
        clear.arg(format!("p.{}", change.seq));
    }
    let cleared = store
        .run("clearing unfed presence marks", |mut conn| {
            let clear = &clear;
            async move { clear.query_async::<i64>(&mut conn).await }
        })
        .await;
    if let Err(err) = cleared {
        tracing::warn!(%err, %user, "unfed marks left set: the next presence update appends those changes again (the feed takes them once)");
    }
    Ok(())
}

/// Up to `limit` changes after `after`: every shard's next `limit` entries in one batch (one
/// `XRANGE` per shard), then the oldest `limit` of them all ([`merge`]).
pub(super) async fn read(
    store: &RedisStore,
    after: &Cursor,
    limit: usize,
) -> Result<(Vec<PresenceChange>, Cursor), StoreError> {
    let groups: Vec<Group> = after
        .positions()
        .iter()
        .enumerate()
        .map(|(shard, position)| {
            let mut range = redis::cmd("XRANGE");
            range
                .arg(store.keys.feed_changes(shard))
                .arg(position.successor().to_string())
                .arg("+")
                .arg("COUNT")
                .arg(limit);
            vec![range]
        })
        .collect();
    let replies = store.batch("reading the presence feed", &groups).await?;
    let pages = replies
        .into_iter()
        .map(|reply| {
            let entries: Vec<(String, HashMap<String, String>)> = parse(
                reply.into_iter().next().unwrap_or(Value::Nil),
                "feed entries",
            )?;
            entries
                .into_iter()
                .map(|(id, fields)| entry(&id, &fields).map_err(StoreError::Unexpected))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(merge(after, pages, limit))
}

/// One stream entry: its id and the change it holds.
fn entry(id: &str, fields: &HashMap<String, String>) -> anyhow::Result<(Position, PresenceChange)> {
    let field = |name: &str| {
        fields
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| anyhow!("feed entry {id} has no {name}"))
    };
    let position = id
        .parse::<Position>()
        .map_err(|_| anyhow!("feed entry id {id:?}"))?;
    let change = PresenceChange {
        user_id: UserId::parse(field("user_id")?)
            .with_context(|| format!("feed entry {id}: user id"))?,
        status: field("status")?
            .parse()
            .with_context(|| format!("feed entry {id}: status"))?,
        seq: field("seq")?
            .parse()
            .with_context(|| format!("feed entry {id}: seq"))?,
        at: from_millis(
            field("at")?
                .parse()
                .with_context(|| format!("feed entry {id}: at"))?,
        )?,
    };
    Ok((position, change))
}
