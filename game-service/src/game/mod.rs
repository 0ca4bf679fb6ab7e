//! The game's requests: each runs an engine transition against the store
//! (through [`runner`]: locks, retries with a larger lock set, commit) and
//! renders the player's state.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use shared_types::{
    UserId,
    game::{PlayerState, Reason, Session, SessionState},
};
use uuid::Uuid;

mod deliver;
mod lifecycle;
mod runner;

use crate::{
    domain::{
        engine::{Engine, Outcome, Refusal},
        records::{ExpiryJob, PlayerRecord},
        tx::{Tx, TxError},
    },
    im_client::ImService,
    join_tokens::JoinTokens,
    store::{Scope, Store, StoreError},
};

#[derive(Debug, thiserror::Error)]
pub enum GameError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("players are busy with concurrent requests; retry")]
    Busy,
    #[error("refused: {0:?}")]
    Refused(Refusal),
}

/// The time transitions see; tests advance it by hand to drive expiry.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

pub struct Game {
    store: Arc<dyn Store>,
    engine: Engine,
    im: Arc<dyn ImService>,
    clock: Arc<dyn Clock>,
    tokens: Arc<JoinTokens>,
}

type Op<'a> = dyn Fn(&Engine, &mut Tx) -> Result<Outcome, TxError> + Send + Sync + 'a;

