//! A `Game` over either store, with scripted partners and a hand-driven clock.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use anyhow::{Context, anyhow};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use e2e::RedisServer;
use game_service::{
    domain::{
        engine::{DEFAULT_SESSION_IDLE_SECS, Engine, Partner, Partners},
        modes::{DEFAULT_GAME_MODES, Modes},
    },
    game::{Clock, Game, GameError},
    im_client::{DeliveryError, ImService},
    join_tokens::{JoinTokens, KeySource},
    store::{Retention, Store, memory::MemoryStore, redis::RedisStore},
};
use shared_types::{
    UserId,
    activity::{ActivityReport, PresenceChange, PresenceChanges},
    game::{EndedReason, GameEvent, PlayerState, Prompt, Session},
    im::GameAnnouncement,
    presence::PresenceStatus,
};
use uuid::Uuid;

pub const INVITE_TTL_SECS: i64 = 60;

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Memory,
    Redis,
    /// Standalone Redis committing slot by slot, exactly as on a cluster.
    RedisTwoPhase,
    /// A real 3-master Redis Cluster (shared by the tests of this binary).
    RedisCluster,
}

pub fn uid(name: &str) -> UserId {
    UserId::parse(name).unwrap_or_else(|_| panic!("bad test user id {name}"))
}

/// Who talks to whom (and in which conversation), as the IM service would answer; and the
/// announcements it took.
#[derive(Default)]
pub struct ScriptedPartners {
    partners: Mutex<HashMap<UserId, Vec<(UserId, Uuid)>>>,
    down: Mutex<bool>,
    announced: Mutex<Vec<(Uuid, GameAnnouncement)>>,
    reported: Mutex<Vec<ActivityReport>>,
    /// The presence feed: every change so far (the cursor is an index into it).
    feed: Mutex<Vec<PresenceChange>>,
    /// Who is offline: nobody's partner, and without partners themselves.
    offline: Mutex<HashSet<UserId>>,
}

impl ScriptedPartners {
    fn is_down(&self) -> bool {
        self.down.lock().map(|d| *d).unwrap_or(true)
    }
}

#[async_trait]
impl ImService for ScriptedPartners {
    async fn partners(&self, player: &UserId) -> Partners {
        if self.is_down() {
            return Partners::Unavailable;
        }
        let offline = self.offline.lock().map(|o| o.clone()).unwrap_or_default();
        if offline.contains(player) {
            return Partners::Found(Vec::new());
        }
        let mut found = self
            .partners
            .lock()
            .ok()
            .and_then(|map| map.get(player).cloned())
            .unwrap_or_default();
        found.retain(|(id, _)| !offline.contains(id));
        Partners::Found(
            found
                .into_iter()
                .map(|(id, conversation)| Partner::new(id, Some(conversation)))
                .collect(),
        )
    }

    async fn announce(
        &self,
        conversation: Uuid,
        _text: &str,
        game: &GameAnnouncement,
    ) -> Result<(), DeliveryError> {
        if self.is_down() {
            return Err(DeliveryError::Unavailable("scripted: IM down".into()));
        }
        if let Ok(mut announced) = self.announced.lock() {
            announced.push((conversation, game.clone()));
        }
        Ok(())
    }

    async fn report_activity(&self, reports: &[ActivityReport]) -> Result<(), DeliveryError> {
        if self.is_down() {
            return Err(DeliveryError::Unavailable("scripted: IM down".into()));
        }
        if let Ok(mut reported) = self.reported.lock() {
            reported.extend_from_slice(reports);
        }
        Ok(())
    }

    async fn presence_changes(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<PresenceChanges, DeliveryError> {
        if self.is_down() {
            return Err(DeliveryError::Unavailable("scripted: IM down".into()));
        }
        let from: usize = match after.map(str::parse) {
            None => 0,
            Some(Ok(from)) => from,
            Some(Err(_)) => return Err(DeliveryError::Refused("scripted: 400 bad cursor".into())),
        };
        let feed = self.feed.lock().map(|f| f.clone()).unwrap_or_default();
        let changes: Vec<PresenceChange> = feed.iter().skip(from).take(limit).cloned().collect();
        Ok(PresenceChanges {
            next: (from + changes.len()).to_string(),
            changes,
        })
    }
}

pub struct ManualClock(Mutex<DateTime<Utc>>);

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.lock().map(|t| *t).unwrap_or_else(|_| Utc::now())
    }
}

pub struct Harness {
    pub game: Arc<Game>,
    pub store: Arc<dyn Store>,
    pub partners: Arc<ScriptedPartners>,
    pub clock: Arc<ManualClock>,
    pub redis: Option<RedisServer>,
    pub redis_store: Option<Arc<RedisStore>>,
}

