//! The storage seam: object-safe traits that speak in domain records, one
//! per concern (users, clients, sessions, audit, throttling) and `Store`
//! over all of them, with `SqliteStore` and `PgStore` behind it. Anything two
//! requests or two instances could race on (rotation, reuse revocation,
//! throttling counters) is one method that the database decides.

pub mod metered;
pub mod postgres;
mod records;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use self::records::KeySource;
pub use self::records::{
    AuditEvent, AuditKind, AuthorizationCodeRecord, BrowserSessionRecord, ClaimedMail,
    ClientRecord, ConsentRecord, EmailTokenRecord, FailureCount, Lockout, MailMessage,
    OutboxCounts, PageAfter, PoolStats, RevokeReason, RotatedSession, SealedSecret, SessionRecord,
    SessionStatus, SigningKeyRecord, StoreError, TokenPurpose, UserRecord,
};
use crate::ids::{ClientId, SessionId, UserId};

/// The storage seam: every concern, plus the pool. Object-safe; services
/// hold an `Arc<dyn Store>`, through which the concern traits' methods are
/// callable without importing them.
#[async_trait]
pub trait Store:
    UserStore
    + ClientStore
    + SessionStore
    + AuditStore
    + ThrottleStore
    + RecoveryStore
    + OutboxStore
    + AuthorizationStore
    + ReplayStore
    + KeyStore
    + Send
    + Sync
    + std::fmt::Debug
{
    /// Applies the embedded migrations the database has not run yet.
    /// `build_services` runs it before anything else touches the store.
    ///
    /// # Errors
    /// A migration failed.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Checks the database answers.
    ///
    /// # Errors
    /// `Unavailable` when it does not.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Closes the pool: later calls fail as `Unavailable`, and this returns
    /// once the connections in use have been given back.
    async fn close(&self);

    /// The pool's occupancy right now (no query).
    fn pool_stats(&self) -> PoolStats;
}

/// User accounts. Whatever ends a user's sessions wholesale bumps their
/// credentials version in the same transaction (see `start_session`).
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Adds a user as given: the caller has normalised the email and hashed
    /// the password.
    ///
    /// # Errors
    /// `Conflict` when the email is taken.
    async fn insert_user(&self, user: &UserRecord) -> Result<(), StoreError>;

    /// The user with this normalised email.
    ///
    /// # Errors
    /// Backend failures.
    async fn find_user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError>;

    /// The user with this id, disabled or not.
    ///
    /// # Errors
    /// Backend failures.
    async fn find_user(&self, id: UserId) -> Result<Option<UserRecord>, StoreError>;

    /// Up to `limit` users ordered by `(created_at, id)`, after `after`
    /// (keyset paging: a user added or removed between pages shifts
    /// nothing), only those whose normalised email starts with
    /// `email_prefix` when given (matched literally: `%` and `_` are no
    /// wildcards).
    ///
    /// # Errors
    /// Backend failures.
    async fn page_users(
        &self,
        after: Option<PageAfter<UserId>>,
        email_prefix: Option<&str>,
        limit: i64,
    ) -> Result<Vec<UserRecord>, StoreError>;

    /// Enables or disables a user; disabling also bumps the user's
    /// credentials version and revokes every session of theirs, in the same
    /// transaction, and writes `audit`. A login that read the user before
    /// cannot start a session afterwards (see `start_session`).
    ///
    /// # Errors
    /// `NotFound` for an unknown user.
    async fn set_user_disabled(
        &self,
        id: UserId,
        disabled: bool,
        audit: &AuditEvent,
    ) -> Result<(), StoreError>;

    /// Replaces a password hash, bumps the user's credentials version and
    /// revokes every session of the user but `keep`, in one transaction, and
    /// writes `audit`. With `expected_version`, only while the user's
    /// credentials version is still that one (the caller verified the
    /// password it read with that version); a password reset passes `None`
    /// and `keep: None`. Returns how many sessions it revoked.
    ///
    /// # Errors
    /// `NotFound` for an unknown user; `Conflict` when the credentials version
    /// moved on.
    async fn update_password(
        &self,
        id: UserId,
        password_hash: &str,
        expected_version: Option<i64>,
        keep: Option<SessionId>,
        audit: &AuditEvent,
    ) -> Result<u64, StoreError>;

    /// Replaces the password hash with the same password hashed under
    /// stronger parameters, only while the stored hash is still `old_hash`
    /// (a password changed meanwhile wins). The credentials version stays:
    /// the password did not change, so no session ends. Returns whether it
    /// replaced the hash.
    ///
    /// # Errors
    /// Backend failures.
    async fn upgrade_password_hash(
        &self,
        id: UserId,
        old_hash: &str,
        new_hash: &str,
    ) -> Result<bool, StoreError>;
}

