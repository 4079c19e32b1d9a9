//! Settings: layered loading (built-in defaults < `--config FILE` <
//! `LATCHKEY__SECTION__KEY` and `DATABASE_URL`), strict deserialisation, and
//! validation into the typed values the rest of the code uses. No globals: the
//! validated `Settings` is passed down from `startup`.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use chrono::Duration;
use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;

use self::checks::{
    check_email, check_non_negative, check_passwords, check_positive, check_range, check_syntax,
    check_throttle, invalid, parse_metrics_listen, saturate,
};
pub use self::sections::*;
use crate::domain::outbox::MailerSettings;
pub use crate::domain::outbox::{MailTransport, SmtpTls};
use crate::domain::passwords::Argon2Policy;
use crate::domain::policy::{
    AuditPolicy, BrowserSessionPolicy, ClientKeyPolicy, ClientPolicy, DpopPolicy, MailPolicy,
    Policy, SessionPolicy, SignupPolicy, ThrottlePolicy, TokenPolicy,
};
use crate::domain::signing::SigningMode;
use crate::domain::throttle::Limit;
use crate::keys::admin::KeySpec;
pub use crate::telemetry::{LogFormat, LogSettings};
use crate::tokens::keypair::Algorithm;

mod checks;
mod sections;

/// The committed defaults, built into the binary so it runs from any folder.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

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
        /// Follows the key in the message, e.g. `must be 2048, 3072 or 4096`.
        problem: String,
    },
}

/// Where the signing keys and the refresh-token secret live (`keys.source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeysFrom {
    /// The keys folder: PEM files and `keys.toml`, shared by copying.
    Folder,
    /// The store, sealed under the KEK: instances share nothing else.
    Store,
}

impl KeysFrom {
    /// `folder` or `store`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "folder" => Some(Self::Folder),
            "store" => Some(Self::Store),
            _ => None,
        }
    }
}

/// Validated settings: what the code uses. Every field is private, so a
/// `Settings` exists only as `validate` made it: the domain gets its
/// `Policy`, the other parts the sections or typed values they need.
#[derive(Debug, Clone)]
pub struct Settings {
    raw: RawSettings,
    policy: Policy,
    issuer: String,
    trusted_proxies: TrustedProxies,
    backend: Backend,
    metrics_listen: Option<SocketAddr>,
}

/// Which header trusted proxies write the client's address into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, …` (the de-facto standard).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

/// The reverse proxies whose forwarding header is believed, and which header
/// that is. Only that one header is read: a client can send the other one
/// through a proxy that leaves it untouched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    /// The proxies' own addresses.
    pub addresses: Vec<IpAddr>,
    pub header: ForwardedHeader,
}

impl TrustedProxies {
    /// Whether `ip` is one of the trusted proxies (an IPv4 address mapped
    /// into IPv6 is the same address).
    pub fn contains(&self, ip: &IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.addresses.iter().any(|p| p.to_canonical() == ip)
    }
}

impl FromIterator<IpAddr> for TrustedProxies {
    fn from_iter<I: IntoIterator<Item = IpAddr>>(iter: I) -> Self {
        Self {
            addresses: iter.into_iter().collect(),
            header: ForwardedHeader::default(),
        }
    }
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

