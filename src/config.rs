//! Settings: layered loading (built-in defaults < `--config FILE` <
//! `LATCHKEY__SECTION__KEY` and `DATABASE_URL`), strict deserialisation, and
//! validation into the typed values the rest of the code uses. No globals: the
//! validated `Settings` is passed down from `startup`.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use chrono::Duration;
use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;

/// The committed defaults, built into the binary so it runs from any folder.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// A configuration problem, naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The layers could not be read or deserialised.
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    /// A layer is not valid TOML: the line and key, never the value.
    #[error("configuration: {0}")]
    Syntax(String),
    /// A value was read but is out of range.
    #[error("configuration key `{key}`: {problem}")]
    Invalid {
        /// The dotted key, e.g. `server.port`.
        key: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

/// Every setting, as written in the layers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    /// `[server]`
    pub server: ServerSettings,
    /// `[database]`
    pub database: DatabaseSettings,
    /// `[tokens]`
    pub tokens: TokenSettings,
    /// `[sessions]`
    pub sessions: SessionSettings,
    /// `[keys]`
    pub keys: KeySettings,
    /// `[passwords]`
    pub passwords: PasswordSettings,
    /// `[throttle]`
    pub throttle: ThrottleSettings,
    /// `[signup]`
    pub signup: SignupSettings,
    /// `[log]`
    pub log: LogSettings,
    /// `[demo]`
    pub demo: DemoSettings,
    /// `[metrics]`
    pub metrics: MetricsSettings,
    /// `[audit]`
    pub audit: AuditSettings,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Listen address.
    pub host: String,
    /// Listen port; 0 picks a free one.
    pub port: u16,
    /// The issuer URL (`iss`), also the base of every advertised endpoint.
    pub issuer: String,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<String>,
    /// Grace for in-flight requests on shutdown.
    pub shutdown_timeout_secs: u64,
    /// Worker threads; 0 means one per core.
    pub workers: usize,
}

/// `[database]`
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://…` or `postgres://…`; may carry a password, so never printed.
    pub url: secrecy::SecretString,
    /// Pool size.
    pub max_connections: u32,
    /// Seconds to wait for a pooled connection.
    pub acquire_timeout_secs: u64,
}

impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &"[redacted]")
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout_secs", &self.acquire_timeout_secs)
            .finish()
    }
}

/// `[tokens]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    /// Access-token and id_token lifetime.
    pub access_token_ttl_secs: i64,
    /// `aud` for clients without their own audience.
    pub default_audience: String,
    /// Verification leeway.
    pub leeway_secs: i64,
    /// Refresh-token grace period.
    pub refresh_grace_secs: i64,
}

/// `[sessions]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSettings {
    /// Absolute session lifetime.
    pub absolute_ttl_secs: i64,
    /// Idle timeout.
    pub idle_ttl_secs: i64,
    /// Purge period.
    pub purge_interval_secs: u64,
    /// Rows per purge batch.
    pub purge_batch_size: i64,
}

/// `[keys]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    /// The keys folder.
    pub dir: PathBuf,
    /// RSA modulus size for new keys.
    pub rsa_bits: u32,
    /// JWKS Cache-Control max-age.
    pub jwks_max_age_secs: i64,
    /// How often the keys folder is re-read.
    pub reload_interval_secs: u64,
}

/// `[passwords]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordSettings {
    /// argon2id memory cost in KiB.
    pub memory_kib: u32,
    /// argon2id passes.
    pub iterations: u32,
    /// argon2id lanes.
    pub parallelism: u32,
    /// Hashes in flight at once; 0 means one per core.
    pub max_concurrent_hashes: usize,
    /// How long a login waits for a hashing slot.
    pub queue_timeout_ms: u64,
}

/// `[throttle]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleSettings {
    /// Failures per account per window.
    pub account_max_failures: i64,
    /// Account window.
    pub account_window_secs: i64,
    /// Failures per address per window.
    pub address_max_failures: i64,
    /// Address window.
    pub address_window_secs: i64,
    /// Cap on an account lockout, which doubles with each lockout in a row.
    pub account_max_lockout_secs: i64,
}

