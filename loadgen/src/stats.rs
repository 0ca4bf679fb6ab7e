//! Latency histograms (HdrHistogram, microseconds) and error counts, and their summaries.

use std::{collections::BTreeMap, time::Duration};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::failure::Failure;

/// Slower than a minute is a hang, not a latency: such values are clamped to it.
const HIGHEST_MICROS: u64 = 60_000_000;
/// Three significant digits: 0.1% resolution at every magnitude.
const SIGNIFICANT_DIGITS: u8 = 3;
/// A few messages are enough to see what went wrong; the counts say how often.
const ERROR_SAMPLES: usize = 5;

/// One latency distribution.
#[derive(Debug, Clone)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    #[expect(
        clippy::expect_used,
        reason = "constant bounds: 1 ≤ 2 × 1 ≤ HIGHEST_MICROS and 3 digits, checked by a test"
    )]
    fn default() -> Self {
        Self(
            Histogram::new_with_bounds(1, HIGHEST_MICROS, SIGNIFICANT_DIGITS)
                .expect("valid constant histogram bounds"),
        )
    }
}

impl Latency {
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.0.saturating_record(micros.clamp(1, HIGHEST_MICROS));
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    pub fn summary(&self) -> LatencySummary {
        let ms = |micros: u64| micros as f64 / 1000.0;
        if self.0.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: self.0.len(),
            p50_ms: ms(self.0.value_at_quantile(0.50)),
            p90_ms: ms(self.0.value_at_quantile(0.90)),
            p99_ms: ms(self.0.value_at_quantile(0.99)),
            max_ms: ms(self.0.max()),
            mean_ms: self.0.mean() / 1000.0,
        }
    }
}

/// Percentiles of one distribution, in milliseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

/// Failures, counted by kind and by step, with the first few messages.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Errors {
    pub total: u64,
    /// `http_<status>`, `timeout`, `transport`, `protocol`, `degraded`.
    pub by_kind: BTreeMap<String, u64>,
    /// `<step>/<kind>`: where they happened.
    pub by_step: BTreeMap<String, u64>,
    pub samples: Vec<String>,
}

impl Errors {
    pub fn record(&mut self, failure: &Failure) {
        self.total += 1;
        let kind = failure.kind();
        *self
            .by_step
            .entry(format!("{}/{kind}", failure.step()))
            .or_default() += 1;
        *self.by_kind.entry(kind).or_default() += 1;
        if self.samples.len() < ERROR_SAMPLES {
            self.samples.push(failure.to_string());
        }
    }

    /// `none`, or `3 (http_503: 2, timeout: 1)`.
    pub fn brief(&self) -> String {
        if self.total == 0 {
            return "none".into();
        }
        let kinds: Vec<String> = self
            .by_kind
            .iter()
            .map(|(kind, n)| format!("{kind}: {n}"))
            .collect();
        format!("{} ({})", self.total, kinds.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_out_in_milliseconds() {
        let mut latency = Latency::default();
        for ms in 1..=100 {
            latency.record(Duration::from_millis(ms));
        }
        let summary = latency.summary();
        assert_eq!(summary.count, 100);
        assert!((summary.p50_ms - 50.0).abs() < 0.1, "{summary:?}");
        assert!((summary.p99_ms - 99.0).abs() < 0.1, "{summary:?}");
        assert!((summary.max_ms - 100.0).abs() < 0.1, "{summary:?}");
    }

    #[test]
    fn an_empty_histogram_summarises_to_zeros() {
        assert_eq!(Latency::default().summary(), LatencySummary::default());
    }

    #[test]
    fn errors_count_by_kind_and_step() {
        let mut errors = Errors::default();
        errors.record(&Failure::Timeout { step: "connect" });
        errors.record(&Failure::Timeout { step: "accept" });
        assert_eq!(errors.by_kind.get("timeout"), Some(&2));
        assert_eq!(errors.by_step.get("connect/timeout"), Some(&1));
        assert_eq!(errors.brief(), "2 (timeout: 2)");
    }
}
