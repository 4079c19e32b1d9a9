//! Telemetry: the tracing subscriber (pretty or JSON lines, filtered by
//! `log.level` or `RUST_LOG`) and the metrics registry behind `GET /metrics`.
//!
//! Metrics live in a registry owned by the application (`Metrics`), not in
//! the `metrics` crate's process-global recorder: a process runs one server
//! in production, but the test suite runs many in one process, and each must
//! count only its own requests. The metric names below are part of the
//! operator contract (README, "Operations"); label values are always drawn
//! from small fixed sets, so a client cannot grow the registry.
//! Nothing here ever sees a secret: label values are route patterns, status
//! codes and fixed words.

use std::sync::Arc;

use metrics::{Key, Label, Metadata, Recorder as _, SharedString, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};
use serde::Deserialize;
use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::EnvFilter;

/// `[log]`: how lines are written and which are kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `pretty` or `json`.
    pub format: LogFormat,
    /// tracing filter directive.
    pub level: String,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber (on stderr) once; later calls are no-ops.
pub fn init(settings: &LogSettings) {
    let _ = subscriber(settings, std::io::stderr).try_init();
}

/// The subscriber `init` installs, writing to `writer`: pretty or JSON lines,
/// filtered by `RUST_LOG` or else `log.level`.
pub fn subscriber<W>(settings: &LogSettings, writer: W) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match settings.format {
        // The enclosing spans and their fields (the request span's
        // `request.id`, `http.route`) are written on every line, so each line
        // logged while serving a request carries its id.
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(true)
                .finish(),
        ),
        LogFormat::Pretty => Box::new(builder.compact().finish()),
    }
}

/// Metric names, exactly as they appear in the exposition.
pub mod names {
    /// Counter `{method, route, status}`.
    pub const HTTP_REQUESTS: &str = "latchkey_http_requests_total";
    /// Histogram `{method, route, status}`, seconds.
    pub const HTTP_DURATION: &str = "latchkey_http_request_duration_seconds";
    /// Counter `{grant}`.
    pub const TOKENS_ISSUED: &str = "latchkey_tokens_issued_total";
    /// Counter `{reason}`.
    pub const LOGIN_FAILURES: &str = "latchkey_login_failures_total";
    /// Counter `{outcome}`.
    pub const REFRESHES: &str = "latchkey_refresh_total";
    /// Counter: logins refused with 429 before any hash ran.
    pub const THROTTLED: &str = "latchkey_throttled_total";
    /// Histogram `{operation}`, seconds.
    pub const STORE_DURATION: &str = "latchkey_store_operation_duration_seconds";
    /// Counter `{operation, kind}`.
    pub const STORE_ERRORS: &str = "latchkey_store_errors_total";
    /// Gauge: connections open in the pool.
    pub const POOL_SIZE: &str = "latchkey_store_pool_connections";
    /// Gauge: open connections that are idle.
    pub const POOL_IDLE: &str = "latchkey_store_pool_idle_connections";
    /// Gauge: the pool's limit (`database.max_connections`).
    pub const POOL_MAX: &str = "latchkey_store_pool_max_connections";
    /// Gauge: argon2id computations running or waiting for a slot.
    pub const HASHES_IN_FLIGHT: &str = "latchkey_password_hashes_in_flight";
    /// Gauge: logins and sign-ups waiting for an argon2id slot.
    pub const HASHES_WAITING: &str = "latchkey_password_hash_queue_depth";
    /// Gauge: argon2id slots (`passwords.max_concurrent_hashes`).
    pub const HASH_SLOTS: &str = "latchkey_password_hash_slots";
    /// Gauge: seconds since the signing key became active.
    pub const KEY_AGE: &str = "latchkey_signing_key_age_seconds";
    /// Gauge `{state}`: keys in the manifest by state.
    pub const KEYS: &str = "latchkey_keys";
    /// Gauge: the key-ring version this instance holds (in store mode, the
    /// store's version it last loaded; compare across instances, or with
    /// `latchkey keys list --json`, to see whether all have caught up).
    pub const KEY_RING_VERSION: &str = "latchkey_key_ring_version";
    /// Counter `{what}`: rows deleted by the background purge.
    pub const PURGED: &str = "latchkey_purged_total";
    /// Counter: messages queued in the outbox.
    pub const MAIL_QUEUED: &str = "latchkey_mail_queued_total";
    /// Counter: messages the mail server accepted.
    pub const MAIL_SENT: &str = "latchkey_mail_sent_total";
    /// Counter: delivery attempts that failed (each retry counts).
    pub const MAIL_ATTEMPTS_FAILED: &str = "latchkey_mail_attempts_failed_total";
    /// Counter: messages given up after their last attempt.
    pub const MAIL_FAILED: &str = "latchkey_mail_failed_total";
}

const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const STORE_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

static METADATA: Metadata<'static> =
    Metadata::new("latchkey", metrics::Level::INFO, Some(module_path!()));