/// Registered clients. A trigger moves `clients_version` with every insert,
/// update and delete, in the changing transaction.
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// Stores a client as given, its secret already reduced to a digest.
    ///
    /// # Errors
    /// `Conflict` on a duplicate id.
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError>;

    /// The client with this id, disabled or not.
    ///
    /// # Errors
    /// Backend failures.
    async fn find_client(&self, id: ClientId) -> Result<Option<ClientRecord>, StoreError>;

    /// Every enabled client that registered at least one browser origin (for
    /// CORS and cookie mode). Callers may cache this until `clients_version`
    /// moves.
    ///
    /// # Errors
    /// Backend failures.
    async fn list_browser_clients(&self) -> Result<Vec<ClientRecord>, StoreError>;

    /// A number that moves whenever any client is added, changed or removed
    /// (moved by the database itself, in the changing transaction). Cheap:
    /// one row, read by every instance every few seconds.
    ///
    /// # Errors
    /// Backend failures.
    async fn clients_version(&self) -> Result<i64, StoreError>;

    /// Up to `limit` clients (disabled ones too), ordered by id, after
    /// `after`: keyset paging, so a client added or removed between pages
    /// shifts nothing.
    ///
    /// # Errors
    /// Backend failures.
    async fn list_clients(
        &self,
        after: Option<ClientId>,
        limit: i64,
    ) -> Result<Vec<ClientRecord>, StoreError>;

    /// Up to `limit` clients (disabled ones too) ordered by `(created_at,
    /// id)`, after `after`: keyset paging in the order the admin API shows.
    ///
    /// # Errors
    /// Backend failures.
    async fn page_clients(
        &self,
        after: Option<PageAfter<ClientId>>,
        limit: i64,
    ) -> Result<Vec<ClientRecord>, StoreError>;

    /// Replaces a client's settings (everything but its id, kind, secrets,
    /// creation and disabled times and admin flag) and writes `audit`, in one
    /// transaction.
    ///
    /// # Errors
    /// `NotFound` when there is no such client.
    async fn update_client(
        &self,
        client: &ClientRecord,
        audit: &AuditEvent,
    ) -> Result<(), StoreError>;

    /// Suspends (`Some(at)`) or re-enables (`None`) a client and writes
    /// `audit`, in one transaction. Its sessions are kept: enabling undoes a
    /// suspension.
    ///
    /// # Errors
    /// `NotFound` when there is no such client.
    async fn set_client_disabled(
        &self,
        id: ClientId,
        disabled_at: Option<DateTime<Utc>>,
        audit: &AuditEvent,
    ) -> Result<(), StoreError>;

    /// Removes a client and, in the same transaction, every session,
    /// authorization code and consent of it (so every refresh token and
    /// access token of it is dead), and writes `audit` with the number of
    /// live sessions that ended, which it returns.
    ///
    /// # Errors
    /// `NotFound` when there is no such client.
    async fn delete_client(&self, id: ClientId, audit: &AuditEvent) -> Result<u64, StoreError>;

    /// Gives a confidential client a new secret digest and writes `audit`,
    /// in one statement's transaction. With `previous_until`, the digest it
    /// replaces stays valid until then (the rotation overlap); without, it
    /// ends at once. An older previous secret ends either way.
    ///
    /// # Errors
    /// `NotFound` when there is no such confidential client.
    async fn update_client_secret(
        &self,
        id: ClientId,
        secret_hash: &[u8],
        previous_until: Option<DateTime<Utc>>,
        audit: &AuditEvent,
    ) -> Result<(), StoreError>;
}

