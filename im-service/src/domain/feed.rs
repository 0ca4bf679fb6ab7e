//! The presence feed (`GET /v1/presence/changes`): which shard holds a user's changes, the `seq` of a change, positions in a shard, and the cursor over every shard.

use std::{fmt, str::FromStr};

use shared_types::{UserId, activity::PresenceChange};

/// Most feed shards (`IM_FEED_SHARDS`).
pub const MAX_SHARDS: usize = 64;
/// Changes returned by one read when the query gives no `limit`.
pub const DEFAULT_LIMIT: usize = 256;
/// Most changes one read may ask for.
pub const MAX_LIMIT: usize = 1000;
/// Most changes of one user kept waiting for the feed (see `Store::record_presence`); older
/// ones are dropped should the feed stay unreachable for that long.
pub const MAX_UNFED: usize = 64;
/// The feed is kept at least this long after its newest change, whatever `IM_RETENTION_SECS`.
pub const MIN_FEED_TTL_MS: u64 = 24 * 3600 * 1000;

/// The shard of `user`'s changes: FNV-1a of the id (stable across processes and Rust
/// versions, as the game service's job shards), modulo `shards`.
pub fn shard_of(user: &UserId, shards: usize) -> usize {
    let hash = user.as_str().bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    usize::try_from(hash).unwrap_or_default() % shards.max(1)
}

/// The `seq` of a user's next change: one more than their previous change's, and never less
/// than the time in milliseconds, so it keeps increasing after the record that held the
/// previous one expired (then `previous` is 0).
pub fn next_seq(previous: u64, now_ms: u64) -> u64 {
    previous.saturating_add(1).max(now_ms)
}

/// A position in one shard: the id of an entry, `<ms>-<n>` (a Redis stream id), ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub ms: u64,
    pub n: u64,
}

impl Position {
    /// The smallest position after this one (reading "after" a position is reading from this).
    pub fn successor(self) -> Self {
        match self.n.checked_add(1) {
            Some(n) => Self { ms: self.ms, n },
            None => Self {
                ms: self.ms.saturating_add(1),
                n: 0,
            },
        }
    }

    /// The position of an entry appended after `self` at `now_ms`: a later millisecond, or
    /// the next number in this one (the clock never takes a shard backwards).
    pub fn next_at(self, now_ms: u64) -> Self {
        if now_ms > self.ms {
            Self { ms: now_ms, n: 0 }
        } else {
            self.successor()
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.n)
    }
}

impl FromStr for Position {
    type Err = InvalidCursor;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let (ms, n) = raw.split_once('-').ok_or(InvalidCursor::Malformed)?;
        let number = |part: &str| {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(InvalidCursor::Malformed);
            }
            part.parse::<u64>().map_err(|_| InvalidCursor::Malformed)
        };
        Ok(Self {
            ms: number(ms)?,
            n: number(n)?,
        })
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidCursor {
    #[error("`after` is not a cursor this service returned")]
    Malformed,
    #[error(
        "`after` has {got} positions but the feed has {shards} shards (IM_FEED_SHARDS changed?): read again without `after`"
    )]
    Shards { got: usize, shards: usize },
}

/// Where a reader of the feed is: one position per shard, the last entry it was given there.
/// Opaque to callers: `<pos0>,<pos1>,…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(Vec<Position>);

impl Cursor {
    /// Before every kept entry of every shard.
    pub fn start(shards: usize) -> Self {
        Self(vec![Position::default(); shards])
    }

    /// A cursor this service returned, for a feed of `shards` shards.
    pub fn parse(raw: &str, shards: usize) -> Result<Self, InvalidCursor> {
        let positions = raw
            .split(',')
            .map(str::parse)
            .collect::<Result<Vec<Position>, _>>()?;
        if positions.len() != shards {
            return Err(InvalidCursor::Shards {
                got: positions.len(),
                shards,
            });
        }
        Ok(Self(positions))
    }

    pub fn positions(&self) -> &[Position] {
        &self.0
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, position) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{position}")?;
        }
        Ok(())
    }
}

