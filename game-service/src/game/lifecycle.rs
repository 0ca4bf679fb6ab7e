//! The session lifecycle as the game runner sees it: game servers end
//! sessions, heartbeat and verify join tokens; players' requests and open
//! streams are signs of life.

use chrono::DateTime;
use shared_types::{
    UserId,
    game::{EndedReason, GameEvent, Session, SessionState, Verification},
};
use uuid::Uuid;

use super::{Game, GameError};
use crate::{
    domain::{
        engine::{Outcome, Refusal},
        records::{SessionRecord, SessionRef},
        tx::Changes,
    },
    store::Scope,
};

impl Game {
    /// A game server ends a session (again: harmless). `None`: no such session.
    pub async fn end(&self, id: Uuid, reason: EndedReason) -> Result<Option<Session>, GameError> {
        let Some(at) = self.session_ref(id).await? else {
            return Ok(None);
        };
        let (outcome, tx) = self
            .run(&at.host, Scope::Record, &|engine, tx| {
                engine.end(tx, &at, reason)
            })
            .await?;
        if let Outcome::Refused(Refusal::NotFound(_)) = outcome {
            return Ok(None);
        }
        let session = match tx.cached_session(id) {
            Some(session) => Some(session.clone()),
            None => self.store.session(&at).await?,
        };
        Ok(session.map(|s| s.view()))
    }

    /// A game server says the match is alive. `None`: no such session.
    pub async fn heartbeat(&self, id: Uuid) -> Result<Option<Session>, GameError> {
        let Some(session) = self.session_by_id(id).await? else {
            return Ok(None);
        };
        if session.state != SessionState::Ended && self.life_is_stale(&session) {
            self.touch(&session.reference()).await?;
        }
        Ok(Some(session.view()))
    }

    /// Checks a join token: its signature, issuer, audience and expiry, then
    /// whether its player is still in its session.
    pub async fn verify_join_token(&self, token: &str) -> Result<Verification, GameError> {
        let claims = match self.tokens.verify(token) {
            Ok(claims) => claims,
            Err(error) => {
                return Ok(Verification {
                    valid: false,
                    player_id: None,
                    session_id: None,
                    member: false,
                    expires_at: None,
                    error: Some(error),
                });
            }
        };
        let member = self
            .session_by_id(claims.sid)
            .await?
            .is_some_and(|s| s.is_live_for(&claims.sub));
        Ok(Verification {
            valid: true,
            member,
            expires_at: i64::try_from(claims.exp)
                .ok()
                .and_then(|exp| DateTime::from_timestamp(exp, 0)),
            player_id: Some(claims.sub),
            session_id: Some(claims.sid),
            error: None,
        })
    }

    /// A sign of life from `p` (a request or an open stream): recorded on
    /// their live session when the last record is older than the life
    /// resolution. Best effort: failing to record it only risks an early
    /// idle check, which finds the next sign of life.
    pub async fn note_life(&self, p: &UserId, session: &SessionRecord) {
        if !session.is_live_for(p) || !self.life_is_stale(session) {
            return;
        }
        if let Err(err) = self.touch(&session.reference()).await {
            tracing::debug!(%err, "recording a sign of life");
        }
    }

    /// [`Game::note_life`] for whatever session `p` is in now (open event streams).
    pub async fn note_life_of(&self, p: &UserId) -> Result<(), GameError> {
        let record = self.store.player(p).await?.unwrap_or_default();
        if let Some(at) = &record.session
            && let Some(session) = self.store.session(at).await?
        {
            self.note_life(p, &session).await;
        }
        Ok(())
    }

    fn life_is_stale(&self, session: &SessionRecord) -> bool {
        self.now() - session.last_life() >= self.engine.life_resolution()
    }

    async fn touch(&self, at: &SessionRef) -> Result<(), GameError> {
        self.run(&at.host, Scope::Record, &|engine, tx| engine.touch(tx, at))
            .await
            .map(drop)
    }

    async fn session_ref(&self, id: Uuid) -> Result<Option<SessionRef>, GameError> {
        Ok(self
            .store
            .session_host(id)
            .await?
            .map(|host| SessionRef { id, host }))
    }

    pub(super) async fn session_by_id(&self, id: Uuid) -> Result<Option<SessionRecord>, GameError> {
        match self.session_ref(id).await? {
            Some(at) => Ok(self.store.session(&at).await?),
            None => Ok(None),
        }
    }

    /// The wire form of a session as `viewer` sees it, with their own join token.
    pub(super) fn view(&self, session: &SessionRecord, viewer: &UserId) -> Session {
        let mut view = session.view();
        self.tokens.attach(&mut view, viewer);
        view
    }

    /// Gives each `session` event its recipient's join token before it is stored.
    pub(super) fn sign_events(&self, changes: &mut Changes) {
        for (to, event) in &mut changes.events {
            if let GameEvent::Session(session) = event {
                self.tokens.attach(session, to);
            }
        }
    }
}