    /// The built-in defaults alone, validated.
    ///
    /// # Errors
    /// Only if the committed defaults are broken.
    pub fn defaults() -> Result<Self, ConfigError> {
        Self::validate(RawSettings::defaults()?)
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
        let header = match raw.server.forwarded_header.as_str() {
            "x-forwarded-for" => ForwardedHeader::XForwardedFor,
            "forwarded" => ForwardedHeader::Forwarded,
            _ => {
                return invalid(
                    "server.forwarded_header",
                    "must be \"x-forwarded-for\" or \"forwarded\"",
                )
            }
        };
        let trusted_proxies = TrustedProxies {
            addresses: trusted_proxies,
            header,
        };
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
        if SigningMode::from_name(&raw.tokens.signing).is_none() {
            return invalid("tokens.signing", "must be \"inline\" or \"pool\"");
        }
        check_positive("sessions.absolute_ttl_secs", raw.sessions.absolute_ttl_secs)?;
        check_positive("sessions.idle_ttl_secs", raw.sessions.idle_ttl_secs)?;
        check_positive(
            "sessions.purge_interval_secs",
            saturate(raw.sessions.purge_interval_secs),
        )?;
        check_positive("sessions.purge_batch_size", raw.sessions.purge_batch_size)?;
        if Algorithm::from_name(&raw.keys.algorithm).is_none() {
            return invalid(
                "keys.algorithm",
                "must be \"RS256\", \"ES256\" or \"EdDSA\"",
            );
        }
        if ![2048, 3072, 4096].contains(&raw.keys.rsa_bits) {
            return invalid("keys.rsa_bits", "must be 2048, 3072 or 4096");
        }
        if KeysFrom::from_name(&raw.keys.source).is_none() {
            return invalid("keys.source", "must be \"folder\" or \"store\"");
        }
        let kek = raw.keys.kek.expose_secret();
        if !kek.trim().is_empty() && crate::keys::sealed::Keks::parse(kek).is_err() {
            return invalid(
                "keys.kek",
                "must be one or more base64url strings of 32 bytes, comma-separated",
            );
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
        check_email(&raw.email)?;
        check_positive(
            "browser_sessions.absolute_ttl_secs",
            raw.browser_sessions.absolute_ttl_secs,
        )?;
        check_positive(
            "browser_sessions.idle_ttl_secs",
            raw.browser_sessions.idle_ttl_secs,
        )?;
        check_range(
            "clients.change_poll_ms",
            saturate(raw.clients.change_poll_ms),
            10,
            60_000,
        )?;
        check_range(
            "clients.cache_ttl_secs",
            raw.clients.cache_ttl_secs,
            1,
            86_400,
        )?;
        check_range("dpop.proof_window_secs", raw.dpop.proof_window_secs, 1, 600)?;
        check_range(
            "dpop.nonce_lifetime_secs",
            raw.dpop.nonce_lifetime_secs,
            10,
            86_400,
        )?;
        check_range(
            "client_keys.jwks_cache_secs",
            raw.client_keys.jwks_cache_secs,
            1,
            86_400,
        )?;
        check_range(
            "client_keys.jwks_refetch_interval_secs",
            raw.client_keys.jwks_refetch_interval_secs,
            0,
            3_600,
        )?;
        check_range(
            "client_keys.jwks_fetch_timeout_ms",
            saturate(raw.client_keys.jwks_fetch_timeout_ms),
            100,
            60_000,
        )?;
        check_range(
            "clients.secret_overlap_secs",
            raw.clients.secret_overlap_secs,
            0,
            30 * 86_400,
        )?;
        let policy = policy(&raw, &issuer);
        Ok(Self {
            raw,
            policy,
            issuer,
            trusted_proxies,
            backend,
            metrics_listen,
        })
    }

    /// `server.issuer` without a trailing slash: every token's `iss` and the
    /// base of every advertised URL.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The proxies whose forwarding header is believed, and that header.
    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.trusted_proxies
    }

    /// Which store `database.url` names.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Where `/metrics` has a listener of its own; `None` serves it on the
    /// main listener.
    pub fn metrics_listen(&self) -> Option<SocketAddr> {
        self.metrics_listen
    }

    /// What the domain's rules enforce.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// `[passwords]` as the hasher takes it, with the slot count resolved
    /// (0 becomes one per core).
    pub fn argon2(&self) -> Argon2Policy {
        let p = &self.raw.passwords;
        Argon2Policy {
            memory_kib: p.memory_kib,
            iterations: p.iterations,
            parallelism: p.parallelism,
            slots: self.max_concurrent_hashes(),
            queue_timeout: std::time::Duration::from_millis(p.queue_timeout_ms),
        }
    }

    /// Where and how mail is delivered.
    pub fn mailer(&self) -> MailerSettings {
        let e = &self.raw.email;
        MailerSettings {
            transport: e.transport,
            from: e.from.clone(),
            smtp_host: e.smtp_host.clone(),
            smtp_port: e.smtp_port,
            smtp_tls: e.smtp_tls,
            smtp_username: e.smtp_username.clone(),
            smtp_password: e.smtp_password.clone(),
            timeout: std::time::Duration::from_secs(e.smtp_timeout_secs),
        }
    }

