//! `MeteredStore`: a decorator that times every store operation and counts
//! its failures into the application's metrics, so operators see how long
//! the database takes (pool wait included) and which operations fail, for
//! either backend, without a line of metrics code in the backends. It changes
//! no behaviour: every call and every result passes through untouched.
//! A method added to `Store` is added here too, as one more delegation.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{
    AuditEvent, AuditStore, AuthorizationCodeRecord, AuthorizationStore, BrowserSessionRecord,
    ClaimedMail, ClientRecord, ClientStore, ConsentRecord, EmailTokenRecord, FailureCount,
    KeyStore, Lockout, MailMessage, OutboxCounts, OutboxStore, PageAfter, PoolStats, RecoveryStore,
    ReplayStore, RotatedSession, SealedSecret, SessionRecord, SessionStatus, SessionStore,
    SigningKeyRecord, Store, StoreError, ThrottleStore, TokenPurpose, UserRecord, UserStore,
};
use crate::ids::{ClientId, SessionId, UserId};
use crate::store::RevokeReason;
use crate::telemetry::Metrics;

/// A `Store` that records latency and failures of the store it wraps.
#[derive(Debug)]
pub struct MeteredStore {
    inner: Arc<dyn Store>,
    metrics: Metrics,
}

impl MeteredStore {
    /// Wraps `inner`, recording into `metrics`.
    pub fn wrap(inner: Arc<dyn Store>, metrics: Metrics) -> Arc<dyn Store> {
        Arc::new(Self { inner, metrics })
    }

    async fn timed<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let out = call.await;
        let failure = out.as_ref().err().and_then(failure_kind);
        self.metrics
            .store_operation(operation, started.elapsed().as_secs_f64(), failure);
        out
    }
}

/// The failures worth an operator's attention. `NotFound` and `Conflict` are
/// answers (an unknown user, an email already taken), not faults.
fn failure_kind(e: &StoreError) -> Option<&'static str> {
    match e {
        StoreError::NotFound | StoreError::Conflict => None,
        StoreError::Unavailable(_) => Some("unavailable"),
        StoreError::Backend(_) => Some("backend"),
        StoreError::Migrate(_) => Some("migrate"),
        StoreError::Corrupt(_) => Some("corrupt"),
    }
}

#[async_trait]
impl Store for MeteredStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        self.timed("migrate", self.inner.migrate()).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.timed("ping", self.inner.ping()).await
    }

    async fn close(&self) {
        self.inner.close().await;
    }

    fn pool_stats(&self) -> PoolStats {
        self.inner.pool_stats()
    }
}

#[async_trait]
impl UserStore for MeteredStore {
    async fn insert_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        self.timed("insert_user", self.inner.insert_user(user))
            .await
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        self.timed("find_user_by_email", self.inner.find_user_by_email(email))
            .await
    }

    async fn find_user(&self, id: UserId) -> Result<Option<UserRecord>, StoreError> {
        self.timed("find_user", self.inner.find_user(id)).await
    }

    async fn page_users(
        &self,
        after: Option<PageAfter<UserId>>,
        email_prefix: Option<&str>,
        limit: i64,
    ) -> Result<Vec<UserRecord>, StoreError> {
        self.timed(
            "page_users",
            self.inner.page_users(after, email_prefix, limit),
        )
        .await
    }

    async fn set_user_disabled(
        &self,
        id: UserId,
        disabled: bool,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        self.timed(
            "set_user_disabled",
            self.inner.set_user_disabled(id, disabled, audit),
        )
        .await
    }

    async fn update_password(
        &self,
        id: UserId,
        password_hash: &str,
        expected_version: Option<i64>,
        keep: Option<SessionId>,
        audit: &AuditEvent,
    ) -> Result<u64, StoreError> {
        self.timed(
            "update_password",
            self.inner
                .update_password(id, password_hash, expected_version, keep, audit),
        )
        .await
    }

    async fn upgrade_password_hash(
        &self,
        id: UserId,
        old_hash: &str,
        new_hash: &str,
    ) -> Result<bool, StoreError> {
        self.timed(
            "upgrade_password_hash",
            self.inner.upgrade_password_hash(id, old_hash, new_hash),
        )
        .await
    }
}

