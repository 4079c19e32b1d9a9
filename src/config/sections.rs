//! The settings as written in the layers, one struct per `[section]`.

use super::*;

/// Every setting, as written in the layers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub tokens: TokenSettings,
    pub sessions: SessionSettings,
    pub keys: KeySettings,
    pub passwords: PasswordSettings,
    pub throttle: ThrottleSettings,
    pub signup: SignupSettings,
    pub email: EmailSettings,
    pub log: LogSettings,
    pub demo: DemoSettings,
    pub metrics: MetricsSettings,
    pub audit: AuditSettings,
    pub pages: PageSettings,
    pub browser_sessions: BrowserSessionSettings,
    pub clients: ClientSettings,
    pub dpop: DpopSettings,
    pub client_keys: ClientKeySettings,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// The address the main listener binds; `/metrics` may have a listener
    /// of its own (`metrics.listen`).
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
    /// Connections in the store's pool; a request waits up to
    /// `acquire_timeout_secs` for a free one.
    pub max_connections: u32,
    /// Seconds to wait for a pooled connection before answering 503.
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
    /// Clock skew tolerated when checking `exp`, `nbf` and `iat`, in seconds.
    pub leeway_secs: i64,
    /// Seconds after a rotation during which the replaced refresh token,
    /// presented again by the same client, gets the same new token instead
    /// of counting as reuse; 0 makes every second use reuse.
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
    /// A refresh-token session ends this many seconds after its login,
    /// however often it is refreshed.
    pub absolute_ttl_secs: i64,
    /// A session not refreshed for this many seconds ends.
    pub idle_ttl_secs: i64,
    /// Seconds between runs of the background purge of ended sessions, old
    /// audit events and settled mail.
    pub purge_interval_secs: u64,
    /// The most rows one purge statement deletes (sessions, login counters,
    /// used JWT ids, email tokens, mail), so no purge holds locks long.
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
    /// RSA modulus size of new RS256 keys: 2048, 3072 or 4096.
    pub rsa_bits: u32,
    /// `Cache-Control: max-age` of the JWKS, in seconds, shortened when the
    /// key set changes sooner; `keys rotate` publishes a new key at least
    /// twice this long before it signs.
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
    /// Milliseconds a login waits for a hashing slot before it is answered
    /// 503 with `Retry-After`.
    pub queue_timeout_ms: u64,
}

/// `[throttle]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleSettings {
    /// Failed logins for one typed-in email, known or not, within
    /// `account_window_secs` that lock it.
    pub account_max_failures: i64,
    /// Seconds the account's count runs from its first failure; also the
    /// first lockout's length.
    pub account_window_secs: i64,
    /// Failed logins from one client address (IPv6 per /64) within
    /// `address_window_secs` that lock it.
    pub address_max_failures: i64,
    /// Seconds the address's count runs from its first failure; also the
    /// length of every address lockout, which never doubles.
    pub address_window_secs: i64,
    /// Cap on an account lockout, which doubles with each lockout in a row.
    pub account_max_lockout_secs: i64,
    /// Sign-ups per address per window (each one costs a hash).
    pub signup_max_per_address: i64,
    /// Seconds `signup_max_per_address` counts over.
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
    /// `log` writes each message, links included, to the log (development);
    /// `smtp` delivers through the server below.
    pub transport: MailTransport,
    /// The SMTP server; read only with `transport = "smtp"`, and then
    /// required.
    pub smtp_host: String,
    /// The SMTP server's port: usually 587 with `starttls`, 465 with `tls`.
    pub smtp_port: u16,
    /// `starttls`, `tls` (implicit TLS), or `none`, which is allowed only
    /// when `smtp_host` is a loopback address.
    pub smtp_tls: SmtpTls,
    /// SMTP AUTH user; empty for none.
    pub smtp_username: String,
    /// Used only with a username, and never printed; best given as
    /// `LATCHKEY__EMAIL__SMTP_PASSWORD` rather than in a file.
    pub smtp_password: secrecy::SecretString,
    /// Seconds one delivery attempt may take before it counts as a
    /// transient failure; a claimed batch's lease is sized from it.
    pub smtp_timeout_secs: u64,
    /// The From of every message, such as `Name <no-reply@example.com>`.
    pub from: String,
    /// The service's name in mail subjects and bodies (`{{product}}`).
    pub product_name: String,
    /// A folder whose files (`verify_email.txt`, `reset_password.html`, ...)
    /// replace the built-in mail bodies of the same name; a missing file or
    /// folder keeps the built-in ones.
    pub templates_dir: PathBuf,
    /// Seconds a verification link works.
    pub verify_ttl_secs: i64,
    /// Seconds a reset link works.
    pub reset_ttl_secs: i64,
    /// How often, in milliseconds, each instance looks for mail queued
    /// elsewhere or due for a retry; reset and verification requests wait
    /// for this poll.
    pub poll_interval_ms: u64,
    /// Seconds before the first retry of a failed delivery; each further
    /// retry waits twice as long.
    pub retry_base_secs: i64,
    /// The longest wait between retries, in seconds.
    pub retry_max_secs: i64,
    /// Attempts before a message is given up.
    pub max_attempts: i64,
    /// Mail requests per typed-in address per window: beyond it nothing is
    /// sent, but the answer is the same, so it reveals no account.
    pub max_requests_per_email: i64,
    /// Mail requests per client address per window: beyond it, 429.
    pub max_requests_per_client: i64,
    /// Seconds over which both request limits count.
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
    /// Serve the cookie-mode demo page at `/demo/` and create its client at
    /// start-up; `config/production.example.toml` turns it off.
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
    /// The most audit rows one purge statement deletes.
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