    /// `[server]`: where to listen, how many workers, the shutdown grace.
    pub fn server(&self) -> &ServerSettings {
        &self.raw.server
    }

    /// `[database]`: the store's URL and pool.
    pub fn database(&self) -> &DatabaseSettings {
        &self.raw.database
    }

    /// `[keys]`: where the keys live and what new ones are.
    pub fn keys(&self) -> &KeySettings {
        &self.raw.keys
    }

    /// `[log]`: the log format and the tracing filter.
    pub fn log(&self) -> &LogSettings {
        &self.raw.log
    }

    /// `[pages]`: template overrides and the consent page's wording.
    pub fn pages(&self) -> &PageSettings {
        &self.raw.pages
    }

    /// Whether the demo page and its client are served (`demo.enabled`).
    pub fn demo_enabled(&self) -> bool {
        self.raw.demo.enabled
    }

    /// The folder of mail-template overrides (`email.templates_dir`).
    pub fn mail_templates_dir(&self) -> &Path {
        &self.raw.email.templates_dir
    }

    /// How often ended sessions, old audit events and settled mail are
    /// purged.
    pub fn purge_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.raw.sessions.purge_interval_secs)
    }

    /// How often each instance asks the store whether any client changed.
    pub fn client_change_poll(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.raw.clients.change_poll_ms)
    }

    /// How often the keys folder or the store's key version is read again.
    pub fn key_reload_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.raw.keys.reload_interval_secs)
    }

    /// The same settings, creating keys of `algorithm` (`keys generate
    /// --algorithm`).
    pub fn with_key_algorithm(mut self, algorithm: Algorithm) -> Self {
        self.raw.keys.algorithm = algorithm.name().to_owned();
        self
    }

    /// How the consent page words `scope`: its configured description, or
    /// the scope's own name.
    pub fn scope_description(&self, scope: &str) -> String {
        self.raw
            .pages
            .scope_descriptions
            .get(scope)
            .cloned()
            .unwrap_or_else(|| scope.to_owned())
    }

    /// Where tokens are signed (`tokens.signing`, validated at load).
    pub fn signing_mode(&self) -> SigningMode {
        SigningMode::from_name(&self.raw.tokens.signing).unwrap_or(SigningMode::Inline)
    }

    /// `tokens.access_token_ttl_secs`; with `leeway` and `jwks_max_age`, it
    /// decides how long a retired key stays published (`cli::keys::retention`).
    pub fn access_token_ttl(&self) -> Duration {
        Duration::seconds(self.raw.tokens.access_token_ttl_secs)
    }

    /// `tokens.leeway_secs`, the clock skew tolerated on `exp`, `nbf` and
    /// `iat`.
    pub fn leeway(&self) -> Duration {
        Duration::seconds(self.raw.tokens.leeway_secs)
    }

    /// `keys.jwks_max_age_secs`: how long the JWKS may be cached, so a new key
    /// is published at least twice this long before it signs.
    pub fn jwks_max_age(&self) -> Duration {
        Duration::seconds(self.raw.keys.jwks_max_age_secs)
    }

    /// Where the keys live. Validation has checked `keys.source`.
    pub fn keys_from(&self) -> KeysFrom {
        KeysFrom::from_name(&self.raw.keys.source).unwrap_or(KeysFrom::Folder)
    }

    /// What kind of key `keys generate`, `keys rotate` and a first start
    /// create. Validation has checked `keys.algorithm`; should a caller have
    /// set something else since, the default RS256 applies.
    pub fn key_spec(&self) -> KeySpec {
        KeySpec {
            algorithm: Algorithm::from_name(&self.raw.keys.algorithm).unwrap_or(Algorithm::Rs256),
            rsa_bits: self.raw.keys.rsa_bits,
        }
    }

    /// Hashing slots: the configured number, or one per core.
    pub fn max_concurrent_hashes(&self) -> usize {
        match self.raw.passwords.max_concurrent_hashes {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        }
    }
}

