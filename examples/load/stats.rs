//! Measurement: per-worker latency histograms and error counts, their merge, the
//! percentile summary, and the shared counters behind the once-a-second progress line.
//! Printing the final report and the CSV row lives in `report`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;

use crate::api::Failure;

/// The slowest latency the histograms resolve, in microseconds (60 s, the largest timeout).
const HIGHEST_MICROS: u64 = 60_000_000;

/// A latency histogram in microseconds: 1 µs to 60 s with 3 significant digits.
///
/// HdrHistogram keeps every percentile within 0.1 % in fixed memory (a few tens of KiB)
/// however many requests are recorded, and histograms of equal bounds add up exactly;
/// a sorted sample vector would grow with the run and need a sort at the end.
#[expect(
    clippy::expect_used,
    reason = "the bounds are constants that satisfy the documented rules"
)]
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_MICROS, 3)
        .expect("constant bounds are valid: low >= 1, high >= 2 * low, sigfig <= 5")
}

/// Counts of failed requests by kind, sorted by their printed form.
#[derive(Default, Debug, PartialEq, Eq)]
pub struct ErrorCounts(BTreeMap<String, u64>);

impl ErrorCounts {
    /// Counts one failure.
    pub fn add(&mut self, failure: &Failure) {
        *self.0.entry(failure.to_string()).or_default() += 1;
    }

    /// Adds another worker's counts.
    pub fn merge(&mut self, other: ErrorCounts) {
        for (kind, count) in other.0 {
            *self.0.entry(kind).or_default() += count;
        }
    }

    /// Total failures.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// Each kind with its count.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.0.iter().map(|(kind, count)| (kind.as_str(), *count))
    }
}

/// What one worker measured.
pub struct WorkerStats {
    /// Latencies of the successful requests, in microseconds.
    pub latencies: Histogram<u64>,
    /// Failed requests by kind.
    pub errors: ErrorCounts,
    /// Refresh chains that had to log in again after a refused refresh.
    pub relogins: u64,
    /// Whether the worker gave up before the run's bounds (its recovery failed).
    pub stopped_early: bool,
}

impl WorkerStats {
    /// An empty record.
    pub fn new() -> Self {
        WorkerStats {
            latencies: new_histogram(),
            errors: ErrorCounts::default(),
            relogins: 0,
            stopped_early: false,
        }
    }

    /// Adds another worker's record to this one.
    ///
    /// # Errors
    /// If the histograms' bounds differ, which `new_histogram` rules out.
    pub fn merge(&mut self, other: WorkerStats) -> anyhow::Result<()> {
        self.latencies
            .add(&other.latencies)
            .context("merging latency histograms")?;
        self.errors.merge(other.errors);
        self.relogins += other.relogins;
        self.stopped_early |= other.stopped_early;
        Ok(())
    }
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LatencySummary {
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest recorded.
    pub max_ms: f64,
}

impl LatencySummary {
    /// Summarises a microsecond histogram; an empty one gives zeros.
    pub fn from_histogram(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return LatencySummary::default();
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        LatencySummary {
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p90_ms: ms(histogram.value_at_quantile(0.90)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
        }
    }
}

/// Converts a latency to whole microseconds for the histogram, saturating.
pub fn micros(latency: Duration) -> u64 {
    u64::try_from(latency.as_micros()).unwrap_or(u64::MAX)
}

/// Counters every worker bumps, read by the progress line.
#[derive(Default)]
pub struct Progress {
    done: AtomicU64,
    errors: AtomicU64,
}

impl Progress {
    /// Records one finished request.
    pub fn record(&self, ok: bool) {
        self.done.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Prints one stderr line a second until aborted, or until `max_lines` lines.
    pub async fn print_every_second(self: Arc<Self>, started: Instant, max_lines: u64) {
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.tick().await; // The first tick is immediate.
        let mut last_done = 0;
        for _ in 0..max_lines {
            ticker.tick().await;
            let done = self.done.load(Ordering::Relaxed);
            let errors = self.errors.load(Ordering::Relaxed);
            let line = progress_line(started.elapsed(), done, done - last_done, errors);
            // A closed stderr must not stop the run.
            let _ = writeln!(std::io::stderr(), "{line}");
            last_done = done;
        }
    }
}

/// One progress line: elapsed seconds, requests done, requests in the last second, errors.
fn progress_line(elapsed: Duration, done: u64, last_second: u64, errors: u64) -> String {
    format!(
        "[{:>5.1}s] {done:>9} requests  {last_second:>7} req/s  {errors} errors",
        elapsed.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_known_latencies() {
        let mut histogram = new_histogram();
        for ms in 1..=100u64 {
            histogram.saturating_record(ms * 1000);
        }
        let summary = LatencySummary::from_histogram(&histogram);
        // 3 significant digits: each value is exact to within 0.1 %.
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.001;
        assert!(close(summary.p50_ms, 50.0), "{summary:?}");
        assert!(close(summary.p90_ms, 90.0), "{summary:?}");
        assert!(close(summary.p99_ms, 99.0), "{summary:?}");
        assert!(close(summary.max_ms, 100.0), "{summary:?}");
    }

    #[test]
    fn summary_of_nothing_is_zero() {
        assert_eq!(
            LatencySummary::from_histogram(&new_histogram()),
            LatencySummary::default()
        );
    }

    #[test]
    fn slower_than_the_bound_saturates_instead_of_failing() {
        let mut histogram = new_histogram();
        histogram.saturating_record(micros(Duration::from_secs(600)));
        assert!(LatencySummary::from_histogram(&histogram).max_ms >= 59_000.0);
    }

    #[test]
    fn worker_stats_merge_adds_counts_and_latencies() {
        let (mut a, mut b) = (WorkerStats::new(), WorkerStats::new());
        a.latencies.saturating_record(1000);
        b.latencies.saturating_record(3000);
        a.errors
            .add(&Failure::Status(400, Some("invalid_grant".into())));
        b.errors
            .add(&Failure::Status(400, Some("invalid_grant".into())));
        b.errors.add(&Failure::Timeout);
        assert!(a.merge(b).is_ok());
        assert_eq!(a.latencies.len(), 2);
        let counts: Vec<_> = a.errors.iter().collect();
        assert_eq!(
            counts,
            vec![("http 400 (invalid_grant)", 2), ("timeout", 1)]
        );
        assert_eq!(a.errors.total(), 3);
    }

    #[test]
    fn progress_line_shows_rate_and_errors() {
        let line = progress_line(Duration::from_millis(3000), 12_000, 4_000, 2);
        assert!(
            line.contains("12000 requests")
                && line.contains("4000 req/s")
                && line.contains("2 errors")
        );
    }
}
