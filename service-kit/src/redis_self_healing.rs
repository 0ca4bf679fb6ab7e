//! A connection that replaces itself when it has answered nothing but timeouts for a while:
//! redis-rs's cluster connection can wedge after a master failover, every command timing out
//! for good, and a fresh connection rediscovers the cluster in milliseconds.
//!
//! Why it wedges (redis-rs 1.8): a slot refresh waits for the connection map's write lock,
//! which a node's reconnect task was granted while queued, and the reconnect tasks are not
//! polled while a refresh runs, so neither ever finishes. The connection cannot tell; only
//! its callers see that nothing comes back.

use std::{
    sync::{
        Arc, LazyLock, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value, aio::ConnectionLike};

/// Connections replaced because they answered nothing but timeouts: the
/// `redis_connections_replaced_total` metric.
#[expect(clippy::expect_used, reason = "a constant, valid metric name")]
pub static REPLACED: LazyLock<prometheus::IntCounter> = LazyLock::new(|| {
    prometheus::IntCounter::new(
        "redis_connections_replaced_total",
        "Redis connections replaced after answering nothing but timeouts",
    )
    .expect("valid metric")
});

/// Makes a fresh connection (without waiting for Redis: it connects on first use).
type Connect<C> = Arc<dyn Fn() -> C + Send + Sync>;

/// `C`, replaced by a fresh one from `connect` once a command times out and nothing at all
/// has come back (a reply, or any error but a timeout) for `stuck_after`.
pub struct SelfHealing<C> {
    connect: Connect<C>,
    current: RwLock<Generation<C>>,
    stuck_after: Duration,
    epoch: Instant,
    /// When something last came back, in milliseconds since `epoch`.
    last_answer_ms: AtomicU64,
}

struct Generation<C> {
    conn: C,
    number: u64,
}

impl<C: Clone> SelfHealing<C> {
    pub fn new(stuck_after: Duration, connect: impl Fn() -> C + Send + Sync + 'static) -> Self {
        let conn = connect();
        Self {
            connect: Arc::new(connect),
            current: RwLock::new(Generation { conn, number: 0 }),
            stuck_after,
            epoch: Instant::now(),
            last_answer_ms: AtomicU64::new(0),
        }
    }

    /// The connection to use now, and its generation (for [`Self::observe`]).
    pub fn current(&self) -> (C, u64) {
        match self.current.read() {
            Ok(current) => (current.conn.clone(), current.number),
            // A panic while replacing left the old connection or the new one: either works.
            Err(poisoned) => {
                let current = poisoned.into_inner();
                (current.conn.clone(), current.number)
            }
        }
    }

    /// Notes what a command sent on generation `number` got back.
    pub fn observe<T>(&self, number: u64, outcome: &RedisResult<T>) {
        let now = self.now_ms();
        match outcome {
            Err(err) if err.is_timeout() => {
                let silent = now.saturating_sub(self.last_answer_ms.load(Ordering::Relaxed));
                if silent >= self.stuck_after.as_millis() as u64 {
                    self.replace(number, silent);
                }
            }
            _ => self.last_answer_ms.store(now, Ordering::Relaxed),
        }
    }

    fn replace(&self, number: u64, silent_ms: u64) {
        let mut current = match self.current.write() {
            Ok(current) => current,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Every command in flight on a wedged connection times out: replace it once.
        if current.number != number {
            return;
        }
        tracing::warn!(
            silent_ms,
            "the Redis connection answered nothing but timeouts; replacing it"
        );
        current.conn = (self.connect)();
        current.number += 1;
        // The fresh connection gets as long as the old one had before it is judged.
        self.last_answer_ms.store(self.now_ms(), Ordering::Relaxed);
        REPLACED.inc();
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

impl<C> SelfHealing<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    pub fn req_packed_command<'a>(&'a self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let (mut conn, number) = self.current();
        Box::pin(async move {
            let outcome = conn.req_packed_command(cmd).await;
            self.observe(number, &outcome);
            outcome
        })
    }

    pub fn req_packed_commands<'a>(
        &'a self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let (mut conn, number) = self.current();
        Box::pin(async move {
            let outcome = conn.req_packed_commands(pipeline, offset, count).await;
            self.observe(number, &outcome);
            outcome
        })
    }

    pub fn get_db(&self) -> i64 {
        self.current().0.get_db()
    }
}

#[cfg(test)]
mod tests;
