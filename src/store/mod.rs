//! The storage seam: an object-safe `Store` trait that speaks in domain
//! records, with `SqliteStore` and `PgStore` behind it. Anything two requests
//! or two instances could race on (rotation, reuse revocation, throttling
//! counters) is one method that the database decides.

pub mod metered;
pub mod postgres;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::types::{ClientId, ClientKind, SessionId, UserId};

/// A store failure, with only the variants callers branch on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist.
    #[error("not found")]
    NotFound,
    /// A unique constraint refused the write.
    #[error("conflict")]
    Conflict,
    /// The database cannot be reached (pool timeout, lost connection).
    #[error("store unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// Anything else the database said.
    #[error("store error")]
    Backend(#[source] sqlx::Error),
    /// Migrations failed.
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be read back.
    #[error("corrupt row: {0}")]
    Corrupt(&'static str),
}

impl StoreError {
    /// Maps a sqlx error the same way for both backends.
    pub fn from_sqlx(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => Self::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict,
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => Self::Unavailable(e),
            sqlx::Error::Database(db) if is_unavailable_code(db.code().as_deref()) => {
                Self::Unavailable(e)
            }
            _ => Self::Backend(e),
        }
    }
}

/// Codes that mean "try again later": PostgreSQL's connection-exception class
/// (08), admin shutdown (57P01-57P03), and SQLite's BUSY/LOCKED, CANTOPEN,
/// IOERR and READONLY families (the file went away or cannot be written).
fn is_unavailable_code(code: Option<&str>) -> bool {
    let Some(code) = code else { return false };
    if code.starts_with("08") || code.starts_with("57P") {
        return true;
    }
    matches!(
        code.parse::<i32>().map(|c| c & 0xff),
        Ok(5 | 6 | 8 | 10 | 14)
    )
}

/// A user account. `Debug` omits the password hash (an offline-guessing
/// target).
#[derive(Clone)]
pub struct UserRecord {
    /// Opaque id, the `sub` of their tokens.
    pub id: UserId,
    /// Normalised email.
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Disabled users cannot log in or refresh.
    pub disabled: bool,
    /// When they signed up.
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("password_hash", &"[redacted]")
            .field("disabled", &self.disabled)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A registered client.
#[derive(Debug, Clone)]
pub struct ClientRecord {
    /// `client_id`.
    pub id: ClientId,
    /// A display name.
    pub name: String,
    /// Public or confidential.
    pub kind: ClientKind,
    /// SHA-256 of the client secret (confidential clients only).
    pub secret_hash: Option<Vec<u8>>,
    /// Allowed grant types (wire names).
    pub grants: Vec<String>,
    /// Allowed scopes.
    pub scopes: Vec<String>,
    /// `aud` of its access tokens; the default audience when `None`.
    pub audience: Option<String>,
    /// Tokens in cookies instead of the body.
    pub cookie_mode: bool,
    /// Origins allowed for CORS and cookie-authenticated requests.
    pub origins: Vec<String>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

/// A session: one login and its refresh-token chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// `sid`.
    pub id: SessionId,
    /// Whose session.
    pub user_id: UserId,
    /// The client it was started by; its refresh tokens are bound to it.
    pub client_id: ClientId,
    /// The scope granted at login.
    pub scope: String,
    /// When the password was entered (`auth_time`).
    pub created_at: DateTime<Utc>,
    /// Last refresh (or the login).
    pub last_used_at: DateTime<Utc>,
    /// Absolute end.
    pub expires_at: DateTime<Utc>,
    /// Generation of the newest refresh token.
    pub generation: i64,
    /// When the newest refresh token was issued.
    pub rotated_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Why it was revoked.
    pub revoked_reason: Option<String>,
}

/// What verification needs to know about a token's session: one indexed
/// lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionStatus {
    /// The session was revoked.
    pub revoked: bool,
    /// Its user is disabled.
    pub user_disabled: bool,
}

/// A security event. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// When.
    pub at: DateTime<Utc>,
    /// What happened, e.g. `refresh_reuse`, `login_failed`.
    pub kind: String,
    /// The user concerned.
    pub user_id: Option<UserId>,
    /// The client concerned.
    pub client_id: Option<ClientId>,
    /// The session concerned.
    pub session_id: Option<SessionId>,
    /// Who or what caused it, or why.
    pub reason: Option<String>,
    /// The client address.
    pub address: Option<String>,
}

