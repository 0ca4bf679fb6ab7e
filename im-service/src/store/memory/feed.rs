//! The memory store's presence feed: one bounded list per shard, positioned as a Redis stream's entries are, each user's change appended once.

use std::collections::{HashMap, VecDeque};

use shared_types::{UserId, activity::PresenceChange};

use crate::domain::feed::{Cursor, Position, merge, shard_of};

/// One shard: its kept entries, oldest first, and who was appended up to which `seq`.
#[derive(Default)]
struct Shard {
    entries: VecDeque<(Position, PresenceChange)>,
    /// The position of the newest entry ever appended (positions never go back).
    last: Position,
    /// The newest `seq` appended per user, for the newest users (as the Redis store's
    /// `appended` set, at least `kept` of them).
    appended: HashMap<UserId, u64>,
}

pub(super) struct Feed {
    shards: Vec<Shard>,
    kept: usize,
}

impl Feed {
    pub(super) fn new(shards: usize, kept: usize) -> Self {
        Self {
            shards: (0..shards.max(1)).map(|_| Shard::default()).collect(),
            kept: kept.max(1),
        }
    }

    pub(super) fn shards(&self) -> usize {
        self.shards.len()
    }

    /// Appends `change` to its user's shard at `now_ms`, unless a change of that user with the
    /// same or a newer `seq` is already there (a repeat, or one that lost a race).
    pub(super) fn append(&mut self, change: &PresenceChange, now_ms: u64) {
        let count = self.shards.len();
        let kept = self.kept;
        let Some(shard) = self.shards.get_mut(shard_of(&change.user_id, count)) else {
            return;
        };
        if shard
            .appended
            .get(&change.user_id)
            .is_some_and(|seq| *seq >= change.seq)
        {
            return;
        }
        shard.last = shard.last.next_at(now_ms);
        shard.entries.push_back((shard.last, change.clone()));
        while shard.entries.len() > kept {
            shard.entries.pop_front();
        }
        shard.appended.insert(change.user_id.clone(), change.seq);
        if shard.appended.len() > kept.saturating_mul(2) {
            forget_oldest(&mut shard.appended, kept);
        }
    }

    /// Up to `limit` changes after `after` ([`merge`]), and the cursor after them.
    pub(super) fn read(&self, after: &Cursor, limit: usize) -> (Vec<PresenceChange>, Cursor) {
        let pages = self
            .shards
            .iter()
            .zip(after.positions())
            .map(|(shard, position)| {
                let from = shard.entries.partition_point(|(at, _)| at <= position);
                shard
                    .entries
                    .iter()
                    .skip(from)
                    .take(limit)
                    .cloned()
                    .collect()
            })
            .collect();
        merge(after, pages, limit)
    }
}

/// Keeps the `kept` users with the newest `seq`s.
fn forget_oldest(appended: &mut HashMap<UserId, u64>, kept: usize) {
    let mut seqs: Vec<u64> = appended.values().copied().collect();
    let cut = seqs.len().saturating_sub(kept);
    if cut == 0 {
        return;
    }
    let (_, threshold, _) = seqs.select_nth_unstable(cut);
    let threshold = *threshold;
    appended.retain(|_, seq| *seq >= threshold);
}
