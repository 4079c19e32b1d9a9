//! The records and the error the store traits speak in.

use chrono::{DateTime, Utc};

use crate::ids::{ClientId, ClientKind, Scope, SessionId, UserId};

/// A store failure, with only the variants callers branch on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row the call names does not exist: an answer (an unknown user),
    /// not a fault, so metrics do not count it as a failure. Also a write
    /// whose foreign key names a row that is gone: a code or consent for a
    /// client deleted while it was being issued.
    #[error("not found")]
    NotFound,
    /// A unique constraint refused the write, or a compare-and-set found the
    /// row moved on (a credentials or key-ring version that changed).
    #[error("conflict")]
    Conflict,
    /// The database cannot be reached (pool timeout, lost connection).
    #[error("the database cannot be reached")]
    Unavailable(#[source] sqlx::Error),
    /// Anything else the database said.
    #[error("the database refused the statement")]
    Backend(#[source] sqlx::Error),
    /// Only from `migrate`: a migration failed, or the migrations the
    /// database has applied do not match the ones this build embeds.
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be read back.
    #[error("corrupt row: {0}")]
    Corrupt(&'static str),
}

/// Lets both backends write `?` on sqlx calls: one mapping, no per-call
/// conversion to forget.
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::from_sqlx(e)
    }
}

impl StoreError {
    /// Maps a sqlx error the same way for both backends.
    pub fn from_sqlx(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => Self::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict,
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => Self::NotFound,
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
    /// Trimmed and lower-cased (`Email::parse`), and unique: the name the
    /// user logs in with.
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Disabled users cannot log in or refresh.
    pub disabled: bool,
    /// Bumped whenever the user's sessions end wholesale (password change,
    /// disabling, revoking them all); a session starts only from the version
    /// its login read.
    pub credentials_version: i64,
    /// The owner proved they receive mail at `email` (a verification link
    /// was followed, or an operator marked it).
    pub email_verified: bool,
    /// When the account was created; with `id`, the order `page_users`
    /// pages in.
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("password_hash", &"[redacted]")
            .field("disabled", &self.disabled)
            .field("credentials_version", &self.credentials_version)
            .field("email_verified", &self.email_verified)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A registered client. The lists are stored as space-separated columns and
/// read back with `split_list`.
#[derive(Debug, Clone)]
pub struct ClientRecord {
    /// `client_id`.
    pub id: ClientId,
    /// Shown to users on the login, consent and logout pages.
    pub name: String,
    /// Public clients authenticate with nothing; confidential ones with a
    /// secret or `private_key_jwt` (see `auth_method`).
    pub kind: ClientKind,
    /// SHA-256 of the client secret (confidential clients only).
    pub secret_hash: Option<Vec<u8>>,
    /// Allowed grant types (wire names).
    pub grants: Vec<String>,
    /// What it may ask for; a request that names no scope gets all of them.
    /// `latchkey:admin` among them counts only for an admin client's
    /// client_credentials grant.
    pub scopes: Vec<String>,
    /// `aud` of its access tokens; the default audience when `None`.
    pub audience: Option<String>,
    /// Tokens in cookies instead of the body.
    pub cookie_mode: bool,
    /// Origins allowed for CORS and cookie-authenticated requests.
    pub origins: Vec<String>,
    /// Registered redirect URIs for the authorization code flow, matched
    /// exactly (loopback ports aside).
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the browser afterwards.
    pub post_logout_redirect_uris: Vec<String>,
    /// First-party clients skip the consent page.
    pub first_party: bool,
    /// May introspect any token, not only its own and its audience's.
    pub introspect: bool,
    /// Every grant must carry a DPoP proof (`clients create --require-dpop`,
    /// RFC 9449 §10.1's `dpop_bound_access_tokens`).
    pub require_dpop: bool,
    /// When it was registered; with `id`, the order `page_clients` pages in.
    pub created_at: DateTime<Utc>,
    /// When it was suspended; a disabled client is refused everywhere and
    /// its tokens are inactive until it is enabled again.
    pub disabled_at: Option<DateTime<Utc>>,
    /// SHA-256 of the secret replaced by the last rotation, accepted until
    /// `previous_secret_expires_at`.
    pub previous_secret_hash: Option<Vec<u8>>,
    /// The end of the rotation overlap.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// Where a `private_key_jwt` client's public keys come from; `None` for
    /// a client with a secret (or a public client). Such a client has no
    /// secret.
    pub key_source: Option<KeySource>,
    /// May obtain the `latchkey:admin` scope (`clients create --admin`).
    pub admin: bool,
}

/// Where a keyset page starts: after the row with this sort key. Pages are
/// ordered by `(created_at, id)`, which never changes for a row, so a row
/// added or removed between pages shifts nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageAfter<I> {
    /// `created_at` of the last row of the previous page, as the store
    /// returned it.
    pub created_at: DateTime<Utc>,
    /// That row's id, which orders rows created in the same instant.
    pub id: I,
}

impl ClientRecord {
    /// How it authenticates, as stored and as discovery names it (RFC 8414
    /// §2): `none` (public), `client_secret` (Basic or in the body) or
    /// `private_key_jwt`.
    pub fn auth_method(&self) -> &'static str {
        match (self.kind, &self.key_source) {
            (ClientKind::Public, _) => "none",
            (ClientKind::Confidential, None) => "client_secret",
            (ClientKind::Confidential, Some(_)) => "private_key_jwt",
        }
    }
}

