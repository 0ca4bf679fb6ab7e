//! Presence statuses and the bodies of the presence endpoints.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::UserId;

/// A user's presence in the IM service. No record means `offline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
#[schema(example = json!("available"))]
pub enum PresenceStatus {
    Available,
    Busy,
    Away,
    #[default]
    Offline,
}

impl PresenceStatus {
    pub const ALL: [PresenceStatus; 4] = [Self::Available, Self::Busy, Self::Away, Self::Offline];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Busy => "busy",
            Self::Away => "away",
            Self::Offline => "offline",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown presence status {0:?}: expected available, busy, away or offline")]
pub struct UnknownStatus(pub String);

impl FromStr for PresenceStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

impl fmt::Display for PresenceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Body of `PUT /v1/presence`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "available"}))]
pub struct PresenceUpdate {
    pub status: PresenceStatus,
}

/// A user's presence as returned by the IM service: their status, and what they are doing in
/// the game (`activity`, `null` when nothing).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[schema(example = json!({"user_id": "bob", "status": "busy", "activity": {"kind": "in_game", "session_id": "0b9b5ce1-55a3-4b8c-a1f5-6d1c3b2a9e10", "mode": "default", "since": "2026-11-23T10:00:00Z"}}))]
pub struct Presence {
    pub user_id: UserId,
    pub status: PresenceStatus,
    /// Playing in an `active` game session (`in_game`), as the game service reported it;
    /// `null` when not playing.
    #[serde(default)]
    pub activity: Option<crate::activity::Activity>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in PresenceStatus::ALL {
            assert_eq!(status.as_str().parse::<PresenceStatus>(), Ok(status));
        }
        assert!("sleeping".parse::<PresenceStatus>().is_err());
    }
}
