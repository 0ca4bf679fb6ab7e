//! Key names. The part in braces is the Redis Cluster hash tag: one per player,
//! one per session index entry, one per expiry-job shard (which also holds that
//! shard's part of the index of two-phase intents), one for the presence feed.

use shared_types::UserId;
use uuid::Uuid;

use crate::{domain::records::ExpiryJob, store::job_key};

/// Expiry jobs are spread over this many sorted sets (cluster slots).
pub const JOB_SHARDS: u32 = 16;

/// FNV-1a of `name` over the job shards: stable across processes and Rust
/// versions, unlike `DefaultHasher`.
fn shard_of(name: &str) -> u32 {
    let hash = name.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    hash % JOB_SHARDS
}

#[derive(Clone)]
pub struct Keys {
    prefix: String,
}

/// A key together with its hash tag, which decides its cluster slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub tag: String,
    pub name: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// Everything before the hash tag (`lock_all.lua` builds player keys from it).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, tag: String, rest: &str) -> Key {
        Key {
            name: format!("{}:{{{tag}}}:{rest}", self.prefix),
            tag,
        }
    }

    fn player_key(&self, player: &UserId, rest: &str) -> Key {
        self.key(format!("p.{player}"), rest)
    }

    pub fn lock(&self, player: &UserId) -> Key {
        self.player_key(player, "lock")
    }
    pub fn player(&self, player: &UserId) -> Key {
        self.player_key(player, "player")
    }
    pub fn events(&self, player: &UserId) -> Key {
        self.player_key(player, "events")
    }
    /// The intent (transaction id) of a two-phase commit that involves the player.
    pub fn intent(&self, player: &UserId) -> Key {
        self.player_key(player, "intent")
    }
    /// The whole plan of that transaction, for whoever has to finish it.
    pub fn intent_plan(&self, player: &UserId) -> Key {
        self.player_key(player, "intent-plan")
    }
    /// A session lives in its host's slot.
    pub fn session(&self, host: &UserId, id: Uuid) -> Key {
        self.player_key(host, &format!("session:{id}"))
    }
    pub fn session_host(&self, id: Uuid) -> Key {
        self.key(format!("s.{id}"), "host")
    }
    pub fn jobs(&self, shard: u32) -> Key {
        self.key(format!("jobs.{shard}"), "due")
    }
    pub fn jobs_for(&self, job: &ExpiryJob) -> Key {
        self.jobs(shard_of(&job_key(job)))
    }
    /// Two-phase transactions under way in a job shard's slot, by when they were
    /// prepared (a sorted set; see `intents.rs`).
    pub fn intents(&self, shard: u32) -> Key {
        self.key(format!("jobs.{shard}"), "intents")
    }
    pub fn intents_for(&self, tx: &str) -> Key {
        self.intents(shard_of(tx))
    }
    /// "Part of transaction `tx` was applied in this slot" (two-phase commit).
    pub fn applied(&self, tag: &str, tx: &str) -> Key {
        self.key(tag.to_owned(), &format!("applied:{tx}"))
    }
    /// Who follows the IM service's presence feed now (one slot with the cursor).
    pub fn feed_lease(&self) -> Key {
        self.key("feed".to_owned(), "lease")
    }
    pub fn feed_cursor(&self) -> Key {
        self.key("feed".to_owned(), "cursor")
    }
    pub fn channel(&self) -> String {
        format!("{}:events", self.prefix)
    }
}
