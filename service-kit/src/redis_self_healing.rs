//! A connection that replaces itself when it has answered nothing but timeouts for a while
//! (commands waiting, not idle time):
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

/// Whether `err` means nothing came back: a timeout, or the connection dropped (its own task
/// gone answers every command with a broken pipe). A refusal is an answer: Redis is down, and
/// a fresh connection would do no better.
fn unanswered(err: &redis::RedisError) -> bool {
    err.is_timeout() || (err.is_connection_dropped() && !err.is_connection_refusal())
}

/// No command is waiting unanswered: the value of [`SelfHealing::silent_since_ms`].
const ANSWERING: u64 = u64::MAX;

/// `C`, replaced by a fresh one from `connect` once commands have gone unanswered for
/// `stuck_after`: every command sent since then timed out or found the connection's task
/// gone, and nothing came back (a reply, or any other error). Idle time does not count.
pub struct SelfHealing<C> {
    connect: Connect<C>,
    /// Where a replacement's background task runs: the runtime the first connection was
    /// made on, not whichever worker thread saw the timeout.
    runtime: Option<tokio::runtime::Handle>,
    current: RwLock<Generation<C>>,
    stuck_after: Duration,
    epoch: Instant,
    /// When the earliest command still unanswered was sent (milliseconds since `epoch`), or
    /// [`ANSWERING`].
    silent_since_ms: AtomicU64,
    /// When something last came back.
    last_answer_ms: AtomicU64,
}

struct Generation<C> {
    conn: C,
    number: u64,
}

impl<C: Clone> SelfHealing<C> {
    pub fn new(stuck_after: Duration, connect: impl Fn() -> C + Send + Sync + 'static) -> Self {
        let runtime = tokio::runtime::Handle::try_current().ok();
        let conn = connect();
        Self {
            connect: Arc::new(connect),
            runtime,
            current: RwLock::new(Generation { conn, number: 0 }),
            stuck_after,
            epoch: Instant::now(),
            silent_since_ms: AtomicU64::new(ANSWERING),
            last_answer_ms: AtomicU64::new(0),
        }
    }

    /// The connection to use now, its generation and the moment (for [`Self::observe`]).
    pub fn current(&self) -> (C, u64, u64) {
        let now = self.now_ms();
        match self.current.read() {
            Ok(current) => (current.conn.clone(), current.number, now),
            // A panic while replacing left the old connection or the new one: either works.
            Err(poisoned) => {
                let current = poisoned.into_inner();
                (current.conn.clone(), current.number, now)
            }
        }
    }

    /// Notes what a command sent on generation `number` at `sent_ms` got back.
    pub fn observe<T>(&self, number: u64, sent_ms: u64, outcome: &RedisResult<T>) {
        if number != self.generation() {
            // A replaced connection's late news says nothing of the current one.
            return;
        }
        match outcome {
            Err(err) if unanswered(err) => {
                if self.last_answer_ms.load(Ordering::Relaxed) > sent_ms {
                    // Something came back after it was sent: the connection works.
                    return;
                }
                let since = self
                    .silent_since_ms
                    .fetch_min(sent_ms, Ordering::Relaxed)
                    .min(sent_ms);
                if self.now_ms().saturating_sub(since) >= self.stuck_after.as_millis() as u64 {
                    self.replace(number);
                }
            }
            _ => {
                self.last_answer_ms.store(self.now_ms(), Ordering::Relaxed);
                self.silent_since_ms.store(ANSWERING, Ordering::Relaxed);
            }
        }
    }

    fn generation(&self) -> u64 {
        match self.current.read() {
            Ok(current) => current.number,
            Err(poisoned) => poisoned.into_inner().number,
        }
    }

    fn replace(&self, number: u64) {
        let mut current = match self.current.write() {
            Ok(current) => current,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Every command in flight on a wedged connection fails: replace it once. And an
        // answer that came in meanwhile keeps it.
        let since = self.silent_since_ms.load(Ordering::Relaxed);
        let silent = self.now_ms().saturating_sub(since);
        if current.number != number
            || since == ANSWERING
            || self.last_answer_ms.load(Ordering::Relaxed) > since
            || silent < self.stuck_after.as_millis() as u64
        {
            return;
        }
        tracing::warn!(
            silent_ms = silent,
            "the Redis connection answered nothing but timeouts; replacing it"
        );
        current.conn = match &self.runtime {
            Some(runtime) => {
                let _entered = runtime.enter();
                (self.connect)()
            }
            None => (self.connect)(),
        };
        current.number += 1;
        // The fresh connection is judged by its own commands only.
        self.silent_since_ms.store(ANSWERING, Ordering::Relaxed);
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
        let (mut conn, number, sent) = self.current();
        Box::pin(async move {
            let outcome = conn.req_packed_command(cmd).await;
            self.observe(number, sent, &outcome);
            outcome
        })
    }

    pub fn req_packed_commands<'a>(
        &'a self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let (mut conn, number, sent) = self.current();
        Box::pin(async move {
            let outcome = conn.req_packed_commands(pipeline, offset, count).await;
            self.observe(number, sent, &outcome);
            outcome
        })
    }

    pub fn get_db(&self) -> i64 {
        self.current().0.get_db()
    }
}

#[cfg(test)]
mod tests;