/// The answer to one read: from `pages` (each shard's entries after the cursor's position
/// there, oldest first), the oldest `limit` entries overall (by position, then shard), so that
/// no shard's backlog starves the others; and the cursor after what is returned (each shard's
/// position moves to the last entry taken from it). Each shard's entries stay in their order.
pub fn merge(
    after: &Cursor,
    pages: Vec<Vec<(Position, PresenceChange)>>,
    limit: usize,
) -> (Vec<PresenceChange>, Cursor) {
    let mut all: Vec<(Position, usize, PresenceChange)> = pages
        .into_iter()
        .enumerate()
        .flat_map(|(shard, page)| {
            page.into_iter()
                .map(move |(position, change)| (position, shard, change))
        })
        .collect();
    all.sort_by_key(|(position, shard, _)| (*position, *shard));
    all.truncate(limit);
    let mut next = after.clone();
    let mut changes = Vec::with_capacity(all.len());
    for (position, shard, change) in all {
        if let Some(at) = next.0.get_mut(shard) {
            *at = (*at).max(position);
        }
        changes.push(change);
    }
    (changes, next)
}

#[cfg(test)]
#[expect(clippy::expect_used, reason = "tests")]
mod tests {
    use chrono::Utc;
    use shared_types::presence::PresenceStatus;

    use super::*;

    fn change(user: &str, seq: u64) -> PresenceChange {
        PresenceChange {
            user_id: UserId::parse(user).expect("valid id"),
            status: PresenceStatus::Offline,
            seq,
            at: Utc::now(),
        }
    }

    #[test]
    fn shards_are_stable_and_in_range() {
        let bob = UserId::parse("bob").expect("valid id");
        // FNV-1a 32 of "bob" is 0x86c6a0d4 (as the game service computes it).
        assert_eq!(shard_of(&bob, 8), 0x86c6_a0d4 % 8);
        for shards in [1, 3, 8, 64] {
            assert!(shard_of(&bob, shards) < shards);
        }
    }

    #[test]
    fn seqs_increase_and_never_fall_behind_the_clock() {
        assert_eq!(next_seq(0, 1_000), 1_000);
        assert_eq!(next_seq(1_000, 1_000), 1_001);
        assert_eq!(next_seq(5_000, 1_000), 5_001);
        assert_eq!(next_seq(u64::MAX, 1), u64::MAX);
    }

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let cursor = Cursor::parse("17-0,0-0,18-3", 3).expect("a cursor");
        assert_eq!(cursor.to_string(), "17-0,0-0,18-3");
        assert_eq!(Cursor::start(2).to_string(), "0-0,0-0");
        for bad in [
            "",
            "17",
            "17-",
            "-1",
            "a-1",
            "1-2-3",
            "17-0,,0-0",
            " 1-0,0-0,0-0",
        ] {
            assert_eq!(
                Cursor::parse(bad, 3),
                Err(InvalidCursor::Malformed),
                "{bad:?}"
            );
        }
        assert_eq!(
            Cursor::parse("1-0,2-0", 3),
            Err(InvalidCursor::Shards { got: 2, shards: 3 })
        );
        assert_eq!(
            Cursor::parse("99999999999999999999-0,0-0,0-0", 3),
            Err(InvalidCursor::Malformed)
        );
    }

    #[test]
    fn positions_move_forward_whatever_the_clock_says() {
        let at = Position { ms: 10, n: 4 };
        assert_eq!(at.next_at(11), Position { ms: 11, n: 0 });
        assert_eq!(at.next_at(10), Position { ms: 10, n: 5 });
        assert_eq!(at.next_at(3), Position { ms: 10, n: 5 });
        assert_eq!(
            Position { ms: 1, n: u64::MAX }.successor(),
            Position { ms: 2, n: 0 }
        );
    }

    #[test]
    fn a_read_takes_the_oldest_entries_overall_and_moves_each_shard_past_what_it_took() {
        let p = |ms| Position { ms, n: 0 };
        let after = Cursor::parse("0-0,5-0", 2).expect("a cursor");
        let pages = vec![
            vec![(p(1), change("a", 1)), (p(7), change("a", 2))],
            vec![(p(6), change("b", 1)), (p(8), change("b", 2))],
        ];
        let (changes, next) = merge(&after, pages.clone(), 2);
        let seen: Vec<(&str, u64)> = changes
            .iter()
            .map(|c| (c.user_id.as_str(), c.seq))
            .collect();
        assert_eq!(seen, [("a", 1), ("b", 1)]);
        assert_eq!(next.to_string(), "1-0,6-0");
        let (all, last) = merge(&after, pages, 10);
        assert_eq!(all.len(), 4);
        assert_eq!(last.to_string(), "7-0,8-0");
        let (none, same) = merge(&after, vec![Vec::new(), Vec::new()], 10);
        assert!(none.is_empty());
        assert_eq!(same, after);
    }
}
