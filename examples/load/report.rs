//! The result of one run: the text report on stdout and the CSV row.
//! The chart example reads the CSV by column name, so columns may be added but not renamed.

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use crate::rss::MemoryStats;
use crate::stats::{ErrorCounts, LatencySummary};

/// The CSV header; one row per run follows it.
pub const CSV_HEADER: &str =
    "scenario,label,concurrency,requests,seconds,rps,p50_ms,p90_ms,p99_ms,max_ms,errors,peak_rss_kib";

/// Everything measured in one run.
pub struct RunResult {
    /// Scenario name as on the command line.
    pub scenario: &'static str,
    /// Backend label (validated: never needs CSV quoting).
    pub label: String,
    /// Workers in this run.
    pub concurrency: usize,
    /// Requests finished, successful or not.
    pub requests: u64,
    /// Wall time of the timed phase (setup excluded).
    pub elapsed: Duration,
    /// Latency of the successful requests.
    pub latency: LatencySummary,
    /// Failed requests by kind.
    pub errors: ErrorCounts,
    /// Re-logins of refresh chains after a refused refresh.
    pub relogins: u64,
    /// Whether some worker gave up early.
    pub stopped_early: bool,
    /// Server memory, when `--server-pid` was given and readable.
    pub memory: Option<MemoryStats>,
}

impl RunResult {
    /// Successful requests per second.
    ///
    /// Failures are left out on purpose: a server answering 503 at once must not
    /// look faster than one doing the work.
    pub fn rps(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.successes() as f64 / seconds
        } else {
            0.0
        }
    }

    /// Requests that succeeded.
    fn successes(&self) -> u64 {
        self.requests.saturating_sub(self.errors.total())
    }

    /// The human-readable report.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let l = &self.latency;
        // Writing to a String cannot fail.
        let _ = writeln!(out, "scenario     {} (label {})", self.scenario, self.label);
        let _ = writeln!(out, "concurrency  {}", self.concurrency);
        let _ = writeln!(
            out,
            "requests     {} ({} ok, {} errors)",
            self.requests,
            self.successes(),
            self.errors.total()
        );
        let _ = writeln!(out, "elapsed      {:.3} s", self.elapsed.as_secs_f64());
        let _ = writeln!(
            out,
            "throughput   {:.1} req/s (successful requests)",
            self.rps()
        );
        let _ = writeln!(
            out,
            "latency      p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  max {:.3} ms (successful requests)",
            l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms
        );
        for (kind, count) in self.errors.iter() {
            let _ = writeln!(out, "error        {kind}: {count}");
        }
        if self.relogins > 0 {
            let _ = writeln!(
                out,
                "re-logins    {} (refresh chains whose token was refused)",
                self.relogins
            );
        }
        if self.stopped_early {
            let _ = writeln!(
                out,
                "warning      some workers stopped early: their recovery failed"
            );
        }
        if let Some(m) = &self.memory {
            let _ = writeln!(
                out,
                "server RSS   peak {} KiB, last {} KiB ({} samples); VmHWM {} KiB (process lifetime)",
                m.peak_rss_kib, m.last_rss_kib, m.samples, m.hwm_kib
            );
        }
        out
    }

    /// The CSV row, without a line end; `peak_rss_kib` is empty without `--server-pid`.
    pub fn csv_row(&self) -> String {
        let l = &self.latency;
        let rss = self
            .memory
            .map(|m| m.peak_rss_kib.to_string())
            .unwrap_or_default();
        format!(
            "{},{},{},{},{:.3},{:.1},{:.3},{:.3},{:.3},{:.3},{},{}",
            self.scenario,
            self.label,
            self.concurrency,
            self.requests,
            self.elapsed.as_secs_f64(),
            self.rps(),
            l.p50_ms,
            l.p90_ms,
            l.p99_ms,
            l.max_ms,
            self.errors.total(),
            rss
        )
    }
}

/// Appends the run's row to `path`, writing the header first when the file is new or empty.
///
/// # Errors
/// When the file cannot be opened or written.
pub fn append_csv(path: &Path, result: &RunResult) -> anyhow::Result<()> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let is_new = file.metadata().map(|m| m.len() == 0).unwrap_or(true);
    let mut text = String::new();
    if is_new {
        text.push_str(CSV_HEADER);
        text.push('\n');
    }
    text.push_str(&result.csv_row());
    text.push('\n');
    // One write call, so two drivers appending to one file do not interleave within a row.
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Failure;

    fn sample() -> RunResult {
        let mut errors = ErrorCounts::default();
        errors.add(&Failure::Status(
            503,
            Some("temporarily_unavailable".into()),
        ));
        RunResult {
            scenario: "refresh",
            label: "sqlite".into(),
            concurrency: 16,
            requests: 1001,
            elapsed: Duration::from_millis(2500),
            latency: LatencySummary {
                p50_ms: 1.5,
                p90_ms: 2.25,
                p99_ms: 9.0,
                max_ms: 12.125,
            },
            errors,
            relogins: 0,
            stopped_early: false,
            memory: Some(MemoryStats {
                peak_rss_kib: 51_200,
                last_rss_kib: 50_000,
                hwm_kib: 52_000,
                samples: 25,
            }),
        }
    }

    #[test]
    fn csv_row_matches_the_header() {
        let row = sample().csv_row();
        assert_eq!(
            row,
            "refresh,sqlite,16,1001,2.500,400.0,1.500,2.250,9.000,12.125,1,51200"
        );
        assert_eq!(row.split(',').count(), CSV_HEADER.split(',').count());
    }

    #[test]
    fn csv_row_leaves_rss_empty_without_a_pid() {
        let result = RunResult {
            memory: None,
            ..sample()
        };
        assert!(result.csv_row().ends_with(",1,"));
    }

    #[test]
    fn rps_counts_only_successes() {
        assert!((sample().rps() - 400.0).abs() < 1e-9);
    }

    #[test]
    fn text_report_lists_errors_by_status() {
        let text = sample().to_text();
        assert!(
            text.contains("error        http 503 (temporarily_unavailable): 1"),
            "{text}"
        );
        assert!(text.contains("peak 51200 KiB"), "{text}");
    }

    #[test]
    fn append_writes_the_header_once() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("load.csv");
        assert!(append_csv(&path, &sample()).is_ok());
        assert!(append_csv(&path, &sample()).is_ok());
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], CSV_HEADER);
    }
}