/// What a harness may change from the defaults.
#[derive(Clone, Copy)]
pub struct Options {
    pub retention: Retention,
    pub session_idle_secs: i64,
    /// `GAME_MODES`.
    pub modes: &'static str,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            retention: Retention::default(),
            session_idle_secs: DEFAULT_SESSION_IDLE_SECS,
            modes: DEFAULT_GAME_MODES,
        }
    }
}

impl Harness {
    pub async fn start(backend: Backend) -> anyhow::Result<Self> {
        Self::start_with(backend, Options::default()).await
    }

    pub async fn start_with(backend: Backend, options: Options) -> anyhow::Result<Self> {
        let retention = options.retention;
        let (store, redis, redis_store): (Arc<dyn Store>, _, _) = match backend {
            Backend::Memory => (Arc::new(MemoryStore::with_retention(retention)), None, None),
            Backend::Redis | Backend::RedisTwoPhase => {
                let server = RedisServer::start()?;
                let mut store = RedisStore::connect(&server.url(), &e2e::unique_prefix("game"))
                    .await?
                    .with_retention(retention);
                if let Backend::RedisTwoPhase = backend {
                    store = store.with_two_phase_commit();
                }
                let store = Arc::new(store);
                (store.clone(), Some(server), Some(store))
            }
            Backend::RedisCluster => {
                let cluster = e2e::RedisCluster::shared()?;
                let store = RedisStore::connect(&cluster.url(), &e2e::unique_prefix("game"))
                    .await?
                    .with_retention(retention);
                let store = Arc::new(store);
                (store.clone(), None, Some(store))
            }
        };
        let partners = Arc::new(ScriptedPartners::default());
        let clock = Arc::new(ManualClock(Mutex::new(Utc::now())));
        let game = Arc::new(Game::new(
            store.clone(),
            Engine::new(Duration::seconds(INVITE_TTL_SECS))
                .with_session_idle(Duration::seconds(options.session_idle_secs))
                .with_modes(Modes::parse(options.modes).map_err(|e| anyhow!(e))?),
            partners.clone(),
            clock.clone(),
            Arc::new(JoinTokens::new(
                &KeySource::default(),
                shared_types::auth::DEFAULT_ISSUER,
                std::time::Duration::from_secs(900),
            )?),
        ));
        Ok(Self {
            game,
            store,
            partners,
            clock,
            redis,
            redis_store,
        })
    }

    /// `a` and each of `others` talk to each other (an open, recent conversation, all
    /// available): a new conversation of them all, whose id is returned. A pair that
    /// already talks keeps its first conversation.
    pub fn talk(&self, a: &str, others: &[&str]) -> Uuid {
        let conversation = Uuid::new_v4();
        if let Ok(mut map) = self.partners.partners.lock() {
            for b in others {
                for (x, y) in [(a, *b), (*b, a)] {
                    let list = map.entry(uid(x)).or_default();
                    if !list.iter().any(|(p, _)| p == &uid(y)) {
                        list.push((uid(y), conversation));
                    }
                }
            }
        }
        conversation
    }

    /// `user`'s IM presence becomes `status`: the next change of the feed, numbered after
    /// their previous one; while offline they are nobody's partner and have none.
    pub fn presence(&self, user: &str, status: PresenceStatus) {
        if let Ok(mut offline) = self.partners.offline.lock() {
            if status == PresenceStatus::Offline {
                offline.insert(uid(user));
            } else {
                offline.remove(&uid(user));
            }
        }
        if let Ok(mut feed) = self.partners.feed.lock() {
            let seq = feed.iter().filter(|c| c.user_id == uid(user)).count() as u64 + 1;
            feed.push(PresenceChange {
                user_id: uid(user),
                status,
                seq,
                at: self.game.now(),
            });
        }
    }

    /// The feed as it stands, for delivering a change again.
    pub fn feed(&self) -> Vec<PresenceChange> {
        self.partners
            .feed
            .lock()
            .map(|f| f.clone())
            .unwrap_or_default()
    }

    /// Appends `change` to the feed again (a repeated delivery).
    pub fn redeliver(&self, change: PresenceChange) {
        if let Ok(mut feed) = self.partners.feed.lock() {
            feed.push(change);
        }
    }

    /// One poll of the presence feed, as the replica holding its lease does.
    pub async fn follow_presence(&self, holder: &str) {
        game_service::presence_feed::poll(&self.game, holder).await;
    }

