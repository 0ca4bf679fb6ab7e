//! The self-healing connection against scripted connections: one whose commands only time out (or find its task gone) is replaced once they have gone unanswered long enough, and only then; idle time does not count, an answer keeps it, and every command in flight replaces it once.

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

/// What every connection made by one [`healing`] link answers.
#[derive(Clone, Copy)]
enum Answer {
    TimesOut,
    TaskGone,
    Refused,
    Pong,
}

#[derive(Clone)]
struct Scripted {
    answer: Answer,
    /// The generation this connection was made as.
    made_as: u64,
}

fn io_error(kind: io::ErrorKind) -> RedisError {
    RedisError::from(io::Error::from(kind))
}

impl Scripted {
    fn reply(&self) -> redis::RedisResult<Value> {
        match self.answer {
            Answer::TimesOut => Err(io_error(io::ErrorKind::TimedOut)),
            Answer::TaskGone => Err(io_error(io::ErrorKind::BrokenPipe)),
            Answer::Refused => Err(io_error(io::ErrorKind::ConnectionRefused)),
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

fn timed_out() -> redis::RedisResult<()> {
    Err(io_error(io::ErrorKind::TimedOut))
}

/// A command sent now, answered (by `outcome`) once `waited` has passed.
async fn after(
    link: &SelfHealing<Scripted>,
    waited: Duration,
    outcome: redis::RedisResult<()>,
) -> u64 {
    let (_, number, sent) = link.current();
    tokio::time::sleep(waited).await;
    link.observe(number, sent, &outcome);
    number
}

#[tokio::test]
async fn commands_that_only_time_out_replace_the_connection_once_unanswered_long_enough() {
    let stuck_after = Duration::from_millis(60);
    let (link, made) = healing(Answer::TimesOut, stuck_after);
    after(&link, stuck_after / 3, timed_out()).await;
    assert_eq!(
        made.load(Ordering::Relaxed),
        1,
        "replaced before it was silent for long"
    );
    // The next command times out too: nothing has come back since the first was sent.
    after(&link, stuck_after, timed_out()).await;
    assert_eq!(made.load(Ordering::Relaxed), 2);
    let cmd = redis::cmd("PING");
    let next = link.req_packed_command(&cmd).await;
    assert_eq!(
        next.ok(),
        Some(Value::Int(1)),
        "the fresh connection answers"
    );
}

#[tokio::test]
async fn a_connection_whose_task_is_gone_is_replaced() {
    let stuck_after = Duration::from_millis(30);
    let (link, made) = healing(Answer::TaskGone, stuck_after);
    let cmd = redis::cmd("PING");
    let _ = link.req_packed_command(&cmd).await;
    tokio::time::sleep(stuck_after * 2).await;
    let _ = link.req_packed_command(&cmd).await;
    assert_eq!(made.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn idle_time_does_not_count() {
    let stuck_after = Duration::from_millis(40);
    let (link, made) = healing(Answer::TimesOut, stuck_after);
    tokio::time::sleep(stuck_after * 2).await;
    // One slow command after a quiet spell: unanswered for less than `stuck_after`.
    after(&link, stuck_after / 2, timed_out()).await;
    assert_eq!(made.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn every_command_in_flight_timing_out_replaces_the_connection_once() {
    let stuck_after = Duration::from_millis(20);
    let (link, made) = healing(Answer::TimesOut, stuck_after);
    let in_flight: Vec<(u64, u64)> = (0..5)
        .map(|_| {
            let (_, number, sent) = link.current();
            (number, sent)
        })
        .collect();
    tokio::time::sleep(stuck_after * 2).await;
    for (number, sent) in in_flight {
        link.observe(number, sent, &timed_out());
    }
    assert_eq!(made.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn refusals_are_answers() {
    // Redis down: a fresh connection would do no better.
    let stuck_after = Duration::from_millis(20);
    let (link, made) = healing(Answer::Refused, stuck_after);
    let cmd = redis::cmd("PING");
    for _ in 0..4 {
        let _ = link.req_packed_command(&cmd).await;
        tokio::time::sleep(stuck_after).await;
    }
    assert_eq!(made.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn an_answer_keeps_the_connection() {
    let stuck_after = Duration::from_millis(40);
    let (link, made) = healing(Answer::TimesOut, stuck_after);
    let (_, number, first_sent) = link.current();
    for _ in 0..4 {
        after(&link, stuck_after / 2, Ok(())).await;
        // A timeout of a command sent long ago, after answers since: the connection works.
        link.observe(number, first_sent, &timed_out());
        assert_eq!(made.load(Ordering::Relaxed), 1);
    }
}