/// Where a `private_key_jwt` client's public keys come from (RFC 7591 §2
/// names both: `jwks_uri` and `jwks`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Fetched by the server from this URL (https, or http on loopback).
    JwksUri(String),
    /// Given at registration: JSON text of `{"keys": [...]}`, every key
    /// checked to be public and usable.
    Jwks(String),
}

impl KeySource {
    /// The `jwks_uri` and `jwks` columns of `source`.
    pub fn columns(source: Option<&KeySource>) -> (Option<&str>, Option<&str>) {
        match source {
            Some(KeySource::JwksUri(u)) => (Some(u), None),
            Some(KeySource::Jwks(j)) => (None, Some(j)),
            None => (None, None),
        }
    }

    /// The inverse of `columns`, given the row's `auth_method`: `None` for
    /// `none` and `client_secret`.
    ///
    /// # Errors
    /// `Corrupt` for a `private_key_jwt` row without exactly one source, or
    /// an unknown method.
    pub fn from_columns(
        method: &str,
        jwks_uri: Option<String>,
        jwks: Option<String>,
    ) -> Result<Option<KeySource>, StoreError> {
        match (method, jwks_uri, jwks) {
            ("none" | "client_secret", None, None) => Ok(None),
            ("private_key_jwt", Some(u), None) => Ok(Some(KeySource::JwksUri(u))),
            ("private_key_jwt", None, Some(j)) => Ok(Some(KeySource::Jwks(j))),
            _ => Err(StoreError::Corrupt("clients.auth_method")),
        }
    }
}

/// A session: one login and its refresh-token chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// `sid`.
    pub id: SessionId,
    pub user_id: UserId,
    /// The client it was started by; its refresh tokens are bound to it.
    pub client_id: ClientId,
    /// The scope granted at login; refreshes may narrow what a token
    /// carries, never widen this.
    pub scope: Scope,
    /// When the password was entered (`auth_time`).
    pub created_at: DateTime<Utc>,
    /// Last refresh (or the login).
    pub last_used_at: DateTime<Utc>,
    /// The absolute end, set when the session starts; refreshing never moves
    /// it.
    pub expires_at: DateTime<Utc>,
    /// Generation of the newest refresh token.
    pub generation: i64,
    /// When the newest refresh token was issued.
    pub rotated_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// A `RevokeReason::as_str` name; `None` while the session is live.
    pub revoked_reason: Option<String>,
    /// The RFC 7638 thumbprint of the DPoP key every refresh of this session
    /// must prove possession of (public clients that started it with a
    /// proof, RFC 9449 §5); `None` for an unbound session. Never changes.
    pub dpop_jkt: Option<String>,
}

/// A session with the time since its newest refresh token was issued,
/// measured by the database's clock (which also wrote `rotated_at`), so every
/// instance judges a replay alike, whatever its own clock says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotatedSession {
    /// The session as it is now.
    pub session: SessionRecord,
    /// How long ago, by the database's clock, it last rotated.
    pub since_rotation: chrono::Duration,
}

/// What verification needs to know about a token's session: one indexed
/// lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionStatus {
    pub revoked: bool,
    pub user_disabled: bool,
}