/// Sessions and their refresh-token chains. Rotation and revocation are
/// each one conditional statement the database decides.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Starts a session, in one statement, only while its user is enabled and
    /// still at `credentials_version` (the version read with the password
    /// hash the login verified), and its client still exists and is enabled
    /// (a login racing a client delete gets a clean refusal, not a foreign
    /// key failure). Everything that ends a user's sessions
    /// wholesale bumps that version in the transaction that revokes them, so
    /// a login in flight either committed its session before (and it was
    /// revoked) or is refused here. Returns whether the session started.
    ///
    /// # Errors
    /// Backend failures.
    async fn start_session(
        &self,
        session: &SessionRecord,
        credentials_version: i64,
    ) -> Result<bool, StoreError>;

    /// The session with this id, revoked or expired ones too until they are
    /// purged.
    ///
    /// # Errors
    /// Backend failures.
    async fn find_session(&self, id: SessionId) -> Result<Option<SessionRecord>, StoreError>;

    /// Rotates the refresh token of `id` from `generation` to `generation +
    /// 1` in one conditional `UPDATE` that stamps `rotated_at` with the
    /// database's clock (see `find_rotated_session`): only when that generation is still the
    /// newest, the session belongs to `client_id`, is not revoked, has not
    /// reached `expires_at`, was used after `idle_cutoff`, its user is not
    /// disabled and, for a session bound to a DPoP key, `dpop_jkt` is that
    /// key (RFC 9449 §5). Of any number of
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
        dpop_jkt: Option<&str>,
        now: DateTime<Utc>,
        idle_cutoff: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>, StoreError>;

    /// The session with this id and the time since it last rotated, read in
    /// one statement against the database's clock: grace replay is decided
    /// on it, so instances whose clocks disagree cannot turn two racing
    /// tabs into reuse, nor forgive a late replay.
    ///
    /// # Errors
    /// Backend failures.
    async fn find_rotated_session(
        &self,
        id: SessionId,
    ) -> Result<Option<RotatedSession>, StoreError>;

    /// Revokes a session that is not yet revoked and, only if this call
    /// revoked it, writes `audit` in the same transaction. Returns whether it
    /// did.
    ///
    /// # Errors
    /// Backend failures.
    async fn revoke_session(
        &self,
        id: SessionId,
        reason: RevokeReason,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError>;

    /// Revokes every live session of `user` except `except` and bumps the
    /// user's credentials version, so no login in flight starts a session
    /// afterwards; writes `audit` in the same transaction. Returns how many.
    ///
    /// # Errors
    /// Backend failures.
    async fn revoke_user_sessions(
        &self,
        user: UserId,
        except: Option<SessionId>,
        reason: RevokeReason,
        audit: &AuditEvent,
    ) -> Result<u64, StoreError>;

    /// The user's sessions that are neither revoked nor expired, newest
    /// first, at most 100.
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

    /// The session and whether its user is disabled, in one lookup by primary
    /// key: what refresh-token introspection needs, without a second round
    /// trip. `None` when the session is unknown (or purged).
    ///
    /// # Errors
    /// Backend failures.
    async fn find_session_with_user_status(
        &self,
        id: SessionId,
    ) -> Result<Option<(SessionRecord, bool)>, StoreError>;

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
}

/// The audit log: append-only, apart from the retention purge.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends an audit event on its own. Methods that change other rows
    /// take their event as `audit` and write it in the same transaction.
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
}

