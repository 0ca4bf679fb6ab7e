//! A user's open-conversation slots (the limit on conversations they opened or answered): taken (with a creation's idempotency key), kept, freed, and reclaimed from interrupted steps.

use chrono::{DateTime, Utc};
use shared_types::UserId;
use uuid::Uuid;

use super::{
    RedisStore,
    commands::{Group, ScriptCall},
    values::{millis, parse, score_millis},
};
use crate::store::StoreError;

/// What a reservation did.
#[derive(Debug)]
pub(super) enum Reserved {
    /// The slot is taken (and the key recorded).
    Taken,
    /// The user is at the limit: nothing was written.
    Limit,
    /// The key was already used for the same request: what that one opened (JSON), nothing
    /// written.
    KeyUsed(String),
    /// The key was already used for another request: nothing written.
    KeyReused,
}

impl Reserved {
    fn taken(self) -> bool {
        matches!(self, Reserved::Taken)
    }
}

/// How long an open-conversation slot may name a conversation that does not exist before it
/// counts as the leftover of an interrupted creation (a creation in flight takes far less).
const UNFINISHED_CREATE_GRACE_MS: i64 = 60_000;

impl RedisStore {
    /// Takes `user`'s open-conversation slot for `id` (or keeps it, moving its score to `at`),
    /// adding `contacts`; `false` when the user is at the limit. At the limit, slots naming
    /// conversations that were closed, or never created and older than a grace period (steps
    /// an interruption left behind), are reclaimed and the reservation tried once more.
    pub(super) async fn reserve(
        &self,
        user: &UserId,
        id: Uuid,
        at: DateTime<Utc>,
        contacts: &[&UserId],
    ) -> Result<bool, StoreError> {
        let limit = self.limits.max_open_conversations;
        if self
            .invoke_reserve(self.reserve_call(user, id, at, limit, &[], contacts, None))
            .await?
            .taken()
        {
            return Ok(true);
        }
        let stale = self.stale_open_entries(user, at).await?;
        if stale.is_empty() {
            return Ok(false);
        }
        self.invoke_reserve(self.reserve_call(user, id, at, limit, &stale, contacts, None))
            .await
            .map(|reserved| reserved.taken())
    }

    /// As [`RedisStore::reserve`] for the creator of a new conversation who sent an
    /// idempotency key (`record`: its name): the key is recorded with `answer` (the
    /// conversation as opened) in the same script as the slot is taken; a key already
    /// recorded takes nothing and says what it opened, or that it was used for another
    /// request (by `fingerprint`).
    pub(super) async fn reserve_keyed(
        &self,
        user: &UserId,
        id: Uuid,
        at: DateTime<Utc>,
        record: String,
        fingerprint: &str,
        answer: &str,
    ) -> Result<Reserved, StoreError> {
        let limit = self.limits.max_open_conversations;
        let keyed = || Some((record.clone(), fingerprint, answer));
        match self
            .invoke_reserve(self.reserve_call(user, id, at, limit, &[], &[], keyed()))
            .await?
        {
            Reserved::Limit => {}
            done => return Ok(done),
        }
        let stale = self.stale_open_entries(user, at).await?;
        if stale.is_empty() {
            return Ok(Reserved::Limit);
        }
        self.invoke_reserve(self.reserve_call(user, id, at, limit, &stale, &[], keyed()))
            .await
    }

    /// The `reserve.lua` call that keeps, for a user who already holds the slot (the
    /// conversation's creator, or someone who posted in it), the slot of `id`: it moves it
    /// forward and adds `contacts`, never takes a new one. Sent in a batch with other calls.
    pub(super) fn keep_reserved_call(
        &self,
        user: &UserId,
        id: Uuid,
        at: DateTime<Utc>,
        contacts: &[&UserId],
    ) -> ScriptCall {
        self.reserve_call(user, id, at, 0, &[], contacts, None)
    }

