//! "Acknowledged means replicated": after each write, Redis `WAIT`s for `REDIS_MIN_REPLICAS_ACKED` replicas, sent in the same request as the write.
//!
//! Redis replicates asynchronously, so a master that dies loses whatever its
//! replicas had not received yet, and a promoted replica would not know of a
//! write its master already acknowledged. With `REDIS_MIN_REPLICAS_ACKED` > 0,
//! every write command (a script call included) is followed, in the same
//! pipeline (one round trip, to the node the write went to), by `WAIT n
//! timeout`; fewer replicas than asked within `REDIS_REPLICA_ACK_TIMEOUT_MS`
//! fail the request as unavailable (the services answer 503 with
//! `Retry-After`). The write itself may well have happened: retries are
//! harmless because every answer of both services is idempotent.

use std::{
    collections::HashSet,
    io,
    sync::{LazyLock, RwLock},
    time::Duration,
};

use redis::{Cmd, Pipeline, RedisError, Script, Value};

use crate::config::env_or;

/// `REDIS_REPLICA_ACK_TIMEOUT_MS` when unset: well below a command's own response timeout.
const DEFAULT_ACK_TIMEOUT_MS: u64 = 500;

/// The longest `REDIS_REPLICA_ACK_TIMEOUT_MS` taken: a command's response times out at 2 s.
const MAX_ACK_TIMEOUT_MS: u64 = 1500;

/// Writes that replicas did not acknowledge in time.
#[expect(clippy::expect_used, reason = "a constant, valid metric name")]
pub static ACK_TIMEOUTS: LazyLock<prometheus::IntCounter> = LazyLock::new(|| {
    prometheus::IntCounter::new(
        "redis_replica_ack_timeouts_total",
        "Writes fewer than REDIS_MIN_REPLICAS_ACKED replicas acknowledged in time (answered 503)",
    )
    .expect("valid metric")
});

/// How many replicas must hold a write before it is acknowledged, and how long to wait for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replication {
    pub min_replicas: u32,
    pub timeout: Duration,
}

impl Default for Replication {
    /// No waiting: a write is acknowledged once its master has it.
    fn default() -> Self {
        Self {
            min_replicas: 0,
            timeout: Duration::from_millis(DEFAULT_ACK_TIMEOUT_MS),
        }
    }
}

impl Replication {
    /// `REDIS_MIN_REPLICAS_ACKED` (default 0) and `REDIS_REPLICA_ACK_TIMEOUT_MS` (default
    /// 500, 1-1500).
    pub fn from_env() -> anyhow::Result<Self> {
        let min_replicas = env_or("REDIS_MIN_REPLICAS_ACKED", 0u32)?;
        let timeout_ms = env_or("REDIS_REPLICA_ACK_TIMEOUT_MS", DEFAULT_ACK_TIMEOUT_MS)?;
        anyhow::ensure!(
            (1..=MAX_ACK_TIMEOUT_MS).contains(&timeout_ms),
            "REDIS_REPLICA_ACK_TIMEOUT_MS must be 1-{MAX_ACK_TIMEOUT_MS}, not {timeout_ms}"
        );
        Ok(Self {
            min_replicas,
            timeout: Duration::from_millis(timeout_ms),
        })
    }

    /// Whether writes wait at all.
    pub fn waits(&self) -> bool {
        self.min_replicas > 0
    }

    /// `WAIT n timeout`.
    fn wait_command(&self) -> Cmd {
        let mut wait = redis::cmd("WAIT");
        wait.arg(self.min_replicas)
            .arg(u64::try_from(self.timeout.as_millis()).unwrap_or(MAX_ACK_TIMEOUT_MS));
        wait
    }

    /// `cmd` followed by `WAIT`, when `cmd` writes; `None` when it only reads.
    pub(crate) fn command_then_wait(&self, cmd: &Cmd) -> Option<Pipeline> {
        if !writes(cmd) {
            return None;
        }
        let mut pipe = redis::pipe();
        pipe.add_command(cmd.clone())
            .add_command(self.wait_command());
        Some(pipe)
    }

    /// `pipeline` with a `WAIT` at its end, when one of its commands writes and it is not a
    /// transaction (whose replies are packed as one); `None` otherwise.
    pub(crate) fn pipeline_then_wait(&self, pipeline: &Pipeline) -> Option<Pipeline> {
        if !pipeline.cmd_iter().any(writes) || pipeline.is_transaction() {
            return None;
        }
        let mut pipe = pipeline.clone();
        pipe.add_command(self.wait_command());
        Some(pipe)
    }

    /// The reply of `WAIT`: fine when enough replicas acknowledged, else the error the request
    /// fails with (counted).
    pub(crate) fn check(&self, acked: Option<Value>) -> Result<(), RedisError> {
        let acked = match acked {
            Some(Value::Int(n)) => n,
            other => {
                return Err(not_replicated(format!(
                    "WAIT answered {other:?} instead of a number of replicas"
                )));
            }
        };
        if acked >= i64::from(self.min_replicas) {
            return Ok(());
        }
        ACK_TIMEOUTS.inc();
        Err(not_replicated(format!(
            "{acked} of the {} replicas required acknowledged the write within {} ms",
            self.min_replicas,
            self.timeout.as_millis()
        )))
    }
}

/// The marker [`is_not_replicated`] recognises.
const NOT_REPLICATED: &str = "not acknowledged by enough replicas";

fn not_replicated(detail: String) -> RedisError {
    RedisError::from(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("{NOT_REPLICATED}: {detail}"),
    ))
}

/// Whether `err` says a write was not replicated in time. It is an I/O error, so callers that
/// map those to 503 do so; a caller that retries a broken connection once should not retry
/// this (the replicas are what is slow, not the connection).
pub fn is_not_replicated(err: &RedisError) -> bool {
    err.is_io_error() && err.to_string().contains(NOT_REPLICATED)
}