#[async_trait]
impl ClientStore for MeteredStore {
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        self.timed("insert_client", self.inner.insert_client(client))
            .await
    }

    async fn find_client(&self, id: ClientId) -> Result<Option<ClientRecord>, StoreError> {
        self.timed("find_client", self.inner.find_client(id)).await
    }

    async fn list_browser_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        self.timed("list_browser_clients", self.inner.list_browser_clients())
            .await
    }

    async fn clients_version(&self) -> Result<i64, StoreError> {
        self.timed("clients_version", self.inner.clients_version())
            .await
    }

    async fn list_clients(
        &self,
        after: Option<ClientId>,
        limit: i64,
    ) -> Result<Vec<ClientRecord>, StoreError> {
        self.timed("list_clients", self.inner.list_clients(after, limit))
            .await
    }

    async fn page_clients(
        &self,
        after: Option<PageAfter<ClientId>>,
        limit: i64,
    ) -> Result<Vec<ClientRecord>, StoreError> {
        self.timed("page_clients", self.inner.page_clients(after, limit))
            .await
    }

    async fn update_client(
        &self,
        client: &ClientRecord,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        self.timed("update_client", self.inner.update_client(client, audit))
            .await
    }

    async fn set_client_disabled(
        &self,
        id: ClientId,
        disabled_at: Option<DateTime<Utc>>,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        self.timed(
            "set_client_disabled",
            self.inner.set_client_disabled(id, disabled_at, audit),
        )
        .await
    }

    async fn delete_client(&self, id: ClientId, audit: &AuditEvent) -> Result<u64, StoreError> {
        self.timed("delete_client", self.inner.delete_client(id, audit))
            .await
    }

    async fn update_client_secret(
        &self,
        id: ClientId,
        secret_hash: &[u8],
        previous_until: Option<DateTime<Utc>>,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        self.timed(
            "update_client_secret",
            self.inner
                .update_client_secret(id, secret_hash, previous_until, audit),
        )
        .await
    }
}

#[async_trait]
impl SessionStore for MeteredStore {
    async fn start_session(
        &self,
        session: &SessionRecord,
        credentials_version: i64,
    ) -> Result<bool, StoreError> {
        self.timed(
            "start_session",
            self.inner.start_session(session, credentials_version),
        )
        .await
    }

    async fn find_session(&self, id: SessionId) -> Result<Option<SessionRecord>, StoreError> {
        self.timed("find_session", self.inner.find_session(id))
            .await
    }

    async fn rotate_session(
        &self,
        id: SessionId,
        client_id: ClientId,
        generation: i64,
        dpop_jkt: Option<&str>,
        now: DateTime<Utc>,
        idle_cutoff: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>, StoreError> {
        self.timed(
            "rotate_session",
            self.inner
                .rotate_session(id, client_id, generation, dpop_jkt, now, idle_cutoff),
        )
        .await
    }

    async fn find_rotated_session(
        &self,
        id: SessionId,
    ) -> Result<Option<RotatedSession>, StoreError> {
        self.timed("find_rotated_session", self.inner.find_rotated_session(id))
            .await
    }

    async fn revoke_session(
        &self,
        id: SessionId,
        reason: RevokeReason,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        self.timed(
            "revoke_session",
            self.inner.revoke_session(id, reason, audit),
        )
        .await
    }

    async fn revoke_user_sessions(
        &self,
        user: UserId,
        except: Option<SessionId>,
        reason: RevokeReason,
        audit: &AuditEvent,
    ) -> Result<u64, StoreError> {
        self.timed(
            "revoke_user_sessions",
            self.inner.revoke_user_sessions(user, except, reason, audit),
        )
        .await
    }

    async fn list_user_sessions(
        &self,
        user: UserId,
        now: DateTime<Utc>,
        idle_cutoff: DateTime<Utc>,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        self.timed(
            "list_user_sessions",
            self.inner.list_user_sessions(user, now, idle_cutoff),
        )
        .await
    }

    async fn session_status(&self, id: SessionId) -> Result<Option<SessionStatus>, StoreError> {
        self.timed("session_status", self.inner.session_status(id))
            .await
    }

    async fn find_session_with_user_status(
        &self,
        id: SessionId,
    ) -> Result<Option<(SessionRecord, bool)>, StoreError> {
        self.timed(
            "find_session_with_user_status",
            self.inner.find_session_with_user_status(id),
        )
        .await
    }

    async fn purge_sessions(
        &self,
        now: DateTime<Utc>,
        idle_cutoff: DateTime<Utc>,
        revoked_before: DateTime<Utc>,
        batch: i64,
    ) -> Result<u64, StoreError> {
        self.timed(
            "purge_sessions",
            self.inner
                .purge_sessions(now, idle_cutoff, revoked_before, batch),
        )
        .await
    }
}

#[async_trait]
impl AuditStore for MeteredStore {
    async fn insert_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        self.timed("insert_audit", self.inner.insert_audit(event))
            .await
    }

    async fn list_audit(
        &self,
        user: Option<UserId>,
        since: Option<DateTime<Utc>>,
        limit: i64,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        self.timed("list_audit", self.inner.list_audit(user, since, limit))
            .await
    }

