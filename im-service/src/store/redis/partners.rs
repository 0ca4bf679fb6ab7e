//! What a partners query reads: the user's presence and newest open conversations, then each candidate's presence, activity and the blocks either way.

use chrono::{DateTime, Utc};
use redis::Value;
use shared_types::{UserId, presence::PresenceStatus};
use uuid::Uuid;

use super::{
    RedisStore, blocks,
    commands::Group,
    presence,
    values::{millis, parse, parse_presence},
};
use crate::{
    domain::{CandidateFacts, ConversationRecord},
    store::StoreError,
};

/// `user`'s presence and, unless offline, their open conversations active since `since`.
pub(super) async fn sources(
    store: &RedisStore,
    user: &UserId,
    since: DateTime<Utc>,
) -> Result<(PresenceStatus, Vec<ConversationRecord>), StoreError> {
    // The user's presence and their newest open conversations at once, in their slot.
    let presence = presence::lookup(store, user);
    let mut open = redis::cmd("ZRANGE");
    open.arg(store.keys.user_open(user))
        .arg("+inf")
        .arg(millis(since))
        .arg("BYSCORE")
        .arg("REV")
        .arg("LIMIT")
        .arg(0)
        .arg(store.limits.max_open_conversations);
    let mut replies = store
        .batch(
            "reading a user's open conversations",
            &[vec![presence, open]],
        )
        .await?
        .into_iter()
        .flatten();
    let status: Option<String> = parse(replies.next().unwrap_or(Value::Nil), "presence")?;
    let status = parse_presence(user, status)?;
    if status == PresenceStatus::Offline {
        return Ok((status, Vec::new()));
    }
    let ids: Vec<String> = parse(
        replies.next().unwrap_or(Value::Array(Vec::new())),
        "open conversations",
    )?;
    let ids: Vec<Uuid> = ids.iter().filter_map(|raw| raw.parse().ok()).collect();
    let records = store.load_records(&ids).await?.into_values().collect();
    Ok((status, records))
}

/// For each of `candidates`: their presence and activity, and the blocks between them and
/// `user`. One group for the user's blocks, one per candidate (three commands in their slot),
/// all in one batch.
pub(super) async fn candidate_facts(
    store: &RedisStore,
    user: &UserId,
    candidates: &[UserId],
) -> Result<Vec<CandidateFacts>, StoreError> {
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let mut blocked_by_user = redis::cmd("ZMSCORE");
    blocked_by_user.arg(store.keys.user_blocks(user));
    for candidate in candidates {
        blocked_by_user.arg(candidate.as_str());
    }
    let mut groups: Vec<Group> = vec![vec![blocked_by_user]];
    for candidate in candidates {
        groups.push(vec![
            presence::lookup(store, candidate),
            blocks::lookup(store, candidate, user),
            presence::activity_lookup(store, candidate),
        ]);
    }
    let mut replies = store
        .batch("reading partner candidates", &groups)
        .await?
        .into_iter();
    let blocked: Vec<Option<f64>> = parse(
        replies
            .next()
            .into_iter()
            .flatten()
            .next()
            .unwrap_or(Value::Nil),
        "blocks",
    )?;
    candidates
        .iter()
        .zip(replies)
        .enumerate()
        .map(|(i, (candidate, reply))| {
            let mut reply = reply.into_iter();
            let status: Option<String> = parse(reply.next().unwrap_or(Value::Nil), "presence")?;
            let blocks_user: Option<f64> = parse(reply.next().unwrap_or(Value::Nil), "blocks")?;
            let activity =
                presence::parse_activity_reply(candidate, reply.next().unwrap_or(Value::Nil))?;
            Ok(CandidateFacts {
                status: parse_presence(candidate, status)?,
                activity,
                blocks_user: blocks_user.is_some(),
                blocked_by_user: blocked.get(i).copied().flatten().is_some(),
            })
        })
        .collect()
}
