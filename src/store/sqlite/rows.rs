//! Row types as SQLite returns them, and their conversion into records.

use super::*;
use crate::ids::Scope;
use crate::store::KeySource;

#[derive(FromRow)]
pub(super) struct UserRow {
    id: String,
    email: String,
    password_hash: String,
    disabled: bool,
    credentials_version: i64,
    email_verified: bool,
    created_at: i64,
}

impl TryFrom<UserRow> for UserRecord {
    type Error = StoreError;
    fn try_from(r: UserRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: UserId(uuid(&r.id)?),
            email: r.email,
            password_hash: r.password_hash,
            disabled: r.disabled,
            credentials_version: r.credentials_version,
            email_verified: r.email_verified,
            created_at: at(r.created_at)?,
        })
    }
}

#[derive(FromRow)]
pub(super) struct ClientRow {
    id: String,
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
    created_at: i64,
    disabled_at: Option<i64>,
    previous_secret_hash: Option<Vec<u8>>,
    previous_secret_expires_at: Option<i64>,
    admin: bool,
    auth_method: String,
    jwks_uri: Option<String>,
    jwks: Option<String>,
}

impl TryFrom<ClientRow> for ClientRecord {
    type Error = StoreError;
    fn try_from(r: ClientRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: ClientId(uuid(&r.id)?),
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
            created_at: at(r.created_at)?,
            disabled_at: r.disabled_at.map(at).transpose()?,
            previous_secret_hash: r.previous_secret_hash,
            previous_secret_expires_at: r.previous_secret_expires_at.map(at).transpose()?,
            admin: r.admin,
            key_source: KeySource::from_columns(&r.auth_method, r.jwks_uri, r.jwks)?,
        })
    }
}

#[derive(FromRow)]
pub(super) struct SessionRow {
    id: String,
    user_id: String,
    client_id: String,
    scope: String,
    created_at: i64,
    last_used_at: i64,
    expires_at: i64,
    generation: i64,
    rotated_at: i64,
    revoked_at: Option<i64>,
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

impl TryFrom<SessionRow> for SessionRecord {
    type Error = StoreError;
    fn try_from(r: SessionRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: SessionId(uuid(&r.id)?),
            user_id: UserId(uuid(&r.user_id)?),
            client_id: ClientId(uuid(&r.client_id)?),
            // Stored only after parsing; a row edited by hand into nonsense
            // grants nothing rather than something unintended.
            scope: Scope::parse(&r.scope).unwrap_or_default(),
            created_at: at(r.created_at)?,
            last_used_at: at(r.last_used_at)?,
            expires_at: at(r.expires_at)?,
            generation: r.generation,
            rotated_at: at(r.rotated_at)?,
            revoked_at: r.revoked_at.map(at).transpose()?,
            revoked_reason: r.revoked_reason,
            dpop_jkt: r.dpop_jkt,
        })
    }
}

#[derive(FromRow)]
pub(super) struct RotatedRow {
    #[sqlx(flatten)]
    session: SessionRow,
    since_rotation_ms: i64,
}

impl TryFrom<RotatedRow> for RotatedSession {
    type Error = StoreError;
    fn try_from(r: RotatedRow) -> Result<Self, StoreError> {
        Ok(Self {
            session: r.session.try_into()?,
            since_rotation: chrono::Duration::milliseconds(r.since_rotation_ms),
        })
    }
}

#[derive(FromRow)]
pub(super) struct AuditRow {
    at: i64,
    kind: String,
    user_id: Option<String>,
    client_id: Option<String>,
    session_id: Option<String>,
    reason: Option<String>,
    address: Option<String>,
}

impl TryFrom<AuditRow> for AuditEvent {
    type Error = StoreError;
    fn try_from(r: AuditRow) -> Result<Self, StoreError> {
        Ok(Self {
            at: at(r.at)?,
            kind: r.kind,
            user_id: r.user_id.as_deref().map(uuid).transpose()?.map(UserId),
            client_id: r.client_id.as_deref().map(uuid).transpose()?.map(ClientId),
            session_id: r
                .session_id
                .as_deref()
                .map(uuid)
                .transpose()?
                .map(SessionId),
            reason: r.reason,
            address: r.address,
        })
    }
}