impl RawSettings {
    /// The built-in defaults as written, before validation: what tests and
    /// benches adjust and then validate, as `--config` layers would.
    ///
    /// # Errors
    /// Only if the committed defaults are broken.
    pub fn defaults() -> Result<Self, ConfigError> {
        Ok(Config::builder()
            .add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml))
            .build()?
            .try_deserialize()?)
    }
}

/// The domain's policy from validated layers.
fn policy(raw: &RawSettings, issuer: &str) -> Policy {
    let secs = Duration::seconds;
    let t = &raw.throttle;
    let e = &raw.email;
    Policy {
        issuer: issuer.to_owned(),
        tokens: TokenPolicy {
            access_token_ttl: secs(raw.tokens.access_token_ttl_secs),
            leeway: secs(raw.tokens.leeway_secs),
            refresh_grace: secs(raw.tokens.refresh_grace_secs),
            default_audience: raw.tokens.default_audience.clone(),
            id_token_on_refresh: raw.tokens.id_token_on_refresh,
        },
        sessions: SessionPolicy {
            absolute_ttl: secs(raw.sessions.absolute_ttl_secs),
            idle_ttl: secs(raw.sessions.idle_ttl_secs),
            purge_batch_size: raw.sessions.purge_batch_size,
        },
        browser_sessions: BrowserSessionPolicy {
            absolute_ttl: secs(raw.browser_sessions.absolute_ttl_secs),
            idle_ttl: secs(raw.browser_sessions.idle_ttl_secs),
        },
        signup: SignupPolicy {
            enabled: raw.signup.enabled,
            require_verified_email: raw.signup.require_verified_email,
        },
        throttle: ThrottlePolicy {
            account: Limit {
                max_failures: t.account_max_failures,
                window_secs: t.account_window_secs,
                max_lockout_secs: t.account_max_lockout_secs,
            },
            address: Limit {
                max_failures: t.address_max_failures,
                window_secs: t.address_window_secs,
                max_lockout_secs: t.address_window_secs,
            },
            signup: Limit {
                max_failures: t.signup_max_per_address,
                window_secs: t.signup_window_secs,
                max_lockout_secs: t.signup_window_secs,
            },
        },
        mail: MailPolicy {
            product_name: e.product_name.clone(),
            verify_ttl_secs: e.verify_ttl_secs,
            reset_ttl_secs: e.reset_ttl_secs,
            delivery_timeout: std::time::Duration::from_secs(e.smtp_timeout_secs),
            poll_interval: std::time::Duration::from_millis(e.poll_interval_ms),
            retry_base_secs: e.retry_base_secs,
            retry_max_secs: e.retry_max_secs,
            max_attempts: e.max_attempts,
            max_requests_per_email: e.max_requests_per_email,
            max_requests_per_client: e.max_requests_per_client,
            request_window_secs: e.request_window_secs,
        },
        audit: AuditPolicy {
            retention: (raw.audit.retention_days > 0)
                .then(|| Duration::days(raw.audit.retention_days)),
            purge_batch_size: raw.audit.purge_batch_size,
        },
        clients: ClientPolicy {
            cache_ttl: secs(raw.clients.cache_ttl_secs),
            secret_overlap: secs(raw.clients.secret_overlap_secs),
        },
        dpop: DpopPolicy {
            proof_window_secs: raw.dpop.proof_window_secs,
            require_nonce: raw.dpop.require_nonce,
            nonce_lifetime_secs: raw.dpop.nonce_lifetime_secs,
        },
        client_keys: ClientKeyPolicy {
            jwks_cache: secs(raw.client_keys.jwks_cache_secs),
            jwks_refetch_interval: secs(raw.client_keys.jwks_refetch_interval_secs),
            jwks_fetch_timeout: std::time::Duration::from_millis(
                raw.client_keys.jwks_fetch_timeout_ms,
            ),
        },
        jwks_max_age: secs(raw.keys.jwks_max_age_secs),
    }
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
    fn key_algorithm_is_one_of_three_exact_names() {
        assert_eq!(
            Settings::defaults().expect("defaults").key_spec().algorithm,
            Algorithm::Rs256
        );
        for (name, alg) in [("ES256", Algorithm::Es256), ("EdDSA", Algorithm::EdDsa)] {
            let s =
                Settings::from_toml(&format!("[keys]\nalgorithm = \"{name}\"\n")).expect("valid");
            assert_eq!(s.key_spec().algorithm, alg);
        }
        for bad in ["HS256", "es256", "ES384", ""] {
            let err = Settings::from_toml(&format!("[keys]\nalgorithm = \"{bad}\"\n"))
                .expect_err("invalid");
            assert!(err.to_string().contains("keys.algorithm"), "{err}");
        }
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
        let raw = raw_from(include_str!("../../config/production.example.toml")).expect("parses");
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
    fn signing_is_inline_unless_set_to_pool() {
        let default = Settings::from_toml("").expect("defaults load");
        assert_eq!(default.signing_mode(), SigningMode::Inline);
        let pool = Settings::from_toml("[tokens]\nsigning = \"pool\"\n").expect("pool");
        assert_eq!(pool.signing_mode(), SigningMode::Pool);
        for bad in ["\"Pool\"", "\"batched\"", "\"\"", "1"] {
            let err = Settings::from_toml(&format!("[tokens]\nsigning = {bad}\n")).unwrap_err();
            assert!(err.to_string().contains("signing"), "{bad}: {err}");
        }
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
    fn plain_text_smtp_is_refused_except_to_loopback() {
        let remote = "[email]\ntransport = \"smtp\"\nsmtp_host = \"smtp.example.com\"\nsmtp_tls = \"none\"\n";
        let err = Settings::from_toml(remote).unwrap_err();
        assert!(err.to_string().contains("email.smtp_tls"), "{err}");
        for host in ["127.0.0.1", "localhost", "::1", "[::1]"] {
            let local = format!(
                "[email]\ntransport = \"smtp\"\nsmtp_host = \"{host}\"\nsmtp_tls = \"none\"\n"
            );
            assert!(Settings::from_toml(&local).is_ok(), "{host}");
        }
        let bad_from = Settings::from_toml("[email]\nfrom = \"not an address\"\n").unwrap_err();
        assert!(bad_from.to_string().contains("email.from"), "{bad_from}");
    }

    #[test]
    fn the_smtp_password_is_never_printed() {
        let s =
            Settings::from_toml("[email]\nsmtp_password = \"hunter2-secret\"\n").expect("valid");
        assert!(!format!("{s:?}").contains("hunter2-secret"));
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
            ("server", "forwarded_header"),
            ("clients", "change_poll_ms"),
            ("clients", "cache_ttl_secs"),
            ("clients", "secret_overlap_secs"),
            ("server", "shutdown_timeout_secs"),
            ("server", "workers"),
            ("database", "url"),
            ("database", "max_connections"),
            ("database", "acquire_timeout_secs"),
            ("tokens", "access_token_ttl_secs"),
            ("tokens", "default_audience"),
            ("tokens", "leeway_secs"),
            ("tokens", "refresh_grace_secs"),
            ("tokens", "id_token_on_refresh"),
            ("tokens", "signing"),
            ("sessions", "absolute_ttl_secs"),
            ("sessions", "idle_ttl_secs"),
            ("sessions", "purge_interval_secs"),
            ("sessions", "purge_batch_size"),
            ("keys", "dir"),
            ("keys", "source"),
            ("keys", "kek_file"),
            ("keys", "algorithm"),
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
            ("throttle", "signup_max_per_address"),
            ("throttle", "signup_window_secs"),
            ("signup", "enabled"),
            ("log", "format"),
            ("log", "level"),
            ("demo", "enabled"),
            ("pages", "templates_dir"),
            ("browser_sessions", "absolute_ttl_secs"),
            ("browser_sessions", "idle_ttl_secs"),
            ("dpop", "proof_window_secs"),
            ("dpop", "require_nonce"),
            ("dpop", "nonce_lifetime_secs"),
            ("client_keys", "jwks_cache_secs"),
            ("client_keys", "jwks_refetch_interval_secs"),
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
                r.throttle.signup_window_secs,
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
