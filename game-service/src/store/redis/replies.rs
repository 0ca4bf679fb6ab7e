//! Redis replies read as store values: errors as [`StoreError`]s, bulk and simple strings as text, stored JSON decoded.

use redis::{RedisError, Value};

use crate::store::{StoreError, StoreResult};

pub(super) fn from_redis(err: RedisError) -> StoreError {
    if err.to_string().contains("LEASE_LOST") {
        StoreError::LeaseLost
    } else {
        StoreError::Unavailable(err.into())
    }
}

/// [`from_redis`], saying what the failed call was doing.
pub(super) fn from_redis_while(what: &'static str) -> impl Fn(RedisError) -> StoreError {
    move |err| match from_redis(err) {
        StoreError::Unavailable(err) => StoreError::Unavailable(err.context(what)),
        other => other,
    }
}

pub(super) fn corrupt(err: serde_json::Error, what: &str) -> StoreError {
    StoreError::Corrupt(anyhow::Error::new(err).context(format!("decoding {what}")))
}

pub(super) fn text(value: Option<&Value>) -> Option<String> {
    match value {
        Some(Value::BulkString(bytes)) if !bytes.is_empty() => {
            Some(String::from_utf8_lossy(bytes).into_owned())
        }
        Some(Value::SimpleString(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// Decodes a stored JSON value; `None` stays `None`.
pub(super) fn decode<T: serde::de::DeserializeOwned>(
    raw: Option<String>,
    what: &str,
) -> StoreResult<Option<T>> {
    raw.map(|json| serde_json::from_str(&json).map_err(|e| corrupt(e, what)))
        .transpose()
}