    /// Frees the slot of conversation `id` for each of `users` (freeing again is harmless).
    pub(super) async fn free_slots(&self, id: Uuid, users: &[UserId]) -> Result<(), StoreError> {
        let groups: Vec<Group> = users
            .iter()
            .map(|user| {
                let mut cmd = redis::cmd("ZREM");
                cmd.arg(self.keys.user_open(user)).arg(id.to_string());
                vec![cmd]
            })
            .collect();
        self.batch("freeing open-conversation slots", &groups)
            .await
            .map(drop)
    }

    /// One `reserve.lua` call ([`RedisStore::reserve_call`]), its answer read.
    async fn invoke_reserve(&self, (keys, args): ScriptCall) -> Result<Reserved, StoreError> {
        let (status, answer): (i64, String) = self
            .invoke(
                "taking an open-conversation slot",
                &self.scripts.reserve,
                &keys,
                &args,
            )
            .await?;
        Ok(match status {
            0 => Reserved::Limit,
            1 => Reserved::Taken,
            2 => Reserved::KeyUsed(answer),
            3 => Reserved::KeyReused,
            other => {
                return Err(StoreError::Unexpected(anyhow::anyhow!(
                    "reserve.lua answered status {other}"
                )));
            }
        })
    }

    /// `reserve.lua`'s keys and arguments: take (or with `limit` 0 only keep) `user`'s slot
    /// of `id`, reclaiming `stale`, adding `contacts`, with the idempotency record of `keyed`
    /// (the key's name, the request's fingerprint and the conversation as opened) when given.
    #[expect(
        clippy::too_many_arguments,
        reason = "the script's arguments, each named"
    )]
    fn reserve_call(
        &self,
        user: &UserId,
        id: Uuid,
        at: DateTime<Utc>,
        limit: usize,
        stale: &[String],
        contacts: &[&UserId],
        keyed: Option<(String, &str, &str)>,
    ) -> ScriptCall {
        let at_ms = millis(at);
        let mut keys = vec![
            self.keys.user_open(user),
            self.keys.user_conversations(user),
            self.keys.user_contacts(user),
            self.keys.user_blocks(user),
        ];
        let (fingerprint, answer) = match keyed {
            Some((record, fingerprint, answer)) => {
                keys.push(record);
                (fingerprint, answer)
            }
            None => ("", ""),
        };
        let mut args = vec![
            id.to_string(),
            at_ms.to_string(),
            self.retention_ms.to_string(),
            limit.to_string(),
            at_ms.saturating_sub(self.retention_ms).to_string(),
            fingerprint.to_owned(),
            answer.to_owned(),
            super::keys::key_window_ms(self.retention_ms).to_string(),
            stale.len().to_string(),
        ];
        args.extend(stale.iter().cloned());
        args.extend(contacts.iter().map(|c| c.to_string()));
        (keys, args)
    }

    /// The entries of `user`'s open conversations that no longer hold a slot: closed
    /// conversations, and missing ones reserved more than a grace period before `now`.
    async fn stale_open_entries(
        &self,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let mut cmd = redis::cmd("ZRANGE");
        cmd.arg(self.keys.user_open(user))
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES");
        let reply = self
            .batch("listing open conversations", &[vec![cmd]])
            .await?;
        let entries: Vec<(String, f64)> = match reply.into_iter().flatten().next() {
            Some(value) => parse(value, "open conversations")?,
            None => Vec::new(),
        };
        let ids: Vec<Uuid> = entries
            .iter()
            .filter_map(|(raw, _)| raw.parse().ok())
            .collect();
        let records = self.load_records(&ids).await?;
        let grace_floor = millis(now).saturating_sub(UNFINISHED_CREATE_GRACE_MS);
        Ok(entries
            .into_iter()
            .filter(|(raw, score)| match raw.parse::<Uuid>() {
                Err(_) => true,
                Ok(id) => match records.get(&id) {
                    Some(record) => record.conversation.closed,
                    None => score_millis(*score) < grace_floor,
                },
            })
            .map(|(raw, _)| raw)
            .collect())
    }
}