/// Failed-login counters, shared by every instance.
#[async_trait]
pub trait ThrottleStore: Send + Sync {
    /// Reserves one attempt for `key` before its password is hashed: counts
    /// it in a window of `window_secs` that starts at the first attempt (an
    /// expired window restarts at `now`), unless the key is locked at `now`,
    /// which counts nothing. One atomic upsert, so concurrent attempts on
    /// several instances all count, and each sees its own place in the
    /// window. The reservation stands as a failure unless released.
    ///
    /// # Errors
    /// Backend failures.
    async fn reserve_login_attempt(
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

    /// Gives back one reserved attempt of `key` (the login succeeded, so it
    /// is no failure); never below zero.
    ///
    /// # Errors
    /// Backend failures.
    async fn release_login_attempt(&self, key: &str) -> Result<(), StoreError>;

    /// Deletes up to `batch` counters whose window started at or before
    /// `window_before` and that are not locked, or whose lock ended at or
    /// before `quiet_before` (after which their lockouts no longer double).
    /// Returns how many.
    ///
    /// # Errors
    /// Backend failures.
    async fn purge_login_failures(
        &self,
        window_before: DateTime<Utc>,
        quiet_before: DateTime<Utc>,
        batch: i64,
    ) -> Result<u64, StoreError>;

    /// Forgets the failures of `key` (after a successful login).
    ///
    /// # Errors
    /// Backend failures.
    async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError>;
}

/// Email tokens (verification, password reset) and verified addresses.
/// Using a token is one conditional `UPDATE`, so of any number of
/// concurrent uses exactly one succeeds.
#[async_trait]
pub trait RecoveryStore: Send + Sync {
    /// Stores `token` and queues `mail` (which carries its link) in one
    /// transaction, and voids the user's earlier unused tokens of the same
    /// purpose: only the newest link works.
    ///
    /// # Errors
    /// Backend failures.
    async fn insert_email_token(
        &self,
        token: &EmailTokenRecord,
        mail: &MailMessage,
    ) -> Result<(), StoreError>;

