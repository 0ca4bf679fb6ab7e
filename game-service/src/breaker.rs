//! A circuit breaker for calls to the IM service: after enough consecutive
//! failures it stops calling (answers "unavailable" at once) for a cool-down,
//! then lets one probe through; the probe's success closes it again.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
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
}

impl Breaker {
    pub fn new(threshold: u32, cool_down: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cool_down,
            state: Mutex::new(State::Closed { failures: 0 }),
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
            *state = State::Closed { failures: 0 };
        }
    }

    pub fn failure(&self, now: Instant) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        *state = match *state {
            State::Closed { failures } if failures + 1 < self.threshold => State::Closed {
                failures: failures + 1,
            },
            _ => State::Open {
                until: now + self.cool_down,
            },
        };
    }

    pub fn is_open(&self) -> bool {
        self.state
            .lock()
            .is_ok_and(|s| !matches!(*s, State::Closed { .. }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL_DOWN: Duration = Duration::from_secs(2);

    #[test]
    fn opens_after_the_threshold_of_consecutive_failures() {
        let breaker = Breaker::new(3, COOL_DOWN);
        let now = Instant::now();
        breaker.failure(now);
        breaker.failure(now);
        assert!(breaker.allow(now), "two failures are below the threshold");
        breaker.failure(now);
        assert!(!breaker.allow(now), "the third failure opens it");
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let breaker = Breaker::new(2, COOL_DOWN);
        let now = Instant::now();
        breaker.failure(now);
        breaker.success();
        breaker.failure(now);
        assert!(breaker.allow(now));
    }

    #[test]
    fn after_the_cool_down_one_probe_goes_out_and_its_success_closes_it() {
        let breaker = Breaker::new(1, COOL_DOWN);
        let now = Instant::now();
        breaker.failure(now);
        assert!(!breaker.allow(now + Duration::from_secs(1)));
        let later = now + COOL_DOWN;
        assert!(breaker.allow(later), "the probe");
        assert!(!breaker.allow(later), "only one probe at a time");
        breaker.success();
        assert!(breaker.allow(later) && !breaker.is_open());
    }

    #[test]
    fn a_failed_probe_opens_it_again() {
        let breaker = Breaker::new(1, COOL_DOWN);
        let now = Instant::now();
        breaker.failure(now);
        let later = now + COOL_DOWN;
        assert!(breaker.allow(later));
        breaker.failure(later);
        assert!(!breaker.allow(later + Duration::from_secs(1)));
        assert!(breaker.allow(later + COOL_DOWN));
    }
}