impl AuditEvent {
    /// An event of `kind` at `at` with nothing else filled in.
    pub fn new(kind: &str, at: DateTime<Utc>) -> Self {
        Self {
            at,
            kind: kind.to_owned(),
            user_id: None,
            client_id: None,
            session_id: None,
            reason: None,
            address: None,
        }
    }
}

/// A failed-login counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureCount {
    /// Failures in the current window.
    pub failures: i64,
    /// When the current window started.
    pub window_started_at: DateTime<Utc>,
    /// Lockouts in a row so far (the exponent of the next lockout's length).
    pub lockouts: i64,
    /// Until when logins are locked, if the key was ever locked.
    pub locked_until: Option<DateTime<Utc>>,
}

/// A lockout to apply once a counter has reached its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    /// The limit the counter must still be at or beyond.
    pub max_failures: i64,
    /// The `lockouts` value the caller read; the lock applies only if it is
    /// unchanged, so of concurrent callers exactly one locks.
    pub seen_lockouts: i64,
    /// The new `lockouts` value.
    pub lockouts: i64,
    /// When the lock (and a fresh failure window) starts.
    pub now: DateTime<Utc>,
    /// When the lock ends.
    pub until: DateTime<Utc>,
}

/// How busy the connection pool is, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// Connections open (idle or in use).
    pub size: u32,
    /// Open connections not in use.
    pub idle: u32,
    /// The most the pool opens.
    pub max: u32,
}

