//! Taking and releasing players' locks: all at once in one `lock_all.lua` call (standalone), or one player at a time in sorted order, resolving a dead transaction's intent on the way (cluster).

use std::time::Duration;

use redis::Value;
use shared_types::UserId;
use uuid::Uuid;

use super::{
    RedisStore,
    plan::millis,
    replies::{decode, from_redis, text},
};
use crate::{
    domain::records::{PlayerRecord, SessionRecord, SessionRef},
    store::{IfOpen, Locked, Scope, Store, StoreError, StoreResult},
};

/// A player's record and the sessions it hosts, as read under its lock.
type HostedRecords = (PlayerRecord, Vec<(Uuid, Option<SessionRecord>)>);

/// What `lock.lua` saw.
pub(super) enum LockReply {
    Busy,
    Taken {
        record: Option<String>,
        intent: Option<String>,
        sessions: Vec<Option<String>>,
    },
}

/// Reads `lock_all.lua`'s reply: `{0}`, or
/// `{1, #players, id, record..., #sessions, id, session...}`.
fn parse_locked(reply: &[Value]) -> StoreResult<Option<Locked>> {
    let malformed = || StoreError::Corrupt(anyhow::anyhow!("malformed lock_all.lua reply"));
    let count = |value: Option<&Value>| match value {
        Some(Value::Int(n)) => usize::try_from(*n).map_err(|_| malformed()),
        _ => Err(malformed()),
    };
    if count(reply.first())? != 1 {
        return Ok(None);
    }
    let mut locked = Locked::default();
    let players = count(reply.get(1))?;
    let mut at = 2;
    for _ in 0..players {
        let id = text(reply.get(at)).ok_or_else(malformed)?;
        let player = UserId::parse(&id).map_err(|_| malformed())?;
        let record = decode(text(reply.get(at + 1)), "a player record")?;
        locked.players.insert(player, record.unwrap_or_default());
        at += 2;
    }
    let sessions = count(reply.get(at))?;
    at += 1;
    for _ in 0..sessions {
        let id = text(reply.get(at)).ok_or_else(malformed)?;
        let id = Uuid::parse_str(&id).map_err(|_| malformed())?;
        locked
            .sessions
            .insert(id, decode(text(reply.get(at + 1)), "a session")?);
        at += 2;
    }
    Ok(Some(locked))
}

impl RedisStore {
    /// Takes one player's lock and reads, under it, the record, the slot's
    /// intent and `hosted` (sessions of this host).
    pub(super) async fn lock_one(
        &self,
        player: &UserId,
        hosted: &[&SessionRef],
        token: &str,
        lease: Duration,
    ) -> StoreResult<LockReply> {
        let mut invocation = self.scripts.lock.prepare_invoke();
        invocation
            .key(&self.keys.lock(player).name)
            .key(&self.keys.player(player).name)
            .key(&self.keys.intent(player).name);
        for at in hosted {
            invocation.key(&self.keys.session(&at.host, at.id).name);
        }
        let reply: Vec<Value> = invocation
            .arg(token)
            .arg(millis(lease))
            .invoke_async(&mut self.conn())
            .await
            .map_err(from_redis)?;
        if !matches!(reply.first(), Some(Value::Int(1))) {
            return Ok(LockReply::Busy);
        }
        Ok(LockReply::Taken {
            record: text(reply.get(1)),
            intent: text(reply.get(2)),
            sessions: (3..3 + hosted.len()).map(|i| text(reply.get(i))).collect(),
        })
    }

    /// Standalone: the prediction, every lock and every read in one
    /// `lock_all.lua` call.
    pub(super) async fn lock_at_once(
        &self,
        players: &[UserId],
        sessions: &[SessionRef],
        predict: Option<(&UserId, Scope)>,
        token: &str,
        lease: Duration,
    ) -> StoreResult<Option<Locked>> {
        let (actor, scope) = match predict {
            Some((actor, Scope::Record)) => (actor.as_str(), "record"),
            Some((actor, Scope::WithCandidates)) => (actor.as_str(), "candidates"),
            None => ("", "record"),
        };
        let reply = self
            .invoke_lock_all(players, sessions, actor, scope, token, lease)
            .await?;
        parse_locked(&reply)
    }