/// `[signup]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignupSettings {
    /// Whether `POST /v1/users` is open.
    pub enabled: bool,
}

/// `[log]`
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

/// `[demo]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoSettings {
    /// Serve `/demo/`.
    pub enabled: bool,
}

/// `[metrics]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// Where `GET /metrics` is served: empty for the main listener, or a
    /// `host:port` of its own (then the main listener does not serve it).
    pub listen: String,
}

/// `[audit]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// Audit events older than this are purged; 0 keeps them forever.
    pub retention_days: i64,
    /// Rows per purge batch.
    pub purge_batch_size: i64,
}

/// Validated settings: what the code uses.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The raw layers, validated.
    pub raw: RawSettings,
    /// `server.issuer` without a trailing slash.
    pub issuer: String,
    /// Parsed `server.trusted_proxies`.
    pub trusted_proxies: Vec<IpAddr>,
    /// Which store `database.url` names.
    pub backend: Backend,
    /// Parsed `metrics.listen`: `None` serves `/metrics` on the main listener.
    pub metrics_listen: Option<SocketAddr>,
}

/// The store behind `database.url`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Settings {
    /// Loads the layers: defaults, then `file`, then the environment.
    ///
    /// # Errors
    /// A layer cannot be read, a key is unknown, or a value is invalid.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut builder =
            Config::builder().add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml));
        if let Some(path) = file {
            if let Ok(text) = std::fs::read_to_string(path) {
                check_syntax(&text)?;
            }
            builder = builder.add_source(File::from(path).format(FileFormat::Toml).required(true));
        }
        builder = builder.add_source(
            Environment::with_prefix("LATCHKEY")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("server.trusted_proxies"),
        );
        if let Ok(url) = std::env::var("DATABASE_URL") {
            builder = builder.set_override("database.url", url)?;
        }
        let raw: RawSettings = builder.build()?.try_deserialize()?;
        Self::validate(raw)
    }

    /// The built-in defaults alone, as tests and benches start from.
    ///
    /// # Errors
    /// Only if the committed defaults are broken.
    pub fn defaults() -> Result<Self, ConfigError> {
        let raw: RawSettings = Config::builder()
            .add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml))
            .build()?
            .try_deserialize()?;
        Self::validate(raw)
    }

    /// The built-in defaults with one TOML document laid over them, validated:
    /// what `--config FILE` does, without the file system or the environment.
    /// The property tests and the fuzz target drive configuration parsing
    /// through it.
    ///
    /// # Errors
    /// The overlay is not TOML, names an unknown key, or holds a bad value.
    pub fn from_toml(overlay: &str) -> Result<Self, ConfigError> {
        check_syntax(overlay)?;
        let raw: RawSettings = Config::builder()
            .add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml))
            .add_source(File::from_str(overlay, FileFormat::Toml))
            .build()?
            .try_deserialize()?;
        Self::validate(raw)
    }

    /// Checks ranges and parses the values that have a richer type.
    ///
    /// # Errors
    /// Names the first key whose value is invalid.
    pub fn validate(raw: RawSettings) -> Result<Self, ConfigError> {
        use secrecy::ExposeSecret;
        let issuer = raw.server.issuer.trim_end_matches('/').to_owned();
        if !(issuer.starts_with("http://") || issuer.starts_with("https://")) {
            return invalid("server.issuer", "must be an http:// or https:// URL");
        }
        let backend = {
            let url = raw.database.url.expose_secret();
            if url.starts_with("sqlite:") {
                Backend::Sqlite
            } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                Backend::Postgres
            } else {
                return invalid("database.url", "must start with sqlite:// or postgres://");
            }
        };
        let mut trusted_proxies = Vec::new();
        for p in &raw.server.trusted_proxies {
            match p.trim().parse::<IpAddr>() {
                Ok(ip) => trusted_proxies.push(ip),
                Err(_) => {
                    return invalid("server.trusted_proxies", "each entry must be an IP address")
                }
            }
        }
        check_positive(
            "database.max_connections",
            i64::from(raw.database.max_connections),
        )?;
        check_positive(
            "database.acquire_timeout_secs",
            saturate(raw.database.acquire_timeout_secs),
        )?;
        check_positive(
            "tokens.access_token_ttl_secs",
            raw.tokens.access_token_ttl_secs,
        )?;
        check_non_negative("tokens.leeway_secs", raw.tokens.leeway_secs)?;
        check_non_negative("tokens.refresh_grace_secs", raw.tokens.refresh_grace_secs)?;
        if raw.tokens.default_audience.is_empty() {
            return invalid("tokens.default_audience", "must not be empty");
        }
        check_positive("sessions.absolute_ttl_secs", raw.sessions.absolute_ttl_secs)?;
        check_positive("sessions.idle_ttl_secs", raw.sessions.idle_ttl_secs)?;
        check_positive(
            "sessions.purge_interval_secs",
            saturate(raw.sessions.purge_interval_secs),
        )?;
        check_positive("sessions.purge_batch_size", raw.sessions.purge_batch_size)?;
        if ![2048, 3072, 4096].contains(&raw.keys.rsa_bits) {
            return invalid("keys.rsa_bits", "must be 2048, 3072 or 4096");
        }
        check_positive("keys.jwks_max_age_secs", raw.keys.jwks_max_age_secs)?;
        check_positive(
            "keys.reload_interval_secs",
            saturate(raw.keys.reload_interval_secs),
        )?;
        check_passwords(&raw.passwords)?;
        check_throttle(&raw.throttle)?;
        check_range(
            "server.workers",
            saturate(raw.server.workers as u64),
            0,
            1024,
        )?;
        check_non_negative(
            "server.shutdown_timeout_secs",
            saturate(raw.server.shutdown_timeout_secs),
        )?;
        if tracing_subscriber::EnvFilter::try_new(&raw.log.level).is_err() {
            return invalid("log.level", "is not a valid tracing filter (e.g. \"info\")");
        }
        let metrics_listen = parse_metrics_listen(&raw.metrics.listen)?;
        check_non_negative("audit.retention_days", raw.audit.retention_days)?;
        check_positive("audit.purge_batch_size", raw.audit.purge_batch_size)?;
        Ok(Self {
            raw,
            issuer,
            trusted_proxies,
            backend,
            metrics_listen,
        })
    }

    /// Access-token lifetime.
    pub fn access_token_ttl(&self) -> Duration {
        Duration::seconds(self.raw.tokens.access_token_ttl_secs)
    }

    /// Verification leeway.
    pub fn leeway(&self) -> Duration {
        Duration::seconds(self.raw.tokens.leeway_secs)
    }

    /// JWKS max-age.
    pub fn jwks_max_age(&self) -> Duration {
        Duration::seconds(self.raw.keys.jwks_max_age_secs)
    }

    /// Hashing slots: the configured number, or one per core.
    pub fn max_concurrent_hashes(&self) -> usize {
        match self.raw.passwords.max_concurrent_hashes {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        }
    }
}