    async fn purge_audit(&self, before: DateTime<Utc>, batch: i64) -> Result<u64, StoreError> {
        self.timed("purge_audit", self.inner.purge_audit(before, batch))
            .await
    }
}

#[async_trait]
impl ThrottleStore for MeteredStore {
    async fn reserve_login_attempt(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window_secs: i64,
    ) -> Result<FailureCount, StoreError> {
        self.timed(
            "reserve_login_attempt",
            self.inner.reserve_login_attempt(key, now, window_secs),
        )
        .await
    }

    async fn login_failures(&self, key: &str) -> Result<Option<FailureCount>, StoreError> {
        self.timed("login_failures", self.inner.login_failures(key))
            .await
    }

    async fn lock_login_failures(&self, key: &str, lock: &Lockout) -> Result<bool, StoreError> {
        self.timed(
            "lock_login_failures",
            self.inner.lock_login_failures(key, lock),
        )
        .await
    }

    async fn release_login_attempt(&self, key: &str) -> Result<(), StoreError> {
        self.timed(
            "release_login_attempt",
            self.inner.release_login_attempt(key),
        )
        .await
    }

    async fn purge_login_failures(
        &self,
        window_before: DateTime<Utc>,
        quiet_before: DateTime<Utc>,
        batch: i64,
    ) -> Result<u64, StoreError> {
        self.timed(
            "purge_login_failures",
            self.inner
                .purge_login_failures(window_before, quiet_before, batch),
        )
        .await
    }

    async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError> {
        self.timed("clear_login_failures", self.inner.clear_login_failures(key))
            .await
    }
}

#[async_trait]
impl AuthorizationStore for MeteredStore {
    async fn insert_browser_session(&self, s: &BrowserSessionRecord) -> Result<(), StoreError> {
        self.timed(
            "insert_browser_session",
            self.inner.insert_browser_session(s),
        )
        .await
    }

    async fn touch_browser_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
        idle_cutoff: DateTime<Utc>,
    ) -> Result<Option<BrowserSessionRecord>, StoreError> {
        self.timed(
            "touch_browser_session",
            self.inner.touch_browser_session(id_hash, now, idle_cutoff),
        )
        .await
    }

    async fn end_browser_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.timed(
            "end_browser_session",
            self.inner.end_browser_session(id_hash, now),
        )
        .await
    }

    async fn insert_authorization_code(
        &self,
        code: &AuthorizationCodeRecord,
    ) -> Result<(), StoreError> {
        self.timed(
            "insert_authorization_code",
            self.inner.insert_authorization_code(code),
        )
        .await
    }

    async fn find_authorization_code(
        &self,
        code_hash: &str,
    ) -> Result<Option<AuthorizationCodeRecord>, StoreError> {
        self.timed(
            "find_authorization_code",
            self.inner.find_authorization_code(code_hash),
        )
        .await
    }

    async fn consume_authorization_code(
        &self,
        code_hash: &str,
        session: SessionId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.timed(
            "consume_authorization_code",
            self.inner
                .consume_authorization_code(code_hash, session, now),
        )
        .await
    }

    async fn upsert_consent(&self, consent: &ConsentRecord) -> Result<(), StoreError> {
        self.timed("upsert_consent", self.inner.upsert_consent(consent))
            .await
    }

    async fn find_consent(
        &self,
        user: UserId,
        client: ClientId,
    ) -> Result<Option<ConsentRecord>, StoreError> {
        self.timed("find_consent", self.inner.find_consent(user, client))
            .await
    }

    async fn list_consents(&self, user: UserId) -> Result<Vec<ConsentRecord>, StoreError> {
        self.timed("list_consents", self.inner.list_consents(user))
            .await
    }

    async fn delete_consent(
        &self,
        user: UserId,
        client: ClientId,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        self.timed(
            "delete_consent",
            self.inner.delete_consent(user, client, audit),
        )
        .await
    }
}

#[async_trait]
impl RecoveryStore for MeteredStore {
    async fn insert_email_token(
        &self,
        token: &EmailTokenRecord,
        mail: &MailMessage,
    ) -> Result<(), StoreError> {
        self.timed(
            "insert_email_token",
            self.inner.insert_email_token(token, mail),
        )
        .await
    }

