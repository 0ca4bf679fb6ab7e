//! Tokens already verified, remembered until they expire: a token seen again skips its signature check and decoding.

use quick_cache::sync::Cache;
use sha2::{Digest, Sha256};

use super::{Caller, LEEWAY_SECS};

/// Callers by the SHA-256 of their token (never the token itself), bounded to a number of
/// entries; the least useful are evicted first (S3-FIFO, `quick_cache`).
pub(super) struct VerifiedTokens {
    callers: Cache<[u8; 32], Caller>,
}

impl VerifiedTokens {
    pub(super) fn new(entries: usize) -> Self {
        Self {
            callers: Cache::new(entries),
        }
    }

    /// The caller `token` was verified for, while it is still valid at `now` (seconds since
    /// the epoch): `exp` with the same leeway as the first verification.
    pub(super) fn get(&self, token: &str, now: u64) -> Option<Caller> {
        let key = digest(token);
        let caller = self.callers.get(&key)?;
        if caller.expires_at.saturating_add(LEEWAY_SECS) < now {
            self.callers.remove(&key);
            return None;
        }
        Some(caller)
    }

    pub(super) fn insert(&self, token: &str, caller: &Caller) {
        self.callers.insert(digest(token), caller.clone());
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.callers.len()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}
