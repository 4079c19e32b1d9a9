//! Row types as PostgreSQL returns them, and their conversion into records.

use super::*;
use crate::ids::Scope;
use crate::store::KeySource;

#[derive(FromRow)]
pub(super) struct UserRow {
    id: Uuid,
    email: String,
    password_hash: String,
    disabled: bool,
    credentials_version: i64,
    email_verified: bool,
    created_at: DateTime<Utc>,
}

impl From<UserRow> for UserRecord {
    fn from(r: UserRow) -> Self {
        Self {
            id: UserId(r.id),
            email: r.email,
            password_hash: r.password_hash,
            disabled: r.disabled,
            credentials_version: r.credentials_version,
            email_verified: r.email_verified,
            created_at: r.created_at,
        }
    }
}

#[derive(FromRow)]
pub(super) struct ClientRow {
    id: Uuid,
    name: String,
    kind: String,
    secret_hash: Option<Vec<u8>>,
    grants: String,
    scopes: String,
    audience: Option<String>,
    cookie_mode: bool,
    origins: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    first_party: bool,
    introspect: bool,
    require_dpop: bool,
    created_at: DateTime<Utc>,
    disabled_at: Option<DateTime<Utc>>,
    previous_secret_hash: Option<Vec<u8>>,
    previous_secret_expires_at: Option<DateTime<Utc>>,
    admin: bool,
    auth_method: String,
    jwks_uri: Option<String>,
    jwks: Option<String>,
}

impl TryFrom<ClientRow> for ClientRecord {
    type Error = StoreError;
    fn try_from(r: ClientRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: ClientId(r.id),
            name: r.name,
            kind: ClientKind::parse(&r.kind).ok_or(StoreError::Corrupt("clients.kind"))?,
            secret_hash: r.secret_hash,
            grants: split_list(&r.grants),
            scopes: split_list(&r.scopes),
            audience: r.audience,
            cookie_mode: r.cookie_mode,
            origins: split_list(&r.origins),
            redirect_uris: split_list(&r.redirect_uris),
            post_logout_redirect_uris: split_list(&r.post_logout_redirect_uris),
            first_party: r.first_party,
            introspect: r.introspect,
            require_dpop: r.require_dpop,
            created_at: r.created_at,
            disabled_at: r.disabled_at,
            previous_secret_hash: r.previous_secret_hash,
            previous_secret_expires_at: r.previous_secret_expires_at,
            admin: r.admin,
            key_source: KeySource::from_columns(&r.auth_method, r.jwks_uri, r.jwks)?,
        })
    }
}

#[derive(FromRow)]
pub(super) struct SessionRow {
    id: Uuid,
    user_id: Uuid,
    client_id: Uuid,
    scope: String,
    created_at: DateTime<Utc>,
    last_used_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    generation: i64,
    rotated_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    revoked_reason: Option<String>,
    dpop_jkt: Option<String>,
}

/// A session row with its user's `disabled` flag, from one join.
#[derive(FromRow)]
pub(super) struct SessionWithUserRow {
    #[sqlx(flatten)]
    pub(super) session: SessionRow,
    pub(super) user_disabled: bool,
}

impl From<SessionRow> for SessionRecord {
    fn from(r: SessionRow) -> Self {
        Self {
            id: SessionId(r.id),
            user_id: UserId(r.user_id),
            client_id: ClientId(r.client_id),
            // Stored only after parsing; a row edited by hand into nonsense
            // grants nothing rather than something unintended.
            scope: Scope::parse(&r.scope).unwrap_or_default(),
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            expires_at: r.expires_at,
            generation: r.generation,
            rotated_at: r.rotated_at,
            revoked_at: r.revoked_at,
            revoked_reason: r.revoked_reason,
            dpop_jkt: r.dpop_jkt,
        }
    }
}

#[derive(FromRow)]
pub(super) struct RotatedRow {
    #[sqlx(flatten)]
    session: SessionRow,
    since_rotation_ms: i64,
}

impl From<RotatedRow> for RotatedSession {
    fn from(r: RotatedRow) -> Self {
        Self {
            session: r.session.into(),
            since_rotation: chrono::Duration::milliseconds(r.since_rotation_ms),
        }
    }
}