fn parse_metrics_listen(raw: &str) -> Result<Option<SocketAddr>, ConfigError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    match raw.parse() {
        Ok(addr) => Ok(Some(addr)),
        Err(_) => invalid(
            "metrics.listen",
            "must be empty or an IP address and port, e.g. 127.0.0.1:9090",
        ),
    }
}

fn invalid<T>(key: &'static str, problem: &str) -> Result<T, ConfigError> {
    Err(ConfigError::Invalid {
        key,
        problem: problem.to_owned(),
    })
}

/// Parses `text` as TOML first, because the `config` crate reports some
/// syntax errors (an integer beyond 64 bits) without saying where. The error
/// names the line and its key but never echoes a value, which may be a
/// database password.
fn check_syntax(text: &str) -> Result<(), ConfigError> {
    let Err(err) = text.parse::<toml::Table>() else {
        return Ok(());
    };
    let at = err.span().map_or(0, |s| s.start);
    let line_no = text.get(..at).unwrap_or(text).matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("");
    let place = match line.split_once('=').map(|(k, _)| k.trim()) {
        Some(key) if !key.is_empty() && key.len() <= 64 => {
            format!("line {line_no}, key `{key}`")
        }
        _ => format!("line {line_no}"),
    };
    Err(ConfigError::Syntax(format!(
        "TOML syntax error at {place}: {}",
        err.message()
    )))
}

