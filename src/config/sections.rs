//! The settings as written in the layers, one struct per `[section]`.

use super::*;

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
    /// `[email]`
    pub email: EmailSettings,
    /// `[log]`
    pub log: LogSettings,
    /// `[demo]`
    pub demo: DemoSettings,
    /// `[metrics]`
    pub metrics: MetricsSettings,
    /// `[audit]`
    pub audit: AuditSettings,
    /// `[pages]`
    pub pages: PageSettings,
    /// `[browser_sessions]`
    pub browser_sessions: BrowserSessionSettings,
    /// `[clients]`
    pub clients: ClientSettings,
    /// `[dpop]`
    pub dpop: DpopSettings,
    /// `[client_keys]`
    pub client_keys: ClientKeySettings,
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
    /// Proxies whose forwarding header is believed.
    pub trusted_proxies: Vec<String>,
    /// Which header those proxies write: `x-forwarded-for` or `forwarded`.
    pub forwarded_header: String,
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
    /// Whether a refresh with `openid` also returns a new id_token (OIDC
    /// Core §12.2 allows leaving it out).
    pub id_token_on_refresh: bool,
    /// Where signatures are computed: `inline` (on the request's worker)
    /// or `pool` (dedicated threads, one per core).
    pub signing: String,
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
    /// The keys folder (folder mode; `keys import` reads one).
    pub dir: PathBuf,
    /// Where keys live: `folder` or `store`.
    pub source: String,
    /// File holding the key-encryption key(s), base64url (store mode).
    pub kek_file: PathBuf,
    /// The key-encryption key(s), base64url, comma-separated; the first
    /// seals. Wins over `kek_file` when not empty.
    pub kek: secrecy::SecretString,
    /// Algorithm of new keys: `RS256`, `ES256` or `EdDSA`.
    pub algorithm: String,
    /// RSA modulus size for new keys.
    pub rsa_bits: u32,
    /// JWKS Cache-Control max-age.
    pub jwks_max_age_secs: i64,
    /// How often the keys folder or the store's key version is re-read.
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
    /// Sign-ups per address per window (each one costs a hash).
    pub signup_max_per_address: i64,
    /// Sign-up window.
    pub signup_window_secs: i64,
}

/// `[signup]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignupSettings {
    /// Whether `POST /v1/users` is open.
    pub enabled: bool,
    /// Refuse password logins of users whose address is not verified.
    pub require_verified_email: bool,
}

/// `[email]`
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    /// How mail leaves.
    pub transport: MailTransport,
    /// SMTP server host.
    pub smtp_host: String,
    /// SMTP server port.
    pub smtp_port: u16,
    /// How the SMTP connection is protected.
    pub smtp_tls: SmtpTls,
    /// SMTP AUTH user; empty for none.
    pub smtp_username: String,
    /// SMTP AUTH password.
    pub smtp_password: secrecy::SecretString,
    /// Seconds one delivery may take.
    pub smtp_timeout_secs: u64,
    /// The From header.
    pub from: String,
    /// The service's name in mail.
    pub product_name: String,
    /// Folder of template overrides.
    pub templates_dir: PathBuf,
    /// Verification link lifetime.
    pub verify_ttl_secs: i64,
    /// Reset link lifetime.
    pub reset_ttl_secs: i64,
    /// Outbox poll period.
    pub poll_interval_ms: u64,
    /// First retry delay.
    pub retry_base_secs: i64,
    /// Longest retry delay.
    pub retry_max_secs: i64,
    /// Attempts before a message is given up.
    pub max_attempts: i64,
    /// Mail requests per typed-in address per window.
    pub max_requests_per_email: i64,
    /// Mail requests per client address per window.
    pub max_requests_per_client: i64,
    /// The request-counting window.
    pub request_window_secs: i64,
}

impl std::fmt::Debug for EmailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSettings")
            .field("transport", &self.transport)
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("smtp_tls", &self.smtp_tls)
            .field("smtp_username", &self.smtp_username)
            .field("smtp_password", &"[redacted]")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
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

/// `[clients]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSettings {
    /// How often each instance asks the store whether any client changed.
    pub change_poll_ms: u64,
    /// The longest a cached client is used without being read again, even
    /// when the change poll cannot reach the store.
    pub cache_ttl_secs: i64,
    /// How long a rotated-out client secret keeps working by default.
    pub secret_overlap_secs: i64,
}

/// `[pages]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageSettings {
    /// A folder whose files replace the built-in page templates and
    /// stylesheet of the same name; a missing folder means none replaced.
    pub templates_dir: String,
    /// How the consent page words each scope; a scope not listed is shown
    /// by its name.
    pub scope_descriptions: std::collections::BTreeMap<String, String>,
}

/// `[browser_sessions]`: the login at latchkey's own page.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrowserSessionSettings {
    /// A browser session ends this long after the password was entered.
    pub absolute_ttl_secs: i64,
    /// A browser session ends when unused for this long.
    pub idle_ttl_secs: i64,
}

/// `[dpop]`: proof-of-possession for tokens (RFC 9449).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpopSettings {
    /// A proof's `iat` must lie within this many seconds of now, either side.
    pub proof_window_secs: i64,
    /// Require a server nonce (`DPoP-Nonce`, RFC 9449 §8) in every proof.
    pub require_nonce: bool,
    /// How long an issued nonce stays acceptable (at least this, at most
    /// twice this).
    pub nonce_lifetime_secs: i64,
}

/// `[client_keys]`: the public keys of `private_key_jwt` clients registered
/// with a `jwks_uri` (RFC 7523 §2.2).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientKeySettings {
    /// A fetched JWKS is used this long before it is fetched again.
    pub jwks_cache_secs: i64,
    /// An assertion naming a `kid` the cached JWKS lacks fetches it again,
    /// at most once per this many seconds per URL (a client rotating its
    /// keys is picked up; garbage `kid`s cannot make latchkey hammer it).
    pub jwks_refetch_interval_secs: i64,
    /// The whole fetch (connect, TLS, response) gives up after this long.
    pub jwks_fetch_timeout_ms: u64,
}