    async fn find_email_token(
        &self,
        digest: &[u8],
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<Option<UserId>, StoreError> {
        self.timed(
            "find_email_token",
            self.inner.find_email_token(digest, purpose, now),
        )
        .await
    }

    async fn consume_email_token(
        &self,
        digest: &[u8],
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<Option<UserId>, StoreError> {
        self.timed(
            "consume_email_token",
            self.inner.consume_email_token(digest, purpose, now),
        )
        .await
    }

    async fn verify_email_with_token(
        &self,
        digest: &[u8],
        now: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<Option<UserId>, StoreError> {
        self.timed(
            "verify_email_with_token",
            self.inner.verify_email_with_token(digest, now, audit),
        )
        .await
    }

    async fn set_email_verified(&self, id: UserId, audit: &AuditEvent) -> Result<(), StoreError> {
        self.timed(
            "set_email_verified",
            self.inner.set_email_verified(id, audit),
        )
        .await
    }

    async fn purge_email_tokens(
        &self,
        before: DateTime<Utc>,
        batch: i64,
    ) -> Result<u64, StoreError> {
        self.timed(
            "purge_email_tokens",
            self.inner.purge_email_tokens(before, batch),
        )
        .await
    }
}

#[async_trait]
impl OutboxStore for MeteredStore {
    async fn enqueue_mail(&self, mail: &MailMessage) -> Result<(), StoreError> {
        self.timed("enqueue_mail", self.inner.enqueue_mail(mail))
            .await
    }

    async fn enqueue_mail_request(
        &self,
        id: uuid::Uuid,
        email: &str,
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.timed(
            "enqueue_mail_request",
            self.inner.enqueue_mail_request(id, email, purpose, now),
        )
        .await
    }

    async fn resolve_mail_request(
        &self,
        claim: uuid::Uuid,
        token: &EmailTokenRecord,
        mail: &MailMessage,
    ) -> Result<bool, StoreError> {
        self.timed(
            "resolve_mail_request",
            self.inner.resolve_mail_request(claim, token, mail),
        )
        .await
    }

    async fn drop_mail_request(
        &self,
        id: uuid::Uuid,
        claim: uuid::Uuid,
    ) -> Result<bool, StoreError> {
        self.timed("drop_mail_request", self.inner.drop_mail_request(id, claim))
            .await
    }

    async fn claim_mail(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        batch: i64,
    ) -> Result<Vec<ClaimedMail>, StoreError> {
        self.timed("claim_mail", self.inner.claim_mail(now, lease_until, batch))
            .await
    }

    async fn mark_mail_sent(
        &self,
        id: uuid::Uuid,
        claim: uuid::Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.timed("mark_mail_sent", self.inner.mark_mail_sent(id, claim, now))
            .await
    }

    async fn mark_mail_failed(
        &self,
        id: uuid::Uuid,
        claim: uuid::Uuid,
        now: DateTime<Utc>,
        retry_at: Option<DateTime<Utc>>,
        error: &str,
    ) -> Result<bool, StoreError> {
        self.timed(
            "mark_mail_failed",
            self.inner.mark_mail_failed(id, claim, now, retry_at, error),
        )
        .await
    }

    async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        self.timed("outbox_counts", self.inner.outbox_counts())
            .await
    }

    async fn purge_outbox(&self, before: DateTime<Utc>, batch: i64) -> Result<u64, StoreError> {
        self.timed("purge_outbox", self.inner.purge_outbox(before, batch))
            .await
    }
}

#[async_trait]
impl ReplayStore for MeteredStore {
    async fn remember_jti(
        &self,
        namespace: &str,
        jti_digest: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.timed(
            "remember_jti",
            self.inner.remember_jti(namespace, jti_digest, expires_at),
        )
        .await
    }

    async fn purge_used_jtis(&self, before: DateTime<Utc>, batch: i64) -> Result<u64, StoreError> {
        self.timed("purge_used_jtis", self.inner.purge_used_jtis(before, batch))
            .await
    }
}

#[async_trait]
impl KeyStore for MeteredStore {
    async fn keys_version(&self) -> Result<i64, StoreError> {
        self.timed("keys_version", self.inner.keys_version()).await
    }

    async fn list_signing_keys(&self) -> Result<(i64, Vec<SigningKeyRecord>), StoreError> {
        self.timed("list_signing_keys", self.inner.list_signing_keys())
            .await
    }

    async fn find_key_secret(&self, name: &str) -> Result<Option<SealedSecret>, StoreError> {
        self.timed("find_key_secret", self.inner.find_key_secret(name))
            .await
    }

    async fn initialize_keys(
        &self,
        secret: &SealedSecret,
        keys: &[SigningKeyRecord],
    ) -> Result<bool, StoreError> {
        self.timed("initialize_keys", self.inner.initialize_keys(secret, keys))
            .await
    }

    async fn save_signing_keys(
        &self,
        expected: i64,
        keys: &[SigningKeyRecord],
        removed: &[String],
        secret: Option<&SealedSecret>,
    ) -> Result<(), StoreError> {
        self.timed(
            "save_signing_keys",
            self.inner
                .save_signing_keys(expected, keys, removed, secret),
        )
        .await
    }
}