impl Game {
    pub fn new(
        store: Arc<dyn Store>,
        engine: Engine,
        im: Arc<dyn ImService>,
        clock: Arc<dyn Clock>,
        tokens: Arc<JoinTokens>,
    ) -> Self {
        Self {
            store,
            engine,
            im,
            clock,
            tokens,
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn join_tokens(&self) -> &JoinTokens {
        &self.tokens
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn im(&self) -> &Arc<dyn ImService> {
        &self.im
    }

    /// Applies one change of the IM service's presence feed to its player (see
    /// [`Engine::presence_changed`](crate::domain::engine::Engine::presence_changed)).
    /// Only `offline` changes anything, and only for a player the game has a record of: the
    /// others cost no transition (the feed carries every status change of every chat user).
    pub async fn presence_changed(
        &self,
        change: &shared_types::activity::PresenceChange,
    ) -> Result<(), GameError> {
        if change.status != shared_types::presence::PresenceStatus::Offline {
            return Ok(());
        }
        let p = &change.user_id;
        if self.store.player(p).await?.is_none() {
            return Ok(());
        }
        self.run(p, Scope::Record, &|engine, tx| {
            engine.presence_changed(tx, p, change.status, change.seq)
        })
        .await?;
        Ok(())
    }

    /// Steps 2-6 of the flow (docs/CONTRACT.md): resume what is open, else ask the IM service
    /// and propose a session of `mode` (`None`: the default mode) or go solo.
    pub async fn connect(&self, p: &UserId, mode: Option<&str>) -> Result<PlayerState, GameError> {
        let mode = self
            .engine
            .modes
            .choose(mode)
            .map_err(|known| GameError::Refused(Refusal::UnknownMode(known)))?;
        let state = self.resume_or_arrive(p, &mode.name).await?;
        crate::metrics::CONNECTS.inc();
        Ok(state)
    }

    /// A lobby launched from a chat (the IM service, with a `service` token): hosted by
    /// `host`, inviting `invitees`, announced in `conversation`. The host's state after it.
    pub async fn launch(
        &self,
        host: &UserId,
        invitees: &[UserId],
        mode: Option<&str>,
        conversation: Uuid,
    ) -> Result<PlayerState, GameError> {
        let mode = self
            .engine
            .modes
            .choose(mode)
            .map_err(|known| GameError::Refused(Refusal::UnknownMode(known)))?;
        let (outcome, tx) = self
            .run(host, Scope::Record, &|engine, tx| {
                engine.launch(tx, host, invitees, &mode.name, conversation)
            })
            .await?;
        self.finish(host, outcome, &tx).await
    }

    async fn resume_or_arrive(&self, p: &UserId, mode: &str) -> Result<PlayerState, GameError> {
        // With nothing open the IM service is asked straight away, before any lock (the
        // locked transition checks again); else what is open is resumed under the locks
        // the same step took.
        if let Some((outcome, tx)) = self
            .run_if_open(p, &|engine, tx| engine.resume(tx, p))
            .await?
            && outcome != Outcome::NeedsPartners
        {
            return self.render(p, &tx).await;
        }
        // The IM call happens outside any lock: it can take up to IM_TIMEOUT_MS.
        let partners = self.im.partners(p).await;
        let (_, tx) = self
            .run(p, Scope::Record, &|engine, tx| {
                engine.arrive(tx, p, &partners, mode)
            })
            .await?;
        self.render(p, &tx).await
    }

    pub async fn accept(
        &self,
        p: &UserId,
        prompt_id: Uuid,
        with: Option<Vec<UserId>>,
    ) -> Result<PlayerState, GameError> {
        let with = with.as_deref();
        let (outcome, tx) = self
            .run(p, Scope::WithCandidates, &|engine, tx| {
                engine.accept(tx, p, prompt_id, with)
            })
            .await?;
        let state = self.finish(p, outcome, &tx).await?;
        crate::metrics::ANSWERS.with_label_values(&["accept"]).inc();
        Ok(state)
    }

    pub async fn reject(&self, p: &UserId, prompt_id: Uuid) -> Result<PlayerState, GameError> {
        let (outcome, tx) = self
            .run(p, Scope::Record, &|engine, tx| {
                engine.reject(tx, p, prompt_id)
            })
            .await?;
        let state = self.finish(p, outcome, &tx).await?;
        crate::metrics::ANSWERS.with_label_values(&["reject"]).inc();
        Ok(state)
    }

    pub async fn leave(&self, p: &UserId, session_id: Uuid) -> Result<PlayerState, GameError> {
        let (outcome, tx) = self
            .run(p, Scope::Record, &|engine, tx| {
                engine.leave(tx, p, session_id)
            })
            .await?;
        if let Outcome::Refused(Refusal::NotFound(_)) = outcome {
            // Leaving a session one already left is harmless; a stranger learns nothing.
            if self.visible_session(p, session_id).await?.is_none() {
                return Err(GameError::Refused(Refusal::NotFound("no such session")));
            }
            return self.me(p).await;
        }
        self.finish(p, outcome, &tx).await
    }

    /// The player's state; a prompt past its expiry is expired first.
    pub async fn me(&self, p: &UserId) -> Result<PlayerState, GameError> {
        let record = self.store.player(p).await?.unwrap_or_default();
        if let Some(prompt) = record
            .prompt
            .as_ref()
            .filter(|pr| pr.expires_at <= self.now())
        {
            let job = match &prompt.lobby {
                Some(lobby) => ExpiryJob::Invitation {
                    lobby: lobby.clone(),
                    invitee: p.clone(),
                },
                None => ExpiryJob::Invite {
                    player: p.clone(),
                    prompt_id: prompt.id,
                },
            };
            self.expire(&job).await?;
            let record = self.store.player(p).await?.unwrap_or_default();
            return self.render_record(p, &record, None).await;
        }
        self.render_record(p, &record, None).await
    }

    /// A session as `p` sees it; 404 (`None`) unless `p` is its host, a player or an invitee.
    /// A player reading their session shows life.
    pub async fn visible_session(
        &self,
        p: &UserId,
        id: Uuid,
    ) -> Result<Option<Session>, GameError> {
        let Some(session) = self.session_by_id(id).await? else {
            return Ok(None);
        };
        if !session.visible_to(p) {
            return Ok(None);
        }
        self.note_life(p, &session).await;
        Ok(Some(self.view(&session, p)))
    }

    /// Runs one job the store handed out (idempotent: a job that no longer applies changes
    /// nothing): an expiry is a transition, an announcement a call to the IM service.
    pub async fn expire(&self, job: &ExpiryJob) -> Result<(), GameError> {
        let actor = match job {
            ExpiryJob::Invite { player, .. } => player,
            ExpiryJob::Invitation { invitee, .. } => invitee,
            ExpiryJob::Idle { session, .. } => &session.host,
            ExpiryJob::Announce {
                lobby,
                conversation,
                attempt,
            } => return self.announce(lobby, *conversation, *attempt).await,
            ExpiryJob::Activity { .. } => {
                return self.report_activity(std::slice::from_ref(job)).await;
            }
        };
        let (_, tx) = self
            .run(actor, Scope::Record, &|engine, tx| engine.expire(tx, job))
            .await?;
        crate::metrics::record_expiry(job, tx.has_events());
        Ok(())
    }

    async fn finish(
        &self,
        p: &UserId,
        outcome: Outcome,
        tx: &Tx,
    ) -> Result<PlayerState, GameError> {
        match outcome {
            Outcome::Refused(refusal) => Err(GameError::Refused(refusal)),
            Outcome::Done | Outcome::NeedsPartners => self.render(p, tx).await,
        }
    }

    async fn render(&self, p: &UserId, tx: &Tx) -> Result<PlayerState, GameError> {
        let record = tx.current(p).cloned().unwrap_or_default();
        self.render_record(p, &record, Some(tx)).await
    }

    async fn render_record(
        &self,
        p: &UserId,
        record: &PlayerRecord,
        tx: Option<&Tx>,
    ) -> Result<PlayerState, GameError> {
        let session = match &record.session {
            None => None,
            Some(at) => match tx.and_then(|tx| tx.cached_session(at.id)) {
                Some(session) => Some(session.clone()),
                None => self.store.session(at).await?,
            },
        };
        let session = session.filter(|s| s.state != SessionState::Ended);
        if let Some(session) = &session {
            self.note_life(p, session).await;
        }
        Ok(PlayerState {
            player_id: p.clone(),
            prompt: record.prompt.as_ref().map(|pr| pr.view()),
            degraded: session
                .as_ref()
                .is_some_and(|s| s.reason == Some(Reason::ImUnavailable)),
            session: session.map(|s| self.view(&s, p)),
        })
    }
}
