//! Sending commands: one retry when the connection broke under them, script calls, and batches sent per slot at once.

use std::future::Future;

use futures_util::future::try_join_all;
use redis::{Cmd, FromRedisValue, RedisError, RedisResult, RetryMethod, Script, Value};
use service_kit::{redis_conn::RedisConn, redis_replication::is_not_replicated};

use super::RedisStore;
use crate::store::StoreError;

/// Commands that all name keys of one entity (one hash tag, so one slot).
pub(super) type Group = Vec<Cmd>;

/// One script call: its keys (all in one slot) and its arguments.
pub(super) type ScriptCall = (Vec<String>, Vec<String>);

/// Worth a 503 and a later retry (connection trouble, failover), as opposed to a bug.
fn is_unavailability(err: &RedisError) -> bool {
    err.is_io_error() || !matches!(err.retry_method(), RetryMethod::NoRetry)
}

/// The connection broke under the command: the manager reconnects and one retry may succeed
/// (replicas slow to acknowledge a write are not a broken connection).
fn is_broken_connection(err: &RedisError) -> bool {
    (err.is_io_error() || err.is_connection_dropped() || err.is_unrecoverable_error())
        && !is_not_replicated(err)
}

fn store_error(err: RedisError, doing: &'static str) -> StoreError {
    if is_unavailability(&err) {
        StoreError::Unavailable(anyhow::Error::new(err).context(doing))
    } else {
        StoreError::Unexpected(anyhow::Error::new(err).context(doing))
    }
}

impl RedisStore {
    /// Runs `op`, once more if the connection broke under it: after Redis restarts, the first
    /// command on the old connection fails while the manager reconnects. Every operation given
    /// here is idempotent (appends carry an id the script deduplicates).
    pub(super) async fn run<T, F, Fut>(&self, doing: &'static str, op: F) -> Result<T, StoreError>
    where
        F: Fn(RedisConn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        match op(self.conn.clone()).await {
            Ok(value) => Ok(value),
            Err(err) if is_broken_connection(&err) => {
                tracing::debug!(error = %err, doing, "redis connection broke; retrying once");
                op(self.conn.clone())
                    .await
                    .map_err(|err| store_error(err, doing))
            }
            Err(err) => Err(store_error(err, doing)),
        }
    }

    /// One script call (every key in one slot).
    pub(super) async fn invoke<T: FromRedisValue>(
        &self,
        doing: &'static str,
        script: &Script,
        keys: &[String],
        args: &[String],
    ) -> Result<T, StoreError> {
        self.run(doing, |mut conn| {
            let mut invocation = script.prepare_invoke();
            for key in keys {
                invocation.key(key);
            }
            for arg in args {
                invocation.arg(arg);
            }
            async move { invocation.invoke_async(&mut conn).await }
        })
        .await
    }

    /// The whole sorted set at `key`, lowest score first (`ZRANGE key 0 -1`), with the scores
    /// when `with_scores`.
    pub(super) async fn whole_sorted_set<T: FromRedisValue>(
        &self,
        doing: &'static str,
        key: &str,
        with_scores: bool,
    ) -> Result<T, StoreError> {
        self.run(doing, |mut conn| async move {
            let mut cmd = redis::cmd("ZRANGE");
            cmd.arg(key).arg(0).arg(-1);
            if with_scores {
                cmd.arg("WITHSCORES");
            }
            cmd.query_async(&mut conn).await
        })
        .await
    }

    /// Runs `script` once per call, each call in its own slot, all in one batch
    /// ([`RedisStore::invoke_all`]); returns each call's reply, in order.
    pub(super) async fn invoke_each(
        &self,
        doing: &'static str,
        script: &Script,
        calls: &[ScriptCall],
    ) -> Result<Vec<Value>, StoreError> {
        let calls: Vec<(&Script, &ScriptCall)> = calls.iter().map(|call| (script, call)).collect();
        self.invoke_all(doing, &calls).await
    }

    /// Runs each call's script, each call in its own slot, all in one batch
    /// ([`RedisStore::batch`]: one pipeline on a standalone server), by hash; returns each
    /// call's reply, in order. A call that Redis answers `NOSCRIPT` (a node that does not hold
    /// the script yet: first use, a restart, a failover) runs again on its own, loading it;
    /// the calls that went through are not repeated. Any other error reply fails the batch.
    pub(super) async fn invoke_all(
        &self,
        doing: &'static str,
        calls: &[(&Script, &ScriptCall)],
    ) -> Result<Vec<Value>, StoreError> {
        let groups: Vec<Group> = calls
            .iter()
            .map(|(script, (keys, args))| {
                let mut call = redis::cmd("EVALSHA");
                call.arg(script.get_hash())
                    .arg(keys.len())
                    .arg(keys)
                    .arg(args);
                vec![call]
            })
            .collect();
        let replies = self.batch_with(doing, &groups, true).await?;
        let mut answers = Vec::with_capacity(calls.len());
        for ((script, (keys, args)), reply) in calls.iter().zip(replies) {
            let reply = reply.into_iter().next().unwrap_or(Value::Nil);
            answers.push(match reply {
                Value::ServerError(err) if err.code() == "NOSCRIPT" => {
                    self.invoke::<Value>(doing, script, keys, args).await?
                }
                Value::ServerError(err) => {
                    return Err(store_error(RedisError::from(err), doing));
                }
                reply => reply,
            });
        }
        Ok(answers)
    }

    /// Sends groups of commands at once, each group naming keys of one slot only: on a
    /// standalone server one pipeline for all of them, on a cluster one pipeline per group, all
    /// in flight together. Returns each group's replies, in order.
    pub(super) async fn batch(
        &self,
        doing: &'static str,
        groups: &[Group],
    ) -> Result<Vec<Vec<Value>>, StoreError> {
        self.batch_with(doing, groups, false).await
    }

    /// As [`RedisStore::batch`]; with `lenient`, a command's error reply is returned in its
    /// place (`Value::ServerError`) instead of failing the batch.
    async fn batch_with(
        &self,
        doing: &'static str,
        groups: &[Group],
        lenient: bool,
    ) -> Result<Vec<Vec<Value>>, StoreError> {
        if groups.iter().all(Vec::is_empty) {
            return Ok(groups.iter().map(|_| Vec::new()).collect());
        }
        self.run(doing, |mut conn| async move {
            if conn.is_cluster() {
                try_join_all(groups.iter().map(|group| {
                    let mut conn = conn.clone();
                    async move {
                        if group.is_empty() {
                            return Ok(Vec::new());
                        }
                        let mut pipe = redis::pipe();
                        for cmd in group {
                            pipe.add_command(cmd.clone());
                        }
                        if lenient {
                            pipe.ignore_errors();
                        }
                        pipe.query_async::<Vec<Value>>(&mut conn).await
                    }
                }))
                .await
            } else {
                let mut pipe = redis::pipe();
                for cmd in groups.iter().flatten() {
                    pipe.add_command(cmd.clone());
                }
                if lenient {
                    pipe.ignore_errors();
                }
                let mut replies = pipe.query_async::<Vec<Value>>(&mut conn).await?.into_iter();
                Ok(groups
                    .iter()
                    .map(|group| replies.by_ref().take(group.len()).collect())
                    .collect())
            }
        })
        .await
    }
}