/// Why a session ended, as stored in `sessions.revoked_reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeReason {
    /// A rotated refresh token came back outside grace.
    RefreshTokenReuse,
    /// The user ended it from the account API.
    RevokedByUser,
    /// The client revoked a token of it (RFC 7009).
    RevokedByClient,
    /// The user logged out, with the session's refresh token or one of its
    /// access tokens.
    Logout,
    /// An operator ended every session of the user.
    RevokedByAdmin,
    /// The authorization code that started it was presented again.
    AuthorizationCodeReused,
    /// The user was disabled (`users disable` or the admin API), which ends
    /// all their sessions at once.
    UserDisabled,
    /// The user's password changed.
    PasswordChanged,
    /// The user withdrew the consent it rested on.
    ConsentWithdrawn,
}

impl RevokeReason {
    /// The name stored in `sessions.revoked_reason`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RefreshTokenReuse => "refresh_token_reuse",
            Self::RevokedByUser => "revoked_by_user",
            Self::RevokedByClient => "revoked_by_client",
            Self::Logout => "logout",
            Self::RevokedByAdmin => "revoked_by_admin",
            Self::AuthorizationCodeReused => "authorization code reused",
            Self::UserDisabled => "user_disabled",
            Self::PasswordChanged => "password_changed",
            Self::ConsentWithdrawn => "consent withdrawn",
        }
    }
}

/// What an audit event records. Its stored and logged name is `as_str()`;
/// this list is the list of kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKind {
    /// A redeemed authorization code was presented again; its tokens were revoked.
    AuthorizationCodeReused,
    /// A client was registered; `reason` holds its kind, name and grants,
    /// and who registered it unless that was the command line.
    ClientCreated,
    /// A client's settings changed.
    ClientUpdated,
    /// A client was suspended; its sessions are kept for when it is enabled
    /// again.
    ClientDisabled,
    /// A suspended client was enabled again.
    ClientEnabled,
    /// A client and its sessions were removed.
    ClientDeleted,
    /// A client got a new secret.
    ClientSecretRotated,
    /// A user consented to a third-party client.
    ConsentGranted,
    /// A user withdrew a consent; its sessions ended.
    ConsentWithdrawn,
    /// A user's email address was verified.
    EmailVerified,
    /// A password login failed: unknown email, wrong password or disabled
    /// account (`user_id` is set when the account exists). Throttled attempts
    /// are refused before they can fail, and record nothing.
    LoginFailed,
    /// A session started, from the password grant or from redeeming an
    /// authorization code (then `reason` is `authorization_code`).
    LoginSucceeded,
    /// A user changed their password; other sessions ended.
    PasswordChanged,
    /// A password was reset through a reset link.
    PasswordReset,
    /// A reset link was asked for.
    PasswordResetRequested,
    /// A rotated refresh token came back outside grace: a theft signal; the session ended.
    RefreshTokenReused,
    /// One session ended (logout, revocation).
    SessionRevoked,
    /// Every session of a user ended.
    SessionsRevoked,
    /// An account was created, by sign-up or by `users create` (which
    /// records no `address`).
    UserSignedUp,
    /// A user was disabled; their sessions ended.
    UserDisabled,
    /// A disabled user was enabled again.
    UserEnabled,
    /// A first signing key was generated: by `keys generate`, or at start-up
    /// on an empty keys folder or store.
    KeyGenerated,
    /// A new signing key was scheduled.
    KeyRotated,
    /// A signing key stopped signing (`keys retire`); `reason` says whether
    /// it also left the JWKS at once.
    KeyRetired,
    /// Stored private keys were sealed under the first KEK again.
    KeysRewrapped,
    /// A keys folder was imported into the store.
    KeysImported,
}

impl AuditKind {
    /// The name stored in `audit_events.kind` and logged as `audit.kind`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCodeReused => "authorization_code_reused",
            Self::ClientCreated => "client_created",
            Self::ClientUpdated => "client_updated",
            Self::ClientDisabled => "client_disabled",
            Self::ClientEnabled => "client_enabled",
            Self::ClientDeleted => "client_deleted",
            Self::ClientSecretRotated => "client_secret_rotated",
            Self::ConsentGranted => "consent_granted",
            Self::ConsentWithdrawn => "consent_withdrawn",
            Self::EmailVerified => "email_verified",
            Self::LoginFailed => "login_failed",
            Self::LoginSucceeded => "login_succeeded",
            Self::PasswordChanged => "password_changed",
            Self::PasswordReset => "password_reset",
            Self::PasswordResetRequested => "password_reset_requested",
            Self::RefreshTokenReused => "refresh_token_reused",
            Self::SessionRevoked => "session_revoked",
            Self::SessionsRevoked => "sessions_revoked",
            Self::UserSignedUp => "user_signed_up",
            Self::UserDisabled => "user_disabled",
            Self::UserEnabled => "user_enabled",
            Self::KeyGenerated => "key_generated",
            Self::KeyRotated => "key_rotated",
            Self::KeyRetired => "key_retired",
            Self::KeysRewrapped => "keys_rewrapped",
            Self::KeysImported => "keys_imported",
        }
    }
}