#[derive(FromRow)]
pub(super) struct AuditRow {
    at: DateTime<Utc>,
    kind: String,
    user_id: Option<Uuid>,
    client_id: Option<Uuid>,
    session_id: Option<Uuid>,
    reason: Option<String>,
    address: Option<String>,
}

impl From<AuditRow> for AuditEvent {
    fn from(r: AuditRow) -> Self {
        Self {
            at: r.at,
            kind: r.kind,
            user_id: r.user_id.map(UserId),
            client_id: r.client_id.map(ClientId),
            session_id: r.session_id.map(SessionId),
            reason: r.reason,
            address: r.address,
        }
    }
}

#[derive(FromRow)]
pub(super) struct FailureRow {
    failures: i64,
    window_started_at: DateTime<Utc>,
    lockouts: i64,
    locked_until: Option<DateTime<Utc>>,
}

impl From<FailureRow> for FailureCount {
    fn from(r: FailureRow) -> Self {
        Self {
            failures: r.failures,
            window_started_at: r.window_started_at,
            lockouts: r.lockouts,
            locked_until: r.locked_until,
        }
    }
}

#[derive(FromRow)]
pub(super) struct BrowserSessionRow {
    id_hash: String,
    user_id: Uuid,
    auth_time: DateTime<Utc>,
    credentials_version: i64,
    last_seen_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<BrowserSessionRow> for BrowserSessionRecord {
    fn from(r: BrowserSessionRow) -> Self {
        Self {
            id_hash: r.id_hash,
            user_id: UserId(r.user_id),
            auth_time: r.auth_time,
            credentials_version: r.credentials_version,
            last_seen_at: r.last_seen_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
        }
    }
}

#[derive(FromRow)]
pub(super) struct CodeRow {
    code_hash: String,
    client_id: Uuid,
    user_id: Uuid,
    redirect_uri: String,
    code_challenge: String,
    nonce: Option<String>,
    scope: String,
    auth_time: DateTime<Utc>,
    credentials_version: i64,
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
    session_id: Option<Uuid>,
    dpop_jkt: Option<String>,
}

impl From<CodeRow> for AuthorizationCodeRecord {
    fn from(r: CodeRow) -> Self {
        Self {
            code_hash: r.code_hash,
            client_id: ClientId(r.client_id),
            user_id: UserId(r.user_id),
            redirect_uri: r.redirect_uri,
            code_challenge: r.code_challenge,
            nonce: r.nonce,
            scope: r.scope,
            auth_time: r.auth_time,
            credentials_version: r.credentials_version,
            expires_at: r.expires_at,
            used_at: r.used_at,
            session_id: r.session_id.map(SessionId),
            dpop_jkt: r.dpop_jkt,
        }
    }
}

#[derive(FromRow)]
pub(super) struct ConsentRow {
    user_id: Uuid,
    client_id: Uuid,
    scope: String,
    granted_at: DateTime<Utc>,
}

impl From<ConsentRow> for ConsentRecord {
    fn from(r: ConsentRow) -> Self {
        Self {
            user_id: UserId(r.user_id),
            client_id: ClientId(r.client_id),
            scope: r.scope,
            granted_at: r.granted_at,
        }
    }
}

#[derive(FromRow)]
pub(super) struct OutboxRow {
    id: Uuid,
    recipient: String,
    subject: String,
    body_text: String,
    body_html: String,
    created_at: DateTime<Utc>,
    attempts: i32,
    claim: Uuid,
    request: Option<String>,
}

impl From<OutboxRow> for ClaimedMail {
    fn from(r: OutboxRow) -> Self {
        Self {
            message: MailMessage {
                id: r.id,
                recipient: r.recipient,
                subject: r.subject,
                body_text: r.body_text,
                body_html: r.body_html,
                created_at: r.created_at,
            },
            attempts: i64::from(r.attempts),
            claim: r.claim,
            request: r.request.as_deref().and_then(TokenPurpose::from_stored),
        }
    }
}