/// The hashes of the scripts that only read ([`read_only`]).
static READ_ONLY_SCRIPTS: LazyLock<RwLock<HashSet<String>>> = LazyLock::new(RwLock::default);

/// Declares `script` read-only: its calls do not wait for replicas (so they go on while the
/// replicas lag). Only for scripts that call no write command.
pub fn read_only(script: Script) -> Script {
    if let Ok(mut hashes) = READ_ONLY_SCRIPTS.write() {
        hashes.insert(script.get_hash().to_owned());
    }
    script
}

/// Whether a command may change data (and so must be replicated before it is acknowledged).
/// Unknown commands count as writes: waiting for nothing costs a little, not waiting loses.
fn writes(cmd: &Cmd) -> bool {
    let mut args = cmd.args_iter();
    let Some(redis::Arg::Simple(name)) = args.next() else {
        return true;
    };
    if name.eq_ignore_ascii_case(b"EVALSHA") {
        let Some(redis::Arg::Simple(hash)) = args.next() else {
            return true;
        };
        let hash = String::from_utf8_lossy(hash);
        return !READ_ONLY_SCRIPTS
            .read()
            .is_ok_and(|hashes| hashes.contains(hash.as_ref()));
    }
    const READS: &[&[u8]] = &[
        b"GET",
        b"MGET",
        b"HGET",
        b"HMGET",
        b"HGETALL",
        b"HEXISTS",
        b"EXISTS",
        b"TTL",
        b"PTTL",
        b"TYPE",
        b"STRLEN",
        b"ZRANGE",
        b"ZRANGEBYSCORE",
        b"ZREVRANGE",
        b"ZREVRANGEBYSCORE",
        b"ZSCORE",
        b"ZMSCORE",
        b"ZCARD",
        b"ZCOUNT",
        b"ZRANK",
        b"XRANGE",
        b"XREVRANGE",
        b"XREAD",
        b"XLEN",
        b"XINFO",
        b"SMEMBERS",
        b"SISMEMBER",
        b"SMISMEMBER",
        b"SCARD",
        b"LRANGE",
        b"LLEN",
        b"LINDEX",
        b"SCAN",
        b"DBSIZE",
        b"PING",
        b"ECHO",
        b"INFO",
        b"TIME",
        b"ROLE",
        b"CLUSTER",
        b"CLIENT",
        b"HELLO",
        b"SELECT",
        b"AUTH",
        b"READONLY",
        b"WAIT",
        b"SCRIPT",
        b"EVALSHA_RO",
        b"EVAL_RO",
        b"MEMORY",
        b"CONFIG",
        b"SUBSCRIBE",
        b"PSUBSCRIBE",
        b"SSUBSCRIBE",
        b"UNSUBSCRIBE",
        b"PUNSUBSCRIBE",
        b"SUNSUBSCRIBE",
    ];
    !READS.iter().any(|read| name.eq_ignore_ascii_case(read))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replication(n: u32) -> Replication {
        Replication {
            min_replicas: n,
            ..Replication::default()
        }
    }

    #[test]
    fn writes_and_script_calls_wait_reads_do_not() {
        let rep = replication(1);
        for write in ["SET", "evalsha", "XADD", "DEL", "ZADD", "SOMETHING_NEW"] {
            assert!(
                rep.command_then_wait(&redis::cmd(write)).is_some(),
                "{write}"
            );
        }
        for read in ["GET", "zrange", "XREAD", "PING", "EVALSHA_RO"] {
            assert!(rep.command_then_wait(&redis::cmd(read)).is_none(), "{read}");
        }
    }

    #[test]
    fn calls_of_a_script_declared_read_only_do_not_wait() {
        let rep = replication(1);
        let reads = read_only(Script::new("return redis.call('GET', KEYS[1])"));
        let writes = Script::new("return redis.call('SET', KEYS[1], 1)");
        let call = |script: &Script| {
            let mut cmd = redis::cmd("EVALSHA");
            cmd.arg(script.get_hash()).arg(1).arg("k");
            cmd
        };
        assert!(rep.command_then_wait(&call(&reads)).is_none());
        assert!(rep.command_then_wait(&call(&writes)).is_some());
    }

    #[test]
    fn a_pipeline_waits_when_one_of_its_commands_writes_unless_it_is_a_transaction() {
        let rep = replication(2);
        let mut reads = redis::pipe();
        reads.cmd("GET").arg("a").cmd("GET").arg("b");
        assert!(rep.pipeline_then_wait(&reads).is_none());
        let mut mixed = reads.clone();
        mixed.cmd("SET").arg("a").arg(1);
        let waited = rep.pipeline_then_wait(&mixed).map(|p| p.cmd_iter().count());
        assert_eq!(waited, Some(4), "the three commands and WAIT");
        let mut transaction = redis::pipe();
        transaction.atomic().cmd("SET").arg("a").arg(1);
        assert!(rep.pipeline_then_wait(&transaction).is_none());
    }

    #[test]
    fn too_few_acknowledgements_fail_as_unavailable_and_are_counted() {
        let rep = replication(2);
        assert!(rep.check(Some(Value::Int(2))).is_ok());
        assert!(rep.check(Some(Value::Int(3))).is_ok());
        let before = ACK_TIMEOUTS.get();
        let err = rep.check(Some(Value::Int(1))).err();
        assert!(err.as_ref().is_some_and(is_not_replicated), "{err:?}");
        assert!(err.is_some_and(|e| e.is_io_error()));
        assert_eq!(ACK_TIMEOUTS.get(), before + 1);
        assert!(rep.check(Some(Value::Nil)).is_err());
    }
}
