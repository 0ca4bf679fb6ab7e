//! Lobby announcements: each is a job in the store, scheduled in the lobby's own commit (so
//! none is lost with a replica), posted by whichever replica claims it, and tried again with
//! backoff while the IM service is down, until the lobby's invitations run out.

use std::time::Duration;

use shared_types::{
    game::{SessionKind, SessionState},
    im::GameAnnouncement,
};
use uuid::Uuid;

use super::{Game, GameError};
use crate::{
    domain::{
        records::{ExpiryJob, ScheduledJob, SessionRef},
        tx::Changes,
    },
    im_client::{AnnounceError, announcement_text},
    metrics::{self, AnnounceOutcome},
};

/// The first retry waits this long; each one after twice as long, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl Game {
    /// Posts (or gives up on) one announcement; `Err` only when the store failed (the job is
    /// then handed out again after its lease).
    pub(super) async fn announce(
        &self,
        lobby: &SessionRef,
        conversation: Uuid,
        attempt: u32,
    ) -> Result<(), GameError> {
        let session = self.store.session(lobby).await?;
        let Some(session) = session
            .filter(|s| s.kind == SessionKind::Multiplayer && s.state != SessionState::Ended)
        else {
            // The lobby ended or turned solo before its announcement went out: nothing to join.
            metrics::announcement(AnnounceOutcome::Moot);
            return Ok(());
        };
        let game = GameAnnouncement {
            session_id: session.id,
            host: session.host.clone(),
            mode: session.mode.clone(),
            state: session.state,
        };
        let text = announcement_text(&game);
        let why = match self.im.announce(conversation, &text, &game).await {
            Ok(()) => {
                metrics::announcement(AnnounceOutcome::Posted);
                return Ok(());
            }
            Err(AnnounceError::Refused(why)) => {
                tracing::warn!(%why, %conversation, session = %session.id, "announcement refused; dropped");
                metrics::announcement(AnnounceOutcome::Dropped);
                return Ok(());
            }
            Err(AnnounceError::Unavailable(why)) => why,
        };
        // Worth retrying while someone can still join from it: until its invitations expire.
        let deadline = session.created_at + self.engine.invite_ttl;
        let next = self.now() + chrono::Duration::from_std(backoff(attempt)).unwrap_or_default();
        if next >= deadline {
            tracing::warn!(%why, %conversation, session = %session.id, attempts = attempt + 1, "announcement dropped: the IM service stayed unavailable until the lobby's invitations ran out");
            metrics::announcement(AnnounceOutcome::Dropped);
            return Ok(());
        }
        tracing::debug!(%why, %conversation, attempt, "announcement deferred");
        let retry = Changes {
            jobs: vec![ScheduledJob {
                job: ExpiryJob::Announce {
                    lobby: lobby.clone(),
                    conversation,
                    attempt: attempt.saturating_add(1),
                },
                due: next,
            }],
            ..Changes::default()
        };
        // No player is locked: the commit only schedules the next try.
        let token = Uuid::new_v4().to_string();
        self.store.commit(&[], &token, &retry).await?;
        metrics::announcement(AnnounceOutcome::Retried);
        Ok(())
    }
}

/// The wait before try `attempt + 1`: 250 ms, 500 ms, 1 s, … up to 5 s.
fn backoff(attempt: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(2u32.saturating_pow(attempt.min(16)))
        .min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let waits: Vec<u128> = (0..7).map(|a| backoff(a).as_millis()).collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 4000, 5000, 5000]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
