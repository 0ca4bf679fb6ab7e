//! A circuit breaker for calls to the IM service: after enough consecutive
//! failures, for that many different players, it stops calling (answers
//! "unavailable" at once) for a cool-down, then lets one probe through; the
//! probe's success closes it again.
//!
//! Failures count per player so that one caller whose calls keep failing
//! (a slow query of their own, a client hammering connect) cannot open the
//! breaker and degrade everybody else to solo: only a failing IM service does.

use std::{
    collections::BTreeSet,
    sync::Mutex,
    time::{Duration, Instant},
};

use prometheus::IntGauge;
use shared_types::UserId;

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// The players whose calls failed since the last success.
    Closed {
        failing: BTreeSet<UserId>,
    },
    Open {
        until: Instant,
    },
    /// One probe is out; everyone else is refused until it answers.
    Probing,
}

pub struct Breaker {
    threshold: u32,
    cool_down: Duration,
    state: Mutex<State>,
    /// 1 while not closed (`game_im_breaker_open`).
    open_gauge: IntGauge,
}

impl Breaker {
    pub fn new(threshold: u32, cool_down: Duration) -> Self {
        Self::reporting_to(
            threshold,
            cool_down,
            crate::metrics::IM_BREAKER_OPEN.clone(),
        )
    }

    /// A breaker whose open state `gauge` shows (tests give it one of their own).
    fn reporting_to(threshold: u32, cool_down: Duration, open_gauge: IntGauge) -> Self {
        Self {
            threshold: threshold.max(1),
            cool_down,
            state: Mutex::new(State::Closed {
                failing: BTreeSet::new(),
            }),
            open_gauge,
        }
    }

    /// May a call go out now? `false` means: do not call, answer "unavailable".
    pub fn allow(&self, now: Instant) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return true;
        };
        match *state {
            State::Closed { .. } => true,
            State::Open { until } if now >= until => {
                *state = State::Probing;
                true
            }
            State::Open { .. } | State::Probing => false,
        }
    }

    pub fn success(&self) {
        if let Ok(mut state) = self.state.lock() {
            *state = State::Closed {
                failing: BTreeSet::new(),
            };
            self.open_gauge.set(0);
        }
    }

    /// `player`'s call failed. The breaker opens once `threshold` different
    /// players failed in a row (or the probe failed).
    pub fn failure(&self, now: Instant, player: &UserId) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let open = State::Open {
            until: now + self.cool_down,
        };
        match &mut *state {
            State::Closed { failing } => {
                failing.insert(player.clone());
                if failing.len() >= self.threshold as usize {
                    *state = open;
                    self.open_gauge.set(1);
                }
            }
            State::Probing | State::Open { .. } => {
                *state = open;
                self.open_gauge.set(1);
            }
        }
    }

    pub fn is_open(&self) -> bool {
        self.state
            .lock()
            .is_ok_and(|s| !matches!(*s, State::Closed { .. }))
    }
}

#[cfg(test)]
#[expect(clippy::expect_used, reason = "tests")]
mod tests {
    use super::*;

    const COOL_DOWN: Duration = Duration::from_secs(2);

    fn player(name: &str) -> UserId {
        UserId::parse(name).expect("valid")
    }

    #[test]
    fn opens_after_the_threshold_of_consecutive_failures_of_different_players() {
        let breaker = Breaker::new(3, COOL_DOWN);
        let now = Instant::now();
        breaker.failure(now, &player("a"));
        breaker.failure(now, &player("b"));
        assert!(breaker.allow(now), "two failures are below the threshold");
        breaker.failure(now, &player("c"));
        assert!(!breaker.allow(now), "the third failure opens it");
    }

    #[test]
    fn one_players_failures_alone_never_open_it() {
        let breaker = Breaker::new(3, COOL_DOWN);
        let now = Instant::now();
        for _ in 0..100 {
            breaker.failure(now, &player("slow"));
        }
        assert!(breaker.allow(now) && !breaker.is_open());
        breaker.failure(now, &player("b"));
        breaker.failure(now, &player("c"));
        assert!(
            !breaker.allow(now),
            "with two more players, three failed in a row"
        );
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let breaker = Breaker::new(2, COOL_DOWN);
        let now = Instant::now();
        breaker.failure(now, &player("a"));
        breaker.success();
        breaker.failure(now, &player("b"));
        assert!(breaker.allow(now));
    }

    #[test]
    fn after_the_cool_down_one_probe_goes_out_and_its_success_closes_it() {
        let breaker = Breaker::new(1, COOL_DOWN);
        let now = Instant::now();
        breaker.failure(now, &player("a"));
        assert!(!breaker.allow(now + Duration::from_secs(1)));
        let later = now + COOL_DOWN;
        assert!(breaker.allow(later), "the probe");
        assert!(!breaker.allow(later), "only one probe at a time");
        breaker.success();
        assert!(breaker.allow(later) && !breaker.is_open());
    }

    #[test]
    fn its_gauge_is_1_from_opening_until_a_probe_succeeds() {
        let gauge = IntGauge::new("test_breaker_open", "test").expect("valid");
        let breaker = Breaker::reporting_to(1, COOL_DOWN, gauge.clone());
        let now = Instant::now();
        assert_eq!(gauge.get(), 0);
        breaker.failure(now, &player("a"));
        assert_eq!(gauge.get(), 1, "open");
        assert!(breaker.allow(now + COOL_DOWN));
        assert_eq!(gauge.get(), 1, "probing is not closed");
        breaker.success();
        assert_eq!(gauge.get(), 0, "closed again");
    }

    #[test]
    fn a_failed_probe_opens_it_again() {
        let breaker = Breaker::new(1, COOL_DOWN);
        let now = Instant::now();
        breaker.failure(now, &player("a"));
        let later = now + COOL_DOWN;
        assert!(breaker.allow(later));
        breaker.failure(later, &player("a"));
        assert!(!breaker.allow(later + Duration::from_secs(1)));
        assert!(breaker.allow(later + COOL_DOWN));
    }
}