/// The storage seam. Object-safe; services hold an `Arc<dyn Store>`.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Applies pending migrations.
    ///
    /// # Errors
    /// A migration failed.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Checks the database answers.
    ///
    /// # Errors
    /// `Unavailable` when it does not.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Closes the pool.
    async fn close(&self);

    /// The pool's occupancy right now (no query).
    fn pool_stats(&self) -> PoolStats;

    /// Adds a user.
    ///
    /// # Errors
    /// `Conflict` when the email is taken.
    async fn insert_user(&self, user: &UserRecord) -> Result<(), StoreError>;

    /// The user with this normalised email.
    ///
    /// # Errors
    /// Backend failures.
    async fn find_user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError>;

    /// The user with this id.
    ///
    /// # Errors
    /// Backend failures.
    async fn find_user(&self, id: UserId) -> Result<Option<UserRecord>, StoreError>;

    /// Enables or disables a user; disabling also revokes every session of
    /// theirs, in the same transaction, and writes `audit`.
    ///
    /// # Errors
    /// `NotFound` for an unknown user.
    async fn set_user_disabled(
        &self,
        id: UserId,
        disabled: bool,
        audit: &AuditEvent,
    ) -> Result<(), StoreError>;

    /// Replaces a password hash and revokes every session of the user but
    /// `keep`, in one transaction, and writes `audit`.
    ///
    /// # Errors
    /// `NotFound` for an unknown user.
    async fn update_password(
        &self,
        id: UserId,
        password_hash: &str,
        keep: Option<SessionId>,
        audit: &AuditEvent,
    ) -> Result<u64, StoreError>;

    /// Registers a client.
    ///
    /// # Errors
    /// `Conflict` on a duplicate id.
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError>;

    /// The client with this id.
    ///
    /// # Errors
    /// Backend failures.
    async fn find_client(&self, id: ClientId) -> Result<Option<ClientRecord>, StoreError>;

    /// Every client that registered at least one browser origin (for CORS
    /// and cookie mode). Clients never change, so callers may cache this.
    ///
    /// # Errors
    /// Backend failures.
    async fn list_browser_clients(&self) -> Result<Vec<ClientRecord>, StoreError>;

    /// Starts a session.
    ///
    /// # Errors
    /// Backend failures.
    async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError>;

    /// The session with this id.
    ///
    /// # Errors
    /// Backend failures.
    async fn find_session(&self, id: SessionId) -> Result<Option<SessionRecord>, StoreError>;

    /// Rotates the refresh token of `id` from `generation` to `generation +
    /// 1` in one conditional `UPDATE`: only when that generation is still the
    /// newest, the session belongs to `client_id`, is not revoked, has not
    /// reached `expires_at` and was used after `idle_cutoff`. Of any number of
    /// concurrent callers with the same generation, exactly one gets
    /// `Some(updated session)`.
    ///
    /// # Errors
    /// Backend failures.
    async fn rotate_session(
        &self,
        id: SessionId,
        client_id: ClientId,
        generation: i64,
        now: DateTime<Utc>,
        idle_cutoff: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>, StoreError>;

    /// Revokes a session that is not yet revoked and, only if this call
    /// revoked it, writes `audit` in the same transaction. Returns whether it
    /// did.
    ///
    /// # Errors
    /// Backend failures.
    async fn revoke_session(
        &self,
        id: SessionId,
        reason: &str,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError>;

    /// Revokes every live session of `user` except `except`; writes `audit`
    /// in the same transaction. Returns how many.
    ///
    /// # Errors
    /// Backend failures.
    async fn revoke_user_sessions(
        &self,
        user: UserId,
        except: Option<SessionId>,
        reason: &str,
        audit: &AuditEvent,
    ) -> Result<u64, StoreError>;

    /// The user's sessions that are neither revoked nor expired, newest first.
    ///
    /// # Errors
    /// Backend failures.
    async fn list_user_sessions(
        &self,
        user: UserId,
        now: DateTime<Utc>,
        idle_cutoff: DateTime<Utc>,
    ) -> Result<Vec<SessionRecord>, StoreError>;

    /// Whether a session is revoked or its user disabled: one lookup by
    /// primary key. `None` when the session is unknown (or purged).
    ///
    /// # Errors
    /// Backend failures.
    async fn session_status(&self, id: SessionId) -> Result<Option<SessionStatus>, StoreError>;

    /// Deletes up to `batch` sessions that ended (absolute expiry, idle
    /// timeout, or revoked before `revoked_before`). Returns how many.
    ///
    /// # Errors
    /// Backend failures.
    async fn purge_sessions(
        &self,
        now: DateTime<Utc>,
        idle_cutoff: DateTime<Utc>,
        revoked_before: DateTime<Utc>,
        batch: i64,
    ) -> Result<u64, StoreError>;

    /// Appends an audit event.
    ///
    /// # Errors
    /// Backend failures.
    async fn insert_audit(&self, event: &AuditEvent) -> Result<(), StoreError>;

    /// Audit events, newest first, optionally for one user and since a time.
    ///
    /// # Errors
    /// Backend failures.
    async fn list_audit(
        &self,
        user: Option<UserId>,
        since: Option<DateTime<Utc>>,
        limit: i64,
    ) -> Result<Vec<AuditEvent>, StoreError>;

    /// Deletes up to `batch` audit events older than `before`, oldest first.
    /// Returns how many.
    ///
    /// # Errors
    /// Backend failures.
    async fn purge_audit(&self, before: DateTime<Utc>, batch: i64) -> Result<u64, StoreError>;

    /// Counts one failed login for `key` in a window of `window_secs` that
    /// starts at the first failure; an expired window restarts at `now`. One
    /// atomic upsert, so concurrent failures on several instances all count.
    ///
    /// # Errors
    /// Backend failures.
    async fn record_login_failure(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window_secs: i64,
    ) -> Result<FailureCount, StoreError>;

    /// The failure counter of `key`, if any.
    ///
    /// # Errors
    /// Backend failures.
    async fn login_failures(&self, key: &str) -> Result<Option<FailureCount>, StoreError>;

    /// Locks `key` until `lock.until` with one conditional `UPDATE`: only
    /// while its counter still holds `lock.max_failures` or more failures and
    /// `lock.seen_lockouts` lockouts. The failures restart at zero in a window
    /// that starts at `lock.now`. Returns whether this call locked it.
    ///
    /// # Errors
    /// Backend failures.
    async fn lock_login_failures(&self, key: &str, lock: &Lockout) -> Result<bool, StoreError>;

    /// Forgets the failures of `key` (after a successful login).
    ///
    /// # Errors
    /// Backend failures.
    async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError>;
}

/// Opens the store named by `url`: SQLite (creating the file and its folder)
/// or PostgreSQL.
///
/// # Errors
/// The URL is invalid or the database cannot be opened.
pub async fn connect(
    url: &str,
    max_connections: u32,
    acquire_timeout: std::time::Duration,
) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(
            sqlite::SqliteStore::connect(url, max_connections, acquire_timeout).await?,
        ))
    } else {
        Ok(Arc::new(
            postgres::PgStore::connect(url, max_connections, acquire_timeout).await?,
        ))
    }
}

/// Splits a space-separated list column.
pub(crate) fn split_list(s: &str) -> Vec<String> {
    s.split(' ')
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}