/// The largest count or duration any setting takes: ten years in seconds.
/// Bounding every setting keeps `now + setting` and `Duration::seconds` far
/// from overflow, so no accepted configuration can make a request panic.
pub const MAX_SETTING: i64 = 315_360_000;

fn saturate(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn check_range(key: &'static str, value: i64, min: i64, max: i64) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        invalid(key, &format!("must be between {min} and {max}"))
    }
}

fn check_positive(key: &'static str, value: i64) -> Result<(), ConfigError> {
    check_range(key, value, 1, MAX_SETTING)
}

fn check_non_negative(key: &'static str, value: i64) -> Result<(), ConfigError> {
    check_range(key, value, 0, MAX_SETTING)
}

/// argon2id at least at OWASP's minimum (m=19456 KiB, t=2, p=1), and at most
/// 1 GiB per hash, so a typo cannot make start-up allocate the machine away.
fn check_passwords(p: &PasswordSettings) -> Result<(), ConfigError> {
    check_range(
        "passwords.memory_kib",
        i64::from(p.memory_kib),
        19456,
        1_048_576,
    )?;
    check_range("passwords.iterations", i64::from(p.iterations), 2, 64)?;
    check_range("passwords.parallelism", i64::from(p.parallelism), 1, 64)?;
    check_range(
        "passwords.max_concurrent_hashes",
        saturate(p.max_concurrent_hashes as u64),
        0,
        1024,
    )?;
    check_positive("passwords.queue_timeout_ms", saturate(p.queue_timeout_ms))
}

