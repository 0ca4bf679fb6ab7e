//! Presence both ways: what a player is doing in the game (reported by the game service to
//! the IM service), and the IM service's feed of presence changes (read by the game service).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{UserId, presence::PresenceStatus};

/// What a user is doing beside their status: playing in an `active` game session.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[schema(example = json!({"kind": "in_game", "session_id": "0b9b5ce1-55a3-4b8c-a1f5-6d1c3b2a9e10", "mode": "default", "since": "2026-11-23T10:00:00Z"}))]
pub enum Activity {
    InGame {
        session_id: Uuid,
        #[schema(example = "default")]
        mode: String,
        /// When the player's part in the session began.
        since: DateTime<Utc>,
    },
}

/// One change of a player's game activity: they began (`playing: true`) or stopped playing
/// in a session. `seq` increases with each report about one player: a report older than
/// the newest applied is ignored, so reports may arrive late, twice or out of order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"user_id": "bob", "session_id": "0b9b5ce1-55a3-4b8c-a1f5-6d1c3b2a9e10", "mode": "default", "playing": true, "seq": 3, "at": "2026-11-23T10:00:00Z"}))]
pub struct ActivityReport {
    pub user_id: UserId,
    pub session_id: Uuid,
    #[schema(example = "default", min_length = 1, max_length = 32)]
    pub mode: String,
    pub playing: bool,
    #[schema(minimum = 1, example = 3)]
    pub seq: u64,
    pub at: DateTime<Utc>,
}

/// Body of `PUT /v1/activity` (IM service, `service` scope): 1-256 reports.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reports": [{"user_id": "bob", "session_id": "0b9b5ce1-55a3-4b8c-a1f5-6d1c3b2a9e10", "mode": "default", "playing": true, "seq": 3, "at": "2026-11-23T10:00:00Z"}]}))]
pub struct ActivityReports {
    #[schema(min_items = 1, max_items = 256)]
    pub reports: Vec<ActivityReport>,
}

/// One entry of the IM service's presence feed: `user_id`'s status became `status`. `seq`
/// increases with each change of one user's status.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[schema(example = json!({"user_id": "bob", "status": "offline", "seq": 7, "at": "2026-11-23T10:00:00Z"}))]
pub struct PresenceChange {
    pub user_id: UserId,
    pub status: PresenceStatus,
    #[schema(minimum = 1, example = 7)]
    pub seq: u64,
    pub at: DateTime<Utc>,
}

/// Answer of `GET /v1/presence/changes?after=&limit=` (IM service, `service` scope): the
/// changes after the cursor `after` (from the start of what is kept when absent), each
/// user's in the order they happened, and the cursor to read on from.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[schema(example = json!({"changes": [{"user_id": "bob", "status": "offline", "seq": 7, "at": "2026-11-23T10:00:00Z"}], "next": "1795424400000-0,0-0,0-0,0-0"}))]
pub struct PresenceChanges {
    pub changes: Vec<PresenceChange>,
    /// Opaque: pass it as `after` to read on. Equal to `after` when nothing was new.
    #[schema(example = "1795424400000-0,0-0,0-0,0-0")]
    pub next: String,
}
