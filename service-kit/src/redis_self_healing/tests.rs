//! The self-healing connection against scripted connections: one that only times out is
//! replaced once it has been silent long enough, and only then; one that answers is kept.

use std::{
    io,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value, aio::ConnectionLike};

use super::SelfHealing;

/// What every connection made by one [`Factory`] answers.
#[derive(Clone, Copy)]
enum Answer {
    TimesOut,
    Refused,
    Pong,
}

#[derive(Clone)]
struct Scripted {
    answer: Answer,
    /// The generation this connection was made as.
    made_as: u64,
}

impl Scripted {
    fn reply(&self) -> redis::RedisResult<Value> {
        match self.answer {
            Answer::TimesOut => Err(RedisError::from(io::Error::from(io::ErrorKind::TimedOut))),
            Answer::Refused => Err(RedisError::from(io::Error::from(
                io::ErrorKind::ConnectionRefused,
            ))),
            Answer::Pong => Ok(Value::Int(self.made_as as i64)),
        }
    }
}

impl ConnectionLike for Scripted {
    fn req_packed_command<'a>(&'a mut self, _cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let reply = self.reply();
        Box::pin(async move { reply })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        _pipeline: &'a Pipeline,
        _offset: usize,
        _count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let reply = self.reply().map(|value| vec![value]);
        Box::pin(async move { reply })
    }

    fn get_db(&self) -> i64 {
        0
    }
}

/// Makes the first connection answer `first` and every later one `Pong`; counts them.
fn healing(first: Answer, stuck_after: Duration) -> (SelfHealing<Scripted>, Arc<AtomicUsize>) {
    let made = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&made);
    let generation = AtomicU64::new(0);
    let link = SelfHealing::new(stuck_after, move || {
        let made_as = generation.fetch_add(1, Ordering::Relaxed);
        counter.fetch_add(1, Ordering::Relaxed);
        let answer = if made_as == 0 { first } else { Answer::Pong };
        Scripted { answer, made_as }
    });
    (link, made)
}

fn ping() -> Cmd {
    redis::cmd("PING")
}

#[tokio::test]
async fn a_connection_that_only_times_out_is_replaced_once_silent_long_enough() {
    let stuck_after = Duration::from_millis(50);
    let (link, made) = healing(Answer::TimesOut, stuck_after);
    let cmd = ping();
    let early = link.req_packed_command(&cmd).await;
    assert!(early.is_err_and(|err| err.is_timeout()));
    assert_eq!(
        made.load(Ordering::Relaxed),
        1,
        "replaced before it was silent for long"
    );

    tokio::time::sleep(stuck_after * 2).await;
    let last = link.req_packed_command(&cmd).await;
    assert!(
        last.is_err_and(|err| err.is_timeout()),
        "the old one answered the command"
    );
    assert_eq!(made.load(Ordering::Relaxed), 2);
    let next = link.req_packed_command(&cmd).await;
    assert_eq!(
        next.ok(),
        Some(Value::Int(1)),
        "the fresh connection answers"
    );
}

#[tokio::test]
async fn timeouts_from_every_command_in_flight_replace_the_connection_once() {
    let stuck_after = Duration::from_millis(20);
    let (link, made) = healing(Answer::TimesOut, stuck_after);
    let (old, number) = link.current();
    tokio::time::sleep(stuck_after * 2).await;
    let timeout = || old.reply();
    for _ in 0..5 {
        link.observe(number, &timeout());
    }
    assert_eq!(made.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn a_connection_that_answers_errors_is_not_replaced() {
    // Refusals mean the connection works and Redis is down: a fresh one would do no better.
    let stuck_after = Duration::from_millis(20);
    let (link, made) = healing(Answer::Refused, stuck_after);
    let cmd = ping();
    for _ in 0..4 {
        let _ = link.req_packed_command(&cmd).await;
        tokio::time::sleep(stuck_after).await;
    }
    assert_eq!(made.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn an_answer_in_between_timeouts_keeps_the_connection() {
    let stuck_after = Duration::from_millis(40);
    let (link, made) = healing(Answer::TimesOut, stuck_after);
    let (_, number) = link.current();
    let timeout: redis::RedisResult<()> =
        Err(RedisError::from(io::Error::from(io::ErrorKind::TimedOut)));
    for _ in 0..4 {
        tokio::time::sleep(stuck_after / 2).await;
        link.observe(number, &Ok(()));
        link.observe(number, &timeout);
    }
    assert_eq!(made.load(Ordering::Relaxed), 1);
}