impl std::fmt::Display for AuditKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A security event. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// When it happened. Store methods that revoke sessions in the event's
    /// transaction stamp them with this time as their `revoked_at`.
    pub at: DateTime<Utc>,
    /// What happened, e.g. `refresh_token_reused`, `login_failed`.
    pub kind: String,
    pub user_id: Option<UserId>,
    pub client_id: Option<ClientId>,
    pub session_id: Option<SessionId>,
    /// Who or what caused it, or why.
    pub reason: Option<String>,
    /// The network address the request came from (the peer, or the
    /// forwarded client behind a trusted proxy), not an OAuth client; `None`
    /// when the event's caller records none, as commands never do.
    pub address: Option<String>,
}

impl AuditEvent {
    /// An event of `kind` at `at` with nothing else filled in.
    pub fn new(kind: AuditKind, at: DateTime<Utc>) -> Self {
        Self {
            at,
            kind: kind.as_str().to_owned(),
            user_id: None,
            client_id: None,
            session_id: None,
            reason: None,
            address: None,
        }
    }

    /// The user it concerns.
    pub fn user(mut self, id: impl Into<Option<UserId>>) -> Self {
        self.user_id = id.into();
        self
    }

    /// The client it concerns.
    pub fn client(mut self, id: impl Into<Option<ClientId>>) -> Self {
        self.client_id = id.into();
        self
    }

    /// The session it concerns.
    pub fn session(mut self, id: impl Into<Option<SessionId>>) -> Self {
        self.session_id = id.into();
        self
    }

    /// What happened, in words for the operator; never a secret.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// The client address the request came from, when known.
    pub fn address(mut self, address: Option<&str>) -> Self {
        self.address = address.map(str::to_owned);
        self
    }
}

/// A failed-login counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureCount {
    /// Attempts counted in the current window: failures, plus reserved
    /// attempts whose login has not finished yet.
    pub failures: i64,
    /// Restarts at the attempt's time once the window has passed, and at the
    /// lock's start when a lock is applied.
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

/// A login at latchkey's own page, kept by a `__Host-` cookie. The cookie
/// holds a random secret; the store only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserSessionRecord {
    /// SHA-256 (hex) of the cookie's secret.
    pub id_hash: String,
    pub user_id: UserId,
    /// When the password was entered (the id_token's `auth_time`).
    pub auth_time: DateTime<Utc>,
    /// The user's credentials version at login; a change ends the session.
    pub credentials_version: i64,
    /// Last use, for the idle timeout.
    pub last_seen_at: DateTime<Utc>,
    /// The absolute end, however recently the session was used.
    pub expires_at: DateTime<Utc>,
    /// When it was ended (logout), if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An authorization code and everything it is bound to (RFC 6749 §4.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCodeRecord {
    /// SHA-256 (hex) of the code; the code itself is never stored.
    pub code_hash: String,
    /// The client it was issued to.
    pub client_id: ClientId,
    /// Whose consent it carries.
    pub user_id: UserId,
    /// The exact `redirect_uri` of the authorization request (RFC 6749 §4.1.3).
    pub redirect_uri: String,
    /// The PKCE S256 challenge (RFC 7636).
    pub code_challenge: String,
    /// The OIDC `nonce`, echoed in the id_token.
    pub nonce: Option<String>,
    /// The scope the session it starts gets (space-separated).
    pub scope: String,
    /// The browser session's `auth_time`; it becomes the started session's
    /// `created_at` and so the id_token's `auth_time`.
    pub auth_time: DateTime<Utc>,
    /// The user's credentials version at login; the session it starts
    /// starts only while it is current.
    pub credentials_version: i64,
    /// 60 seconds after issue.
    pub expires_at: DateTime<Utc>,
    /// When it was redeemed, if it was.
    pub used_at: Option<DateTime<Utc>>,
    /// The session its redemption started, `None` until then: a second
    /// presentation of the code revokes that session.
    pub session_id: Option<SessionId>,
    /// The thumbprint of the DPoP key the authorization request named
    /// (`dpop_jkt`, RFC 9449 §10): only a proof made with that key redeems
    /// the code.
    pub dpop_jkt: Option<String>,
}

