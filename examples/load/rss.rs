//! Server memory: samples VmRSS and VmHWM of `--server-pid` from /proc every 100 ms
//! during a run. Linux only; the sampler never fails a run once it has started.

use std::time::Duration;

use anyhow::Context;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How often /proc is read.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// One reading of /proc/PID/status, in KiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Resident set size now.
    pub rss_kib: u64,
    /// The kernel's high-water mark of the resident set over the process's life.
    pub hwm_kib: u64,
}

/// What the sampler saw over one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryStats {
    /// Highest sampled VmRSS during the run (this run only, unlike VmHWM).
    pub peak_rss_kib: u64,
    /// The last VmRSS sample: the steady value once load settles.
    pub last_rss_kib: u64,
    /// VmHWM at the last sample: the exact peak, but over the process's whole life.
    pub hwm_kib: u64,
    /// Number of samples taken.
    pub samples: u64,
}

impl MemoryStats {
    /// Folds one sample in.
    fn add(stats: Option<MemoryStats>, sample: Sample) -> MemoryStats {
        let (peak, samples) = stats.map_or((0, 0), |s| (s.peak_rss_kib, s.samples));
        MemoryStats {
            peak_rss_kib: peak.max(sample.rss_kib),
            last_rss_kib: sample.rss_kib,
            hwm_kib: sample.hwm_kib,
            samples: samples + 1,
        }
    }
}

/// Reads VmRSS and VmHWM from the text of /proc/PID/status (values are in kB, i.e. KiB).
pub fn parse_status(text: &str) -> Option<Sample> {
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse::<u64>().ok())
    };
    Some(Sample {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
    })
}

/// Reads one sample of process `pid`.
///
/// # Errors
/// When /proc/PID/status cannot be read (no such process, not Linux) or lacks the fields
/// (a kernel thread or a zombie).
pub fn read_sample(pid: u32) -> anyhow::Result<Sample> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_status(&text).with_context(|| format!("{path} has no VmRSS/VmHWM"))
}

/// A background task sampling one process until `finish` is called.
pub struct RssSampler {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Option<MemoryStats>>,
}

impl RssSampler {
    /// Starts sampling `pid`, for at most `max_time` (a bound in case `finish` never comes).
    pub fn start(pid: u32, max_time: Duration) -> Self {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(sample_until(pid, stopped, max_time));
        RssSampler { stop, task }
    }

    /// Stops sampling and returns what was seen; `None` if no sample could be read.
    pub async fn finish(self) -> Option<MemoryStats> {
        // The task may already have ended (process gone, time bound reached).
        let _ = self.stop.send(());
        self.task.await.ok().flatten()
    }
}

/// The sampling loop: one read per tick until stopped, the process ends, or time runs out.
async fn sample_until(
    pid: u32,
    mut stopped: oneshot::Receiver<()>,
    max_time: Duration,
) -> Option<MemoryStats> {
    let mut ticker = tokio::time::interval(SAMPLE_EVERY);
    let max_samples = max_time.as_millis() / SAMPLE_EVERY.as_millis() + 1;
    let mut stats = None;
    for _ in 0..max_samples {
        tokio::select! {
            _ = &mut stopped => break,
            _ = ticker.tick() => match read_sample(pid) {
                Ok(sample) => stats = Some(MemoryStats::add(stats, sample)),
                // The server exited mid-run: keep what was seen; the report says how many samples.
                Err(_) => break,
            },
        }
    }
    // One last reading, so "last" is taken at the end of the load.
    if let Ok(sample) = read_sample(pid) {
        stats = Some(MemoryStats::add(stats, sample));
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tlatchkey\nVmPeak:\t  900000 kB\nVmHWM:\t   51234 kB\nVmRSS:\t   48000 kB\nThreads:\t5\n";

    #[test]
    fn parses_rss_and_hwm() {
        assert_eq!(
            parse_status(STATUS),
            Some(Sample {
                rss_kib: 48_000,
                hwm_kib: 51_234
            })
        );
    }

    #[test]
    fn missing_fields_give_none() {
        assert_eq!(parse_status("Name:\tkthreadd\nState:\tS\n"), None);
        assert_eq!(parse_status("VmRSS:\tlots kB\nVmHWM:\t1 kB\n"), None);
    }

    #[test]
    fn stats_keep_peak_and_last() {
        let samples =
            [(10, 10), (30, 30), (20, 30)].map(|(rss_kib, hwm_kib)| Sample { rss_kib, hwm_kib });
        let stats = samples
            .into_iter()
            .fold(None, |s, sample| Some(MemoryStats::add(s, sample)));
        let want = MemoryStats {
            peak_rss_kib: 30,
            last_rss_kib: 20,
            hwm_kib: 30,
            samples: 3,
        };
        assert_eq!(stats, Some(want));
    }

    #[test]
    fn reads_this_process() {
        let sample = read_sample(std::process::id());
        assert!(sample.is_ok_and(|s| s.rss_kib > 0 && s.hwm_kib >= s.rss_kib));
    }
}