/// The application's metrics registry, rendered in the Prometheus text
/// format. Cheap to clone; every clone records into the same registry.
#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh, empty registry with latchkey's histogram buckets and metric
    /// descriptions.
    pub fn new() -> Self {
        #[expect(
            clippy::expect_used,
            reason = "only an empty bucket list fails, and both lists are constants"
        )]
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(names::HTTP_DURATION.into()), HTTP_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(names::STORE_DURATION.into()), STORE_BUCKETS)
            })
            .expect("the bucket lists are not empty");
        let metrics = Self {
            recorder: Arc::new(builder.build_recorder()),
        };
        metrics.describe();
        metrics
    }

    fn describe(&self) {
        use names::*;
        let counters = [
            (
                HTTP_REQUESTS,
                "HTTP requests by method, route pattern and status",
            ),
            (TOKENS_ISSUED, "Token responses by grant type"),
            (LOGIN_FAILURES, "Failed password logins by reason"),
            (REFRESHES, "Refresh-token presentations by outcome"),
            (
                THROTTLED,
                "Logins refused with 429 by failed-login throttling",
            ),
            (
                STORE_ERRORS,
                "Store operations that failed, by operation and kind",
            ),
            (PURGED, "Rows deleted by the background purge"),
            (MAIL_QUEUED, "Messages queued in the outbox"),
            (MAIL_SENT, "Messages the mail server accepted"),
            (MAIL_ATTEMPTS_FAILED, "Mail delivery attempts that failed"),
            (MAIL_FAILED, "Messages given up after their last attempt"),
        ];
        for (name, help) in counters {
            self.recorder
                .describe_counter(name.into(), None, help.into());
        }
        let histograms = [
            (HTTP_DURATION, "HTTP request latency"),
            (
                STORE_DURATION,
                "Store operation latency, pool wait included",
            ),
        ];
        for (name, help) in histograms {
            self.recorder
                .describe_histogram(name.into(), Some(Unit::Seconds), help.into());
        }
        let gauges = [
            (POOL_SIZE, "Connections open in the store pool"),
            (POOL_IDLE, "Idle connections in the store pool"),
            (POOL_MAX, "Most connections the store pool opens"),
            (HASHES_IN_FLIGHT, "argon2id computations holding a slot"),
            (HASHES_WAITING, "Requests waiting for an argon2id slot"),
            (HASH_SLOTS, "argon2id computations allowed at once"),
            (
                KEY_AGE,
                "Seconds since the signing key became active (0: none)",
            ),
            (KEYS, "Keys in the manifest by state"),
            (KEY_RING_VERSION, "Key-ring version this instance holds"),
        ];
        for (name, help) in gauges {
            self.recorder.describe_gauge(name.into(), None, help.into());
        }
    }

    /// The registry in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        self.recorder.handle().render()
    }

    /// Drains histogram samples into their buckets; run periodically so an
    /// unscraped server does not accumulate samples.
    pub fn run_upkeep(&self) {
        self.recorder.handle().run_upkeep();
    }

    /// Adds `by` to counter `name`.
    pub fn count(&self, name: &'static str, labels: Vec<Label>, by: u64) {
        self.recorder
            .register_counter(&Key::from_parts(name, labels), &METADATA)
            .increment(by);
    }

    /// Records `value` in histogram `name`.
    pub fn observe(&self, name: &'static str, labels: Vec<Label>, value: f64) {
        self.recorder
            .register_histogram(&Key::from_parts(name, labels), &METADATA)
            .record(value);
    }

    /// Sets gauge `name` to `value`.
    pub fn set(&self, name: &'static str, labels: Vec<Label>, value: f64) {
        self.recorder
            .register_gauge(&Key::from_parts(name, labels), &METADATA)
            .set(value);
    }

    /// One finished HTTP request. `route` is the matched pattern (never the
    /// raw path), so the label set stays bounded.
    pub fn http_request(
        &self,
        method: &'static str,
        route: SharedString,
        status: u16,
        seconds: f64,
    ) {
        let labels = vec![
            Label::new("method", method),
            Label::new("route", route),
            Label::new("status", status.to_string()),
        ];
        self.observe(names::HTTP_DURATION, labels.clone(), seconds);
        self.count(names::HTTP_REQUESTS, labels, 1);
    }

    /// One store operation, and its failure kind when it failed.
    pub fn store_operation(
        &self,
        operation: &'static str,
        seconds: f64,
        error: Option<&'static str>,
    ) {
        self.observe(
            names::STORE_DURATION,
            vec![Label::new("operation", operation)],
            seconds,
        );
        if let Some(kind) = error {
            self.count(
                names::STORE_ERRORS,
                vec![Label::new("operation", operation), Label::new("kind", kind)],
                1,
            );
        }
    }

    /// Increments counter `name` with one label.
    pub fn count_one(&self, name: &'static str, label: &'static str, value: &'static str) {
        self.count(name, vec![Label::new(label, value)], 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_are_independent_and_render_prometheus_text() {
        let a = Metrics::new();
        let b = Metrics::new();
        a.count_one(names::TOKENS_ISSUED, "grant", "password");
        a.http_request("GET", "/healthz".into(), 200, 0.002);
        let text = a.render();
        assert!(
            text.contains(r#"latchkey_tokens_issued_total{grant="password"} 1"#),
            "{text}"
        );
        assert!(text.contains("# TYPE latchkey_http_request_duration_seconds histogram"));
        assert!(text.contains(
            r#"latchkey_http_request_duration_seconds_bucket{method="GET",route="/healthz",status="200",le="0.0025"} 1"#
        ));
        assert!(!b.render().contains("latchkey_tokens_issued_total{"));
    }
}
