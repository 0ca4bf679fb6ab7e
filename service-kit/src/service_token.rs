//! The `service` token one service presents to the other, minted once and re-minted before it expires.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::Context;
use shared_types::{
    UserId,
    auth::{Minter, Scope},
};

/// Service tokens live this long and are re-minted a minute before they expire.
const TOKEN_TTL: Duration = Duration::from_secs(600);
const RENEW_BEFORE: Duration = Duration::from_secs(60);

/// A cached `service`-scope bearer token for `subject` (the calling service's name).
pub struct ServiceToken {
    minter: Minter,
    subject: UserId,
    cached: Mutex<Option<(String, Instant)>>,
}

impl ServiceToken {
    pub fn new(minter: Minter, subject: &str) -> anyhow::Result<Self> {
        Ok(Self {
            minter,
            subject: UserId::parse(subject).context("service subject")?,
            cached: Mutex::new(None),
        })
    }

    /// The token to send now: the cached one while it has a minute left, else a new one.
    pub fn bearer(&self) -> anyhow::Result<String> {
        let mut cached = self
            .cached
            .lock()
            .map_err(|_| anyhow::anyhow!("service token cache poisoned"))?;
        if let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let token = self
            .minter
            .mint(&self.subject, Scope::Service, TOKEN_TTL.as_secs())
            .context("minting the service token")?;
        *cached = Some((token.clone(), Instant::now() + TOKEN_TTL - RENEW_BEFORE));
        Ok(token)
    }
}

#[cfg(test)]
#[expect(clippy::expect_used, reason = "tests")]
mod tests {
    use shared_types::auth::Verifier;

    use super::*;

    const SECRET: &[u8] = b"a-secret-of-at-least-thirty-two-bytes!";

    #[test]
    fn the_token_is_a_service_token_for_the_subject_and_is_reused() {
        let tokens = ServiceToken::new(Minter::hs256(SECRET, "iss", "aud"), "im-service")
            .expect("a valid subject");
        let first = tokens.bearer().expect("minted");
        assert_eq!(
            tokens.bearer().expect("cached"),
            first,
            "reused while fresh"
        );
        let caller = Verifier::hs256(SECRET, "iss", "aud")
            .verify(&first)
            .expect("verifies");
        assert!(caller.is_service());
        assert_eq!(caller.user_id.as_str(), "im-service");
    }
}