    /// The activity reports the IM service took, in the order it took them.
    pub fn reported(&self) -> Vec<ActivityReport> {
        self.partners
            .reported
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// The announcements the IM service took, oldest first.
    pub fn announced(&self) -> Vec<(Uuid, GameAnnouncement)> {
        self.partners
            .announced
            .lock()
            .map(|a| a.clone())
            .unwrap_or_default()
    }

    pub fn im_down(&self, down: bool) {
        if let Ok(mut flag) = self.partners.down.lock() {
            *flag = down;
        }
    }

    pub fn advance(&self, secs: i64) {
        if let Ok(mut now) = self.clock.0.lock() {
            *now += Duration::seconds(secs);
        }
    }

    /// Runs every due expiry job, as the sweeper of one replica would.
    pub async fn sweep(&self) -> anyhow::Result<usize> {
        let jobs = self
            .store
            .claim_due(self.game.now(), 1000, std::time::Duration::from_secs(30))
            .await?;
        for job in &jobs {
            self.game.expire(job).await?;
            self.store.finish_job(job).await?;
        }
        Ok(jobs.len())
    }

    pub async fn connect(&self, p: &str) -> anyhow::Result<PlayerState> {
        Ok(self.game.connect(&uid(p), None).await?)
    }

    pub async fn connect_mode(&self, p: &str, mode: &str) -> Result<PlayerState, GameError> {
        self.game.connect(&uid(p), Some(mode)).await
    }

    /// What the IM service's launch from a chat asks for (`POST /v1/lobbies`).
    pub async fn launch(
        &self,
        host: &str,
        invitees: &[&str],
        mode: Option<&str>,
        conversation: Uuid,
    ) -> Result<PlayerState, GameError> {
        let invitees: Vec<UserId> = invitees.iter().map(|i| uid(i)).collect();
        self.game
            .launch(&uid(host), &invitees, mode, conversation)
            .await
    }

    pub async fn me(&self, p: &str) -> anyhow::Result<PlayerState> {
        Ok(self.game.me(&uid(p)).await?)
    }

    pub async fn accept(&self, p: &str, prompt: Uuid) -> Result<PlayerState, GameError> {
        self.game.accept(&uid(p), prompt, None).await
    }

    pub async fn accept_with(
        &self,
        p: &str,
        prompt: Uuid,
        with: &[&str],
    ) -> Result<PlayerState, GameError> {
        let with = with.iter().map(|w| uid(w)).collect();
        self.game.accept(&uid(p), prompt, Some(with)).await
    }

    pub async fn reject(&self, p: &str, prompt: Uuid) -> Result<PlayerState, GameError> {
        self.game.reject(&uid(p), prompt).await
    }

    pub async fn leave(&self, p: &str, session: Uuid) -> Result<PlayerState, GameError> {
        self.game.leave(&uid(p), session).await
    }

    pub async fn session_seen_by(&self, p: &str, id: Uuid) -> anyhow::Result<Option<Session>> {
        Ok(self.game.visible_session(&uid(p), id).await?)
    }

    /// What a game server's `POST /v1/sessions/{id}/end` does.
    pub async fn end(&self, id: Uuid, reason: EndedReason) -> anyhow::Result<Option<Session>> {
        Ok(self.game.end(id, reason).await?)
    }

    /// What a game server's `POST /v1/sessions/{id}/heartbeat` does.
    pub async fn heartbeat(&self, id: Uuid) -> anyhow::Result<Option<Session>> {
        Ok(self.game.heartbeat(id).await?)
    }

    /// Every event kept for `p`, oldest first.
    pub async fn events(&self, p: &str) -> anyhow::Result<Vec<GameEvent>> {
        let stored = self.store.events_after(&uid(p), None, 1000).await?;
        Ok(stored.into_iter().map(|e| e.event).collect())
    }
}

pub trait StateExt {
    fn prompt(&self) -> anyhow::Result<&Prompt>;
    fn session(&self) -> anyhow::Result<&Session>;
}

impl StateExt for PlayerState {
    fn prompt(&self) -> anyhow::Result<&Prompt> {
        self.prompt
            .as_ref()
            .with_context(|| format!("{} has no prompt: {self:?}", self.player_id))
    }

    fn session(&self) -> anyhow::Result<&Session> {
        self.session
            .as_ref()
            .ok_or_else(|| anyhow!("{} has no session: {self:?}", self.player_id))
    }
}

/// Connecting led somewhere: an open prompt, or a session that has not ended.
pub fn leads_somewhere(state: &PlayerState) -> bool {
    state.prompt.is_some()
        || state
            .session
            .as_ref()
            .is_some_and(|s| s.state != shared_types::game::SessionState::Ended)
}
