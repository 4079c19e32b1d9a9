//! What the rules are told to enforce: lifetimes, limits and switches. The
//! configuration layer checks the operator's values and hands them down as a
//! `Policy`; nothing in the domain reads configuration itself, so a rule's
//! inputs are typed values whose ranges were already checked.

use std::time::Duration as StdDuration;

use chrono::Duration;

use super::throttle::Limit;

/// Everything the domain's rules are parameterised by.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The issuer URL without a trailing slash: `iss` of every token, the
    /// base of every link and endpoint URL, and a DPoP proof's `htu` base.
    pub issuer: String,
    pub tokens: TokenPolicy,
    pub sessions: SessionPolicy,
    pub browser_sessions: BrowserSessionPolicy,
    pub signup: SignupPolicy,
    pub throttle: ThrottlePolicy,
    pub mail: MailPolicy,
    pub audit: AuditPolicy,
    pub clients: ClientPolicy,
    pub dpop: DpopPolicy,
    pub client_keys: ClientKeyPolicy,
    /// How long JWKS responses may be cached (`Cache-Control: max-age`);
    /// keys are published at least twice this long before they sign.
    pub jwks_max_age: Duration,
}

/// Access tokens and refresh rotation.
#[derive(Debug, Clone)]
pub struct TokenPolicy {
    /// Lifetime of access tokens and id_tokens.
    pub access_token_ttl: Duration,
    /// Clock skew tolerated when checking `exp`, `nbf` and `iat`, here and
    /// in remembered proof ids.
    pub leeway: Duration,
    /// How long after a rotation the previous refresh token may be replayed
    /// for the same answer instead of counting as reuse.
    pub refresh_grace: Duration,
    /// `aud` of tokens for clients that name no audience of their own.
    pub default_audience: String,
    /// Whether a refresh with `openid` also returns a new id_token (OIDC
    /// Core §12.2 allows leaving it out).
    pub id_token_on_refresh: bool,
}

/// Refresh-token sessions.
#[derive(Debug, Clone)]
pub struct SessionPolicy {
    /// A session ends this long after its login, however often refreshed.
    pub absolute_ttl: Duration,
    /// A session ends when not refreshed for this long.
    pub idle_ttl: Duration,
    /// Rows deleted per statement by the purges, so none holds locks long.
    pub purge_batch_size: i64,
}

/// Logins at latchkey's own pages.
#[derive(Debug, Clone)]
pub struct BrowserSessionPolicy {
    /// A browser session ends this long after the password was entered.
    pub absolute_ttl: Duration,
    /// A browser session ends when unused for this long.
    pub idle_ttl: Duration,
}

/// Who may create an account and log in with a password.
#[derive(Debug, Clone, Copy)]
pub struct SignupPolicy {
    /// Whether anyone may create an account (`POST /v1/users`).
    pub enabled: bool,
    /// Refuse password logins until the address is verified.
    pub require_verified_email: bool,
}

/// Failed-login and sign-up limits (see `throttle`).
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    /// Per account (typed-in email); lockouts double up to its cap.
    pub account: Limit,
    /// Per client address (IPv6 per /64); one window per lockout.
    pub address: Limit,
    /// Sign-ups per client address, each of which costs a hash.
    pub signup: Limit,
}

/// Verification and reset mail, and the outbox that sends it.
#[derive(Debug, Clone)]
pub struct MailPolicy {
    /// The service's name, as the mail templates show it.
    pub product_name: String,
    /// How long a verification link works, in seconds.
    pub verify_ttl_secs: i64,
    /// How long a reset link works, in seconds.
    pub reset_ttl_secs: i64,
    /// One delivery attempt gives up after this long; a claimed batch's
    /// lease is sized from it.
    pub delivery_timeout: StdDuration,
    /// How often each instance looks for mail queued elsewhere or due for
    /// a retry.
    pub poll_interval: StdDuration,
    /// The first retry waits this many seconds; each further one doubles.
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
    /// The window both request limits count in, in seconds.
    pub request_window_secs: i64,
}

/// The audit log's retention.
#[derive(Debug, Clone, Copy)]
pub struct AuditPolicy {
    /// Events older than this are purged; `None` keeps them forever.
    pub retention: Option<Duration>,
    /// Rows deleted per statement, so no purge holds locks long.
    pub purge_batch_size: i64,
}

/// How long a cached client record, and a rotated-out secret, stay in use.
#[derive(Debug, Clone, Copy)]
pub struct ClientPolicy {
    /// The longest a cached client is used without reading it again, even
    /// while the change poll cannot reach the store.
    pub cache_ttl: Duration,
    /// How long a rotated-out client secret keeps working unless the
    /// rotation says otherwise.
    pub secret_overlap: Duration,
}

/// Proof-of-possession (RFC 9449).
#[derive(Debug, Clone, Copy)]
pub struct DpopPolicy {
    /// A proof's `iat` must lie within this many seconds of now, either
    /// side.
    pub proof_window_secs: i64,
    /// Require a server nonce (`DPoP-Nonce`, RFC 9449 §8) in every proof.
    pub require_nonce: bool,
    /// A nonce stays acceptable for at least this many seconds and at most
    /// twice as long.
    pub nonce_lifetime_secs: i64,
}

/// The public keys of `private_key_jwt` clients registered by `jwks_uri`.
#[derive(Debug, Clone, Copy)]
pub struct ClientKeyPolicy {
    /// A fetched JWKS is used this long before it is fetched again.
    pub jwks_cache: Duration,
    /// An unknown `kid` refetches a JWKS at most once per this long per URL.
    pub jwks_refetch_interval: Duration,
    /// The whole fetch (connect, TLS, response) gives up after this long.
    pub jwks_fetch_timeout: StdDuration,
}