#[derive(FromRow)]
pub(super) struct FailureRow {
    failures: i64,
    window_started_at: i64,
    lockouts: i64,
    locked_until: Option<i64>,
}

impl TryFrom<FailureRow> for FailureCount {
    type Error = StoreError;

    fn try_from(r: FailureRow) -> Result<Self, StoreError> {
        Ok(Self {
            failures: r.failures,
            window_started_at: at(r.window_started_at)?,
            lockouts: r.lockouts,
            locked_until: r.locked_until.map(at).transpose()?,
        })
    }
}

#[derive(FromRow)]
pub(super) struct BrowserSessionRow {
    id_hash: String,
    user_id: String,
    auth_time: i64,
    credentials_version: i64,
    last_seen_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
}

impl TryFrom<BrowserSessionRow> for BrowserSessionRecord {
    type Error = StoreError;
    fn try_from(r: BrowserSessionRow) -> Result<Self, StoreError> {
        Ok(Self {
            id_hash: r.id_hash,
            user_id: UserId(uuid(&r.user_id)?),
            auth_time: at(r.auth_time)?,
            credentials_version: r.credentials_version,
            last_seen_at: at(r.last_seen_at)?,
            expires_at: at(r.expires_at)?,
            revoked_at: r.revoked_at.map(at).transpose()?,
        })
    }
}

#[derive(FromRow)]
pub(super) struct CodeRow {
    code_hash: String,
    client_id: String,
    user_id: String,
    redirect_uri: String,
    code_challenge: String,
    nonce: Option<String>,
    scope: String,
    auth_time: i64,
    credentials_version: i64,
    expires_at: i64,
    used_at: Option<i64>,
    session_id: Option<String>,
    dpop_jkt: Option<String>,
}

impl TryFrom<CodeRow> for AuthorizationCodeRecord {
    type Error = StoreError;
    fn try_from(r: CodeRow) -> Result<Self, StoreError> {
        Ok(Self {
            code_hash: r.code_hash,
            client_id: ClientId(uuid(&r.client_id)?),
            user_id: UserId(uuid(&r.user_id)?),
            redirect_uri: r.redirect_uri,
            code_challenge: r.code_challenge,
            nonce: r.nonce,
            scope: r.scope,
            auth_time: at(r.auth_time)?,
            credentials_version: r.credentials_version,
            expires_at: at(r.expires_at)?,
            used_at: r.used_at.map(at).transpose()?,
            session_id: r
                .session_id
                .as_deref()
                .map(uuid)
                .transpose()?
                .map(SessionId),
            dpop_jkt: r.dpop_jkt,
        })
    }
}

#[derive(FromRow)]
pub(super) struct ConsentRow {
    user_id: String,
    client_id: String,
    scope: String,
    granted_at: i64,
}

impl TryFrom<ConsentRow> for ConsentRecord {
    type Error = StoreError;
    fn try_from(r: ConsentRow) -> Result<Self, StoreError> {
        Ok(Self {
            user_id: UserId(uuid(&r.user_id)?),
            client_id: ClientId(uuid(&r.client_id)?),
            scope: r.scope,
            granted_at: at(r.granted_at)?,
        })
    }
}

#[derive(FromRow)]
pub(super) struct OutboxRow {
    id: String,
    recipient: String,
    subject: String,
    body_text: String,
    body_html: String,
    created_at: i64,
    attempts: i64,
    claim: String,
    request: Option<String>,
}

impl TryFrom<OutboxRow> for ClaimedMail {
    type Error = StoreError;
    fn try_from(r: OutboxRow) -> Result<Self, StoreError> {
        Ok(Self {
            message: MailMessage {
                id: uuid(&r.id)?,
                recipient: r.recipient,
                subject: r.subject,
                body_text: r.body_text,
                body_html: r.body_html,
                created_at: at(r.created_at)?,
            },
            attempts: r.attempts,
            claim: uuid(&r.claim)?,
            request: r.request.as_deref().and_then(TokenPurpose::from_stored),
        })
    }
}
