//! Identifiers that cannot exist in an invalid state.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// The pattern every user id matches (docs/CONTRACT.md, "Identity"), as written in the OpenAPI document.
pub const USER_ID_PATTERN: &str = "^[A-Za-z0-9_.-]{1,64}$";

/// A user id: 1-64 characters of `[A-Za-z0-9_.-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, ToSchema)]
#[schema(value_type = String, pattern = "^[A-Za-z0-9_.-]{1,64}$", example = "alice")]
#[serde(transparent)]
pub struct UserId(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a user id is 1-64 characters of [A-Za-z0-9_.-]")]
pub struct InvalidUserId;

impl UserId {
    pub fn parse(raw: &str) -> Result<Self, InvalidUserId> {
        let valid_len = (1..=64).contains(&raw.len());
        let valid_chars = raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if valid_len && valid_chars {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidUserId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for UserId {
    type Err = InvalidUserId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for UserId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for UserId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_alphabet_up_to_64_chars() {
        assert!(UserId::parse("alice").is_ok());
        assert!(UserId::parse("A.b_c-9").is_ok());
        assert!(UserId::parse(&"x".repeat(64)).is_ok());
    }

    #[test]
    fn rejects_empty_long_and_foreign_characters() {
        for bad in ["", "has space", "slash/", "ünï", "semi;colon"] {
            assert_eq!(UserId::parse(bad), Err(InvalidUserId), "{bad:?}");
        }
        assert_eq!(UserId::parse(&"x".repeat(65)), Err(InvalidUserId));
    }

    #[test]
    fn deserializing_validates() {
        assert!(serde_json::from_str::<UserId>("\"bob\"").is_ok());
        assert!(serde_json::from_str::<UserId>("\"b o b\"").is_err());
    }
}