/// A user's remembered consent to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRecord {
    /// With `client_id`, the key: a user has at most one consent per
    /// client.
    pub user_id: UserId,
    pub client_id: ClientId,
    /// The scopes allowed (space-separated).
    pub scope: String,
    /// When it was last granted; consenting again replaces the scope and
    /// this time.
    pub granted_at: DateTime<Utc>,
}

/// What an email token is for. Each purpose is its own namespace: a
/// verification token never resets a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    /// Proves the owner receives mail at the account's address.
    VerifyEmail,
    /// Lets the owner set a new password.
    ResetPassword,
}

impl TokenPurpose {
    /// The name stored in `email_tokens.purpose` and `outbox.request`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
        }
    }

    /// The purpose with this stored name.
    pub fn from_stored(s: &str) -> Option<Self> {
        match s {
            "verify_email" => Some(Self::VerifyEmail),
            "reset_password" => Some(Self::ResetPassword),
            _ => None,
        }
    }
}

/// A single-use email token as stored: its SHA-256 digest, never the token.
#[derive(Clone, PartialEq, Eq)]
pub struct EmailTokenRecord {
    /// SHA-256 of the token.
    pub digest: Vec<u8>,
    pub user_id: UserId,
    pub purpose: TokenPurpose,
    /// The password hash the token was issued under (reset tokens): once the
    /// password changes, the token no longer matches and cannot be used.
    pub bound_hash: Option<String>,
    /// When it was issued. A queued request resolved after a newer token of
    /// the same user and purpose was issued is dropped rather than bring
    /// back a voided link (`resolve_mail_request`).
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for EmailTokenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailTokenRecord")
            .field("user_id", &self.user_id)
            .field("purpose", &self.purpose)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A message for the outbox. `Debug` leaves out the recipient and the
/// bodies: a body can hold a reset link.
#[derive(Clone, PartialEq, Eq)]
pub struct MailMessage {
    /// The outbox row's id; a queued request keeps its id when it is
    /// resolved into this message.
    pub id: uuid::Uuid,
    /// The address it goes to; for a queued request, the address it was
    /// asked for, which may have no account.
    pub recipient: String,
    pub subject: String,
    /// Blanked, as is `body_html`, once the message is sent or given up.
    pub body_text: String,
    pub body_html: String,
    /// When it was queued, and so when it first falls due.
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for MailMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailMessage")
            .field("id", &self.id)
            .field("subject", &self.subject)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// An outbox row claimed by one sender until its lease ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedMail {
    pub message: MailMessage,
    /// Delivery attempts so far, this one included.
    pub attempts: i64,
    /// The claim: only its holder may settle the row.
    pub claim: uuid::Uuid,
    /// For a queued request (the message is still empty): what was asked
    /// for `message.recipient`. The sender resolves it before delivery.
    pub request: Option<TokenPurpose>,
}

/// How many outbox rows are in each state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxCounts {
    /// Not yet sent and not given up.
    pub pending: i64,
    /// Delivered to the mail server.
    pub sent: i64,
    /// Given up after the last attempt.
    pub failed: i64,
}

/// A signing key as stored: its schedule in clear, its private part sealed
/// under a key-encryption key. `Debug` omits the sealed bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// RFC 7638 thumbprint.
    pub kid: String,
    /// JWS algorithm name (`RS256`, `ES256`, `EdDSA`).
    pub algorithm: String,
    /// nonce || AES-256-GCM ciphertext || tag of the PKCS#8 DER.
    pub sealed: Vec<u8>,
    /// Which KEK sealed it.
    pub kek_id: String,
    /// From then on in the JWKS.
    pub published_at: DateTime<Utc>,
    /// From then on it signs.
    pub activates_at: DateTime<Utc>,
    /// From then on it no longer signs.
    pub retires_at: Option<DateTime<Utc>>,
    /// From then on it leaves the JWKS.
    pub expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("kek_id", &self.kek_id)
            .field("published_at", &self.published_at)
            .field("activates_at", &self.activates_at)
            .field("retires_at", &self.retires_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A named secret (the refresh-token secret), sealed like a key.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    /// `refresh`.
    pub name: String,
    /// nonce || ciphertext || tag.
    pub sealed: Vec<u8>,
    /// Which KEK sealed it.
    pub kek_id: String,
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSecret")
            .field("name", &self.name)
            .field("kek_id", &self.kek_id)
            .finish_non_exhaustive()
    }
}