    /// Standalone: [`Store::lock_if_open`] in one `lock_all.lua` call, which answers `{2}`
    /// without locking when the actor's record holds nothing open.
    pub(super) async fn lock_at_once_if_open(
        &self,
        actor: &UserId,
        token: &str,
        lease: Duration,
    ) -> StoreResult<Option<IfOpen>> {
        let reply = self
            .invoke_lock_all(&[], &[], actor.as_str(), "if_open", token, lease)
            .await?;
        if matches!(reply.first(), Some(Value::Int(2))) {
            return Ok(Some(IfOpen::NothingOpen));
        }
        Ok(parse_locked(&reply)?.map(IfOpen::Locked))
    }

    async fn invoke_lock_all(
        &self,
        players: &[UserId],
        sessions: &[SessionRef],
        actor: &str,
        scope: &str,
        token: &str,
        lease: Duration,
    ) -> StoreResult<Vec<Value>> {
        let mut invocation = self.scripts.lock_all.prepare_invoke();
        invocation
            .arg(token)
            .arg(millis(lease))
            .arg(self.keys.prefix())
            .arg(actor)
            .arg(scope)
            .arg(players.len());
        for player in players {
            invocation.arg(player.as_str());
        }
        for at in sessions {
            invocation.arg(at.id.to_string()).arg(at.host.as_str());
        }
        invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(from_redis)
    }

    /// [`RedisStore::lock_each`] of `players` with those of `sessions` they host.
    pub(super) async fn lock_each_hosting(
        &self,
        players: &[UserId],
        sessions: &[SessionRef],
        token: &str,
        lease: Duration,
    ) -> StoreResult<Option<Locked>> {
        let hosted: Vec<&SessionRef> = sessions
            .iter()
            .filter(|at| players.contains(&at.host))
            .collect();
        self.lock_each(players, &hosted, token, lease).await
    }

    /// Cluster (or two-phase tests): one player at a time in the given
    /// (sorted) order, each with the sessions it hosts; all or none.
    pub(super) async fn lock_each(
        &self,
        players: &[UserId],
        sessions: &[&SessionRef],
        token: &str,
        lease: Duration,
    ) -> StoreResult<Option<Locked>> {
        let mut locked = Locked::default();
        for (i, player) in players.iter().enumerate() {
            let hosted: Vec<&SessionRef> = sessions
                .iter()
                .copied()
                .filter(|at| &at.host == player)
                .collect();
            let taken = self.lock_player(player, &hosted, token, lease).await;
            match taken {
                Ok(Some((record, loaded))) => {
                    locked.players.insert(player.clone(), record);
                    locked.sessions.extend(loaded);
                }
                Ok(None) | Err(_) => {
                    if let Err(err) = self.unlock(&players[..i], token).await {
                        tracing::debug!(%err, "releasing partial locks; they expire anyway");
                    }
                    return taken.map(|_| None);
                }
            }
        }
        Ok(Some(locked))
    }

    /// One player's lock (an intent of a dead transaction is resolved first,
    /// then everything re-read), its record and the sessions it hosts.
    async fn lock_player(
        &self,
        player: &UserId,
        hosted: &[&SessionRef],
        token: &str,
        lease: Duration,
    ) -> StoreResult<Option<HostedRecords>> {
        for _ in 0..3 {
            match self.lock_one(player, hosted, token, lease).await? {
                LockReply::Busy => return Ok(None),
                LockReply::Taken {
                    intent: Some(tx), ..
                } if tx != token => {
                    self.recover(player, &tx, token).await?;
                }
                LockReply::Taken {
                    record, sessions, ..
                } => {
                    let record = decode(record, "a player record")?.unwrap_or_default();
                    let mut loaded = Vec::with_capacity(hosted.len());
                    for (at, raw) in hosted.iter().zip(sessions) {
                        loaded.push((at.id, decode(raw, "a session")?));
                    }
                    return Ok(Some((record, loaded)));
                }
            }
        }
        Err(StoreError::Contended)
    }

    pub(super) async fn unlock_one(&self, player: &UserId, token: &str) -> StoreResult<()> {
        self.scripts
            .unlock
            .key(&self.keys.lock(player).name)
            .arg(token)
            .invoke_async::<i64>(&mut self.conn())
            .await
            .map_err(from_redis)?;
        Ok(())
    }
}