    /// The user of an unused, unexpired token with this digest and purpose
    /// (a reset token also only while the password is the one it was issued
    /// under). Uses nothing.
    ///
    /// # Errors
    /// Backend failures.
    async fn find_email_token(
        &self,
        digest: &[u8],
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<Option<UserId>, StoreError>;

    /// Uses the token: one conditional `UPDATE` that succeeds only while it
    /// is unused, unexpired and (reset tokens) still bound to the current
    /// password hash. Returns its user when this call used it.
    ///
    /// # Errors
    /// Backend failures.
    async fn consume_email_token(
        &self,
        digest: &[u8],
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<Option<UserId>, StoreError>;

    /// Uses a verification token and marks its user's address verified, with
    /// `audit` (whose `user_id` is filled in), in one transaction.
    ///
    /// # Errors
    /// Backend failures.
    async fn verify_email_with_token(
        &self,
        digest: &[u8],
        now: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<Option<UserId>, StoreError>;

    /// Marks a user's address verified (an operator's word) and writes
    /// `audit`, in one transaction.
    ///
    /// # Errors
    /// `NotFound` for an unknown user.
    async fn set_email_verified(&self, id: UserId, audit: &AuditEvent) -> Result<(), StoreError>;

    /// Deletes up to `batch` tokens that expired before `before`.
    ///
    /// # Errors
    /// Backend failures.
    async fn purge_email_tokens(
        &self,
        before: DateTime<Utc>,
        batch: i64,
    ) -> Result<u64, StoreError>;
}

/// The outbox: mail queued in the store and sent by a background sender on
/// any instance, each row by exactly one sender at a time.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Queues a message, due at once.
    ///
    /// # Errors
    /// Backend failures.
    async fn enqueue_mail(&self, mail: &MailMessage) -> Result<(), StoreError>;

    /// Queues a request for the mail of `purpose` to `email`, due at once,
    /// with empty bodies: the same row whether or not the address has an
    /// account. The sender resolves it (`resolve_mail_request`,
    /// `drop_mail_request`).
    ///
    /// # Errors
    /// Backend failures.
    async fn enqueue_mail_request(
        &self,
        id: uuid::Uuid,
        email: &str,
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Resolves a claimed request into the message `mail` (same id) and
    /// stores its `token`, voiding the user's earlier unused tokens of that
    /// purpose, in one transaction, only while `claim` still holds the row.
    /// Returns whether it did (a sender whose lease ran out mints nothing).
    ///
    /// # Errors
    /// Backend failures.
    async fn resolve_mail_request(
        &self,
        claim: uuid::Uuid,
        token: &EmailTokenRecord,
        mail: &MailMessage,
    ) -> Result<bool, StoreError>;

    /// Deletes a claimed request that no account should get mail for, while
    /// `claim` still holds it.
    ///
    /// # Errors
    /// Backend failures.
    async fn drop_mail_request(
        &self,
        id: uuid::Uuid,
        claim: uuid::Uuid,
    ) -> Result<bool, StoreError>;

    /// Claims up to `batch` due messages until `lease_until`: rows not sent,
    /// not given up, due by `now` and not under another live claim. Two
    /// senders (two instances) never claim the same row while its lease runs.
    ///
    /// # Errors
    /// Backend failures.
    async fn claim_mail(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        batch: i64,
    ) -> Result<Vec<ClaimedMail>, StoreError>;

    /// Records a delivery by the holder of `claim` and blanks the bodies.
    /// Returns whether the claim was still this sender's.
    ///
    /// # Errors
    /// Backend failures.
    async fn mark_mail_sent(
        &self,
        id: uuid::Uuid,
        claim: uuid::Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Records a failed attempt by the holder of `claim`: due again at
    /// `retry_at`, or given up (bodies blanked) when `retry_at` is `None`.
    /// `error` is a fixed description, never the server's words.
    ///
    /// # Errors
    /// Backend failures.
    async fn mark_mail_failed(
        &self,
        id: uuid::Uuid,
        claim: uuid::Uuid,
        now: DateTime<Utc>,
        retry_at: Option<DateTime<Utc>>,
        error: &str,
    ) -> Result<bool, StoreError>;

    /// How many rows are pending, sent and given up.
    ///
    /// # Errors
    /// Backend failures.
    async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError>;

    /// Deletes up to `batch` sent or given-up rows settled before `before`.
    ///
    /// # Errors
    /// Backend failures.
    async fn purge_outbox(&self, before: DateTime<Utc>, batch: i64) -> Result<u64, StoreError>;
}

/// The authorization code flow: browser sessions at latchkey, single-use
/// codes and remembered consents.
#[async_trait]
pub trait AuthorizationStore: Send + Sync {
    /// Stores a browser session as given, its cookie's secret already
    /// reduced to `id_hash`.
    ///
    /// # Errors
    /// Backend failures.
    async fn insert_browser_session(&self, s: &BrowserSessionRecord) -> Result<(), StoreError>;

    /// The browser session whose cookie hashes to `id_hash`, if it is live at
    /// `now` (not ended, not past its end, used after `idle_cutoff`, its user
    /// not disabled); marks it used at `now`.
    ///
    /// # Errors
    /// Backend failures.
    async fn touch_browser_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
        idle_cutoff: DateTime<Utc>,
    ) -> Result<Option<BrowserSessionRecord>, StoreError>;

    /// Ends a browser session (logout). Returns whether this call ended it.
    ///
    /// # Errors
    /// Backend failures.
    async fn end_browser_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Stores a freshly issued code.
    ///
    /// # Errors
    /// `Conflict` on a duplicate hash; `NotFound` when its client or user
    /// is gone (deleted since the request was validated).
    async fn insert_authorization_code(
        &self,
        code: &AuthorizationCodeRecord,
    ) -> Result<(), StoreError>;

    /// The code whose digest is `code_hash`, used or not.
    ///
    /// # Errors
    /// Backend failures.
    async fn find_authorization_code(
        &self,
        code_hash: &str,
    ) -> Result<Option<AuthorizationCodeRecord>, StoreError>;

    /// Marks a code used by `session` in one conditional `UPDATE`: only when
    /// it is unused and not past `expires_at`. Of any number of concurrent
    /// redemptions, exactly one gets `true`.
    ///
    /// # Errors
    /// Backend failures.
    async fn consume_authorization_code(
        &self,
        code_hash: &str,
        session: SessionId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Remembers (or replaces) a user's consent to a client.
    ///
    /// # Errors
    /// `NotFound` when the client or user is gone; backend failures.
    async fn upsert_consent(&self, consent: &ConsentRecord) -> Result<(), StoreError>;

    /// The user's consent to the client, if any.
    ///
    /// # Errors
    /// Backend failures.
    async fn find_consent(
        &self,
        user: UserId,
        client: ClientId,
    ) -> Result<Option<ConsentRecord>, StoreError>;

    /// The user's consents, newest first, at most 100.
    ///
    /// # Errors
    /// Backend failures.
    async fn list_consents(&self, user: UserId) -> Result<Vec<ConsentRecord>, StoreError>;

    /// Withdraws the user's consent to `client` and, in the same transaction,
    /// revokes the user's live sessions of that client, writing `audit` when
    /// a consent was withdrawn. Returns whether there was one.
    ///
    /// # Errors
    /// Backend failures.
    async fn delete_consent(
        &self,
        user: UserId,
        client: ClientId,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError>;
}

/// Single-use JWT ids (DPoP proofs, client assertions), shared by every
/// instance so that a replay fails wherever it is presented. Namespaces keep
/// the uses apart: `dpop:<jkt>` for proofs, `client_assertion:<client_id>`
/// for assertions.
#[async_trait]
pub trait ReplayStore: Send + Sync {
    /// Remembers `jti_digest` (a SHA-256 digest of the jti, base64url; never
    /// the raw value) in `namespace` until `expires_at`, when the caller's
    /// time window would refuse the JWT anyway. One `INSERT … ON CONFLICT`
    /// decides: true for the first use only, so of any number of concurrent
    /// callers on any number of instances exactly one gets `true`. A row
    /// whose `expires_at` has passed by the database's clock may be taken
    /// over (then that call is the first use again).
    ///
    /// # Errors
    /// Backend failures.
    async fn remember_jti(
        &self,
        namespace: &str,
        jti_digest: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Deletes up to `batch` ids whose `expires_at` is at or before `before`.
    /// Returns how many.
    ///
    /// # Errors
    /// Backend failures.
    async fn purge_used_jtis(&self, before: DateTime<Utc>, batch: i64) -> Result<u64, StoreError>;
}

/// Signing keys and the refresh-token secret, sealed, shared by every
/// instance. Every change moves `keys_version` in the changing transaction.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// The key ring's version: one row, polled by every instance.
    ///
    /// # Errors
    /// Backend failures.
    async fn keys_version(&self) -> Result<i64, StoreError>;

    /// Every signing key, with the version read before them (so a change
    /// racing the read shows as a newer version at the next poll).
    ///
    /// # Errors
    /// Backend failures.
    async fn list_signing_keys(&self) -> Result<(i64, Vec<SigningKeyRecord>), StoreError>;

    /// The secret named `name`.
    ///
    /// # Errors
    /// Backend failures.
    async fn find_key_secret(&self, name: &str) -> Result<Option<SealedSecret>, StoreError>;

    /// Initialises the store's keys: inserts `secret` and `keys` in one
    /// transaction, only when no secret of that name exists yet. Returns
    /// whether it did; of several callers racing on an empty store exactly
    /// one does (the secret's primary key decides).
    ///
    /// # Errors
    /// Backend failures.
    async fn initialize_keys(
        &self,
        secret: &SealedSecret,
        keys: &[SigningKeyRecord],
    ) -> Result<bool, StoreError>;

    /// Writes a new schedule in one transaction: upserts `keys` (by kid),
    /// deletes `removed`, and replaces `secret` when given, only while the
    /// version is still `expected` (the one the change was computed from).
    ///
    /// # Errors
    /// `Conflict` when the version moved (another change landed first).
    async fn save_signing_keys(
        &self,
        expected: i64,
        keys: &[SigningKeyRecord],
        removed: &[String],
        secret: Option<&SealedSecret>,
    ) -> Result<(), StoreError>;
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