fn check_throttle(t: &ThrottleSettings) -> Result<(), ConfigError> {
    check_positive("throttle.account_max_failures", t.account_max_failures)?;
    check_positive("throttle.account_window_secs", t.account_window_secs)?;
    check_positive("throttle.address_max_failures", t.address_max_failures)?;
    check_positive("throttle.address_window_secs", t.address_window_secs)?;
    check_positive(
        "throttle.account_max_lockout_secs",
        t.account_max_lockout_secs,
    )?;
    if t.account_max_lockout_secs < t.account_window_secs {
        return invalid(
            "throttle.account_max_lockout_secs",
            "must be at least throttle.account_window_secs",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_from(extra: &str) -> Result<RawSettings, config::ConfigError> {
        Config::builder()
            .add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml))
            .add_source(File::from_str(extra, FileFormat::Toml))
            .build()?
            .try_deserialize()
    }

    #[test]
    fn defaults_are_valid() {
        let s = Settings::defaults().expect("defaults");
        assert_eq!(s.backend, Backend::Sqlite);
        assert_eq!(s.issuer, "http://127.0.0.1:8080");
        assert_eq!(s.access_token_ttl(), Duration::minutes(15));
    }

    #[test]
    fn unknown_key_is_rejected() {
        let err = raw_from("[server]\nprot = 1\n").unwrap_err();
        assert!(err.to_string().contains("prot"), "{err}");
    }

    #[test]
    fn bad_type_names_the_key() {
        let err = raw_from("[server]\nport = \"many\"\n").unwrap_err();
        assert!(err.to_string().contains("port"), "{err}");
    }

    #[test]
    fn out_of_range_value_names_the_key() {
        let raw = raw_from("[keys]\nrsa_bits = 1024\n").expect("parses");
        let err = Settings::validate(raw).unwrap_err();
        assert!(err.to_string().contains("keys.rsa_bits"), "{err}");
    }

    #[test]
    fn weak_argon2_parameters_are_refused() {
        let raw = raw_from("[passwords]\nmemory_kib = 1024\n").expect("parses");
        assert!(Settings::validate(raw).is_err());
    }

    #[test]
    fn bad_database_url_is_refused() {
        let raw = raw_from("[database]\nurl = \"mysql://x\"\n").expect("parses");
        let err = Settings::validate(raw).unwrap_err();
        assert!(err.to_string().contains("database.url"), "{err}");
    }

    #[test]
    fn production_example_is_valid_and_turns_the_demo_off() {
        let raw = raw_from(include_str!("../config/production.example.toml")).expect("parses");
        let s = Settings::validate(raw).expect("valid");
        assert!(!s.raw.demo.enabled);
        assert_eq!(s.backend, Backend::Postgres);
    }

    #[test]
    fn metrics_listen_is_empty_or_an_address() {
        let s = Settings::defaults().expect("defaults");
        assert_eq!(s.metrics_listen, None);
        let raw = raw_from("[metrics]\nlisten = \"127.0.0.1:9090\"\n").expect("parses");
        let s = Settings::validate(raw).expect("valid");
        assert_eq!(s.metrics_listen.map(|a| a.port()), Some(9090));
        let raw = raw_from("[metrics]\nlisten = \"localhost\"\n").expect("parses");
        let err = Settings::validate(raw).unwrap_err();
        assert!(err.to_string().contains("metrics.listen"), "{err}");
    }

    #[test]
    fn negative_audit_retention_is_refused() {
        let raw = raw_from("[audit]\nretention_days = -1\n").expect("parses");
        let err = Settings::validate(raw).unwrap_err();
        assert!(err.to_string().contains("audit.retention_days"), "{err}");
    }

    #[test]
    fn debug_redacts_database_url() {
        let raw = raw_from("[database]\nurl = \"postgres://u:hunter2@h/db\"\n").expect("parses");
        assert!(!format!("{raw:?}").contains("hunter2"));
    }

    #[test]
    fn absurd_durations_are_refused_by_name() {
        let err = Settings::from_toml("[tokens]\naccess_token_ttl_secs = 9223372036854775807\n")
            .unwrap_err();
        assert!(
            err.to_string().contains("tokens.access_token_ttl_secs"),
            "{err}"
        );
        let err = Settings::from_toml("[keys]\nreload_interval_secs = 18446744073709551615\n")
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("line 2, key `reload_interval_secs`"),
            "{err}"
        );
        let err = Settings::from_toml("[keys]\nreload_interval_secs = 9223372036854775807\n")
            .unwrap_err();
        assert!(
            err.to_string().contains("keys.reload_interval_secs"),
            "{err}"
        );
    }

    #[test]
    fn lockout_cap_below_the_window_is_refused() {
        let err = Settings::from_toml("[throttle]\naccount_max_lockout_secs = 60\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("throttle.account_max_lockout_secs"),
            "{err}"
        );
    }

    #[test]
    fn syntax_errors_name_the_line_and_key_but_not_the_value() {
        let err =
            Settings::from_toml("[database]\nurl = \"postgres://u:hunter2@h/db\n").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("line 2, key `url`"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }

    #[test]
    fn a_bad_log_filter_is_refused() {
        let err = Settings::from_toml("[log]\nlevel = \"=[\"\n").unwrap_err();
        assert!(err.to_string().contains("log.level"), "{err}");
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        /// Every key of the defaults, plus unknown ones in known and unknown
        /// sections.
        const KEYS: &[(&str, &str)] = &[
            ("server", "host"),
            ("server", "port"),
            ("server", "issuer"),
            ("server", "trusted_proxies"),
            ("server", "shutdown_timeout_secs"),
            ("server", "workers"),
            ("database", "url"),
            ("database", "max_connections"),
            ("database", "acquire_timeout_secs"),
            ("tokens", "access_token_ttl_secs"),
            ("tokens", "default_audience"),
            ("tokens", "leeway_secs"),
            ("tokens", "refresh_grace_secs"),
            ("sessions", "absolute_ttl_secs"),
            ("sessions", "idle_ttl_secs"),
            ("sessions", "purge_interval_secs"),
            ("sessions", "purge_batch_size"),
            ("keys", "dir"),
            ("keys", "rsa_bits"),
            ("keys", "jwks_max_age_secs"),
            ("keys", "reload_interval_secs"),
            ("passwords", "memory_kib"),
            ("passwords", "iterations"),
            ("passwords", "parallelism"),
            ("passwords", "max_concurrent_hashes"),
            ("passwords", "queue_timeout_ms"),
            ("throttle", "account_max_failures"),
            ("throttle", "account_window_secs"),
            ("throttle", "address_max_failures"),
            ("throttle", "address_window_secs"),
            ("throttle", "account_max_lockout_secs"),
            ("signup", "enabled"),
            ("log", "format"),
            ("log", "level"),
            ("demo", "enabled"),
            ("server", "prot"),
            ("tokens", "ttl"),
            ("bogus", "key"),
        ];

        fn toml_value() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<i64>().prop_map(|v| v.to_string()),
                (-5i64..5000).prop_map(|v| v.to_string()),
                any::<bool>().prop_map(|v| v.to_string()),
                any::<f64>()
                    .prop_filter("finite", |v| v.is_finite())
                    .prop_map(|v| format!("{v:?}")),
                "\\PC{0,24}".prop_map(|s| toml::Value::String(s).to_string()),
                Just("\"json\"".to_owned()),
                Just("\"postgres://u@h/db\"".to_owned()),
                proptest::collection::vec(any::<i16>(), 0..3).prop_map(|v| format!("{v:?}")),
                Just("[\"10.0.0.1\", \"::1\"]".to_owned()),
                Just("{ a = 1 }".to_owned()),
            ]
        }

        /// Lays `entries` (distinct keys) over the defaults as one document.
        fn document(entries: &std::collections::BTreeMap<usize, String>) -> String {
            let mut by_section: std::collections::BTreeMap<&str, String> = Default::default();
            for (i, value) in entries {
                let (section, key) = KEYS[*i];
                by_section
                    .entry(section)
                    .or_default()
                    .push_str(&format!("{key} = {value}\n"));
            }
            by_section
                .iter()
                .map(|(section, body)| format!("[{section}]\n{body}"))
                .collect()
        }

        /// What the server computes from an accepted configuration: none of
        /// it may overflow.
        fn exercise(s: &Settings) {
            let now = DateTime::<chrono::Utc>::from_timestamp(4_102_444_800, 0).expect("2100");
            let r = &s.raw;
            for secs in [
                r.tokens.access_token_ttl_secs,
                r.tokens.leeway_secs,
                r.tokens.refresh_grace_secs,
                r.sessions.absolute_ttl_secs,
                r.sessions.idle_ttl_secs,
                r.keys.jwks_max_age_secs.saturating_mul(2),
                r.throttle.account_window_secs,
                r.throttle.address_window_secs,
                r.throttle.account_max_lockout_secs,
            ] {
                let _ = now + Duration::seconds(secs);
                let _ = now - Duration::seconds(secs);
            }
            let _ = (s.access_token_ttl(), s.leeway(), s.jwks_max_age());
            assert!(s.max_concurrent_hashes() > 0);
        }

        use chrono::DateTime;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn overlays_are_accepted_or_rejected_naming_a_key(
                entries in proptest::collection::btree_map(0..KEYS.len(), toml_value(), 1..4)
            ) {
                let doc = document(&entries);
                match Settings::from_toml(&doc) {
                    Ok(s) => exercise(&s),
                    Err(err) => {
                        let message = err.to_string();
                        // The leaf key, or an unknown section's name.
                        let named = entries.keys().any(|i| {
                            let (section, key) = KEYS[*i];
                            message.contains(key) || (section == "bogus" && message.contains(section))
                        });
                        prop_assert!(named, "{message}\nfor\n{doc}");
                    }
                }
            }

            #[test]
            fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
                let _ = Settings::from_toml(&text);
            }

            #[test]
            fn arbitrary_toml_lines_never_panic(
                lines in proptest::collection::vec("[a-z\\[\\]._\"= 0-9{},-]{0,30}", 0..6)
            ) {
                let _ = Settings::from_toml(&lines.join("\n"));
            }
        }
    }
}
