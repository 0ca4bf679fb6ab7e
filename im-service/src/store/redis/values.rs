//! Values as written to Redis and read back: timestamps and scores in milliseconds, comma-separated user lists, typed replies, presence and activity.

use anyhow::{Context, anyhow};
use chrono::{DateTime, Utc};
use redis::{FromRedisValue, Value};
use shared_types::{UserId, activity::Activity, presence::PresenceStatus};

use crate::store::StoreError;

pub(super) fn millis(instant: DateTime<Utc>) -> i64 {
    instant.timestamp_millis()
}

pub(super) fn from_millis(ms: i64) -> anyhow::Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| anyhow!("timestamp {ms} out of range"))
}

/// A score read back from Redis (a float holding whole milliseconds).
pub(super) fn score_millis(score: f64) -> i64 {
    // Scores are milliseconds written by this store: well within f64's exact integers.
    #[expect(clippy::cast_possible_truncation, reason = "whole milliseconds")]
    let ms = score.round() as i64;
    ms
}

pub(super) fn parse<T: FromRedisValue>(value: Value, what: &str) -> Result<T, StoreError> {
    redis::from_redis_value(value)
        .map_err(|err| StoreError::Unexpected(anyhow!("parsing {what}: {err}")))
}

/// Comma-separated user ids; empty entries are skipped.
pub(super) fn parse_users(raw: &str) -> anyhow::Result<Vec<UserId>> {
    raw.split(',')
        .filter(|item| !item.is_empty())
        .map(UserId::parse)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("invalid user id in {raw:?}"))
}

pub(super) fn join_users<'a>(users: impl IntoIterator<Item = &'a UserId>) -> String {
    users
        .into_iter()
        .map(UserId::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

pub(super) fn parse_presence(
    user: &UserId,
    raw: Option<String>,
) -> Result<PresenceStatus, StoreError> {
    match raw {
        None => Ok(PresenceStatus::Offline),
        Some(raw) => raw
            .parse()
            .with_context(|| format!("stored presence of {user}"))
            .map_err(StoreError::Unexpected),
    }
}

/// A game activity as stored (`session`, `mode`, `since` in ms): none when `session` is
/// absent or empty.
pub(super) fn parse_activity(
    user: &UserId,
    session: Option<String>,
    mode: Option<String>,
    since: Option<String>,
) -> Result<Option<Activity>, StoreError> {
    let Some(session) = session.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let parsed = (|| -> anyhow::Result<Activity> {
        let since: i64 = since.unwrap_or_default().parse().context("since")?;
        Ok(Activity::InGame {
            session_id: session.parse().context("session")?,
            mode: mode.unwrap_or_default(),
            since: from_millis(since)?,
        })
    })();
    parsed
        .with_context(|| format!("stored activity of {user}"))
        .map(Some)
        .map_err(StoreError::Unexpected)
}

/// A script's reply, an array, read in order.
pub(super) struct Reply(std::vec::IntoIter<Value>);

impl Reply {
    pub(super) fn new(reply: Value, what: &str) -> Result<Self, StoreError> {
        let values: Vec<Value> = parse(reply, what)?;
        Ok(Self(values.into_iter()))
    }

    pub(super) fn next<T: FromRedisValue>(&mut self, what: &str) -> Result<T, StoreError> {
        let value = self
            .0
            .next()
            .ok_or_else(|| StoreError::Unexpected(anyhow!("no {what} in the reply")))?;
        parse(value, what)
    }

    /// Whatever is left, as strings.
    pub(super) fn rest(self, what: &str) -> Result<Vec<String>, StoreError> {
        self.0.map(|value| parse(value, what)).collect()
    }
}
