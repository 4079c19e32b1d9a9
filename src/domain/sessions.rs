//! Sessions: listing, revocation (one, all of a user's, by token), logout,
//! introspection, and the background purge of ended sessions.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};

use super::audit::trace_audit;
use super::error::DomainError;
use super::types::{ClientId, SessionId, UserId};
use super::verify::VerifiedAccess;
use super::Services;
use crate::store::AuditKind;
use crate::store::RevokeReason;
use crate::store::{AuditEvent, ClientRecord, SessionRecord};
use crate::telemetry::names;
use crate::tokens::claims::Confirmation;
use crate::tokens::jwt::{self, ACCESS_TOKEN_TYP};
use crate::tokens::refresh::{self, RefreshParseError};

/// What introspection reports about an active token (RFC 7662 §2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Introspection {
    /// The user's id, or the client's own for a client_credentials token.
    pub sub: String,
    pub client_id: String,
    pub scope: String,
    /// Seconds since the epoch; for a refresh token, when its session ends
    /// (`session_end`).
    pub exp: i64,
    /// Seconds since the epoch; for a refresh token, its session's last
    /// rotation.
    pub iat: i64,
    pub iss: String,
    /// `aud`, for access tokens.
    pub aud: Option<String>,
    /// `jti`, for access tokens.
    pub jti: Option<String>,
    /// `None` for a client_credentials token, which has no session.
    pub sid: Option<String>,
    /// `Bearer`, `DPoP` (a DPoP-bound access token) or `refresh_token`.
    pub token_type: &'static str,
    /// RFC 9449 §6.2: the key a DPoP-bound access token, or a bound
    /// session's refresh token, must be presented with.
    pub cnf: Option<Confirmation>,
}

impl Services {
    /// The caller's live sessions.
    ///
    /// # Errors
    /// Store failures.
    pub async fn list_sessions(&self, user: UserId) -> Result<Vec<SessionRecord>, DomainError> {
        let now = self.now();
        Ok(self
            .store
            .list_user_sessions(user, now, self.idle_cutoff(now))
            .await?)
    }

    /// Revokes one of the caller's sessions. Someone else's session is
    /// `NotFound`, exactly like a session that does not exist. `address` is
    /// the caller's, for the audit record.
    ///
    /// # Errors
    /// `NotFound`; store failures.
    pub async fn revoke_own_session(
        &self,
        user: UserId,
        sid: SessionId,
        address: Option<&str>,
    ) -> Result<(), DomainError> {
        let session = self
            .store
            .find_session(sid)
            .await?
            .filter(|s| s.user_id == user)
            .ok_or(DomainError::NotFound)?;
        if session.revoked_at.is_some() {
            return Err(DomainError::NotFound);
        }
        self.revoke(&session, RevokeReason::RevokedByUser, "user", address)
            .await
            .map(|_| ())
    }

    /// Revokes `session` and, when this call revoked it, writes one audit
    /// record saying why, by whom and from where.
    async fn revoke(
        &self,
        session: &SessionRecord,
        reason: RevokeReason,
        by: &str,
        address: Option<&str>,
    ) -> Result<bool, DomainError> {
        let ev = AuditEvent::new(AuditKind::SessionRevoked, self.now())
            .user(session.user_id)
            .client(session.client_id)
            .session(session.id)
            .reason(format!("{} by {by}", reason.as_str()))
            .address(address);
        let revoked = self.store.revoke_session(session.id, reason, &ev).await?;
        if revoked {
            trace_audit(&ev);
        }
        Ok(revoked)
    }

    /// Revokes every session of a user (`users revoke-sessions`).
    ///
    /// # Errors
    /// `NotFound` for an unknown user; store failures.
    pub async fn revoke_user_sessions(&self, user: UserId, by: &str) -> Result<u64, DomainError> {
        self.store
            .find_user(user)
            .await?
            .ok_or(DomainError::NotFound)?;
        let ev = AuditEvent::new(AuditKind::SessionsRevoked, self.now())
            .user(user)
            .reason(format!("all sessions revoked by {by}"));
        let n = self
            .store
            .revoke_user_sessions(user, None, RevokeReason::RevokedByAdmin, &ev)
            .await?;
        trace_audit(&ev);
        Ok(n)
    }

    /// RFC 7009 revocation by `client`: a refresh token or an access token
    /// revokes its whole session. Unknown tokens, tokens of other clients and
    /// already revoked sessions are ignored (§2.2: the answer is 200 either
    /// way, so nothing can be learnt by probing).
    ///
    /// # Errors
    /// Store failures only.
    pub async fn revoke_token(
        &self,
        client: ClientId,
        token: &str,
        address: Option<&str>,
    ) -> Result<(), DomainError> {
        let Some(sid) = self.session_of_token(token).await else {
            return Ok(());
        };
        if let Some(session) = self.store.find_session(sid).await? {
            if session.client_id == client && session.revoked_at.is_none() {
                self.revoke(&session, RevokeReason::RevokedByClient, "rfc7009", address)
                    .await?;
            }
        }
        Ok(())
    }

    /// Logout with a refresh token alone; idempotent.
    ///
    /// # Errors
    /// `InvalidRequest` for a string that is not a refresh token; store
    /// failures.
    pub async fn logout_with_refresh_token(
        &self,
        token: &str,
        address: Option<&str>,
    ) -> Result<(), DomainError> {
        let parsed = match self.refresh_secret.parse(token) {
            Ok(p) => p,
            Err(RefreshParseError::Malformed) => {
                return Err(DomainError::InvalidRequest("malformed refresh token"))
            }
            Err(RefreshParseError::Forged) => return Ok(()),
        };
        if let Some(session) = self.store.find_session(parsed.sid).await? {
            if session.revoked_at.is_none() {
                self.revoke(&session, RevokeReason::Logout, "user", address)
                    .await?;
            }
        }
        Ok(())
    }

    /// The client whose session a refresh token belongs to: what a
    /// cookie-borne refresh token is checked against (its allowed origins).
    /// `None` for a malformed or forged token or an unknown session.
    ///
    /// # Errors
    /// Store failures.
    pub async fn client_of_refresh_token(
        &self,
        token: &str,
    ) -> Result<Option<Arc<ClientRecord>>, DomainError> {
        let Ok(parsed) = self.refresh_secret.parse(token) else {
            return Ok(None);
        };
        match self.store.find_session(parsed.sid).await? {
            Some(session) => self.find_client(session.client_id).await,
            None => Ok(None),
        }
    }

    /// Whether a refresh token may be used beside `access`, a live access
    /// token of the same browser: false only when both check out and name
    /// different sessions. An access token that does not verify (expired,
    /// revoked, garbage) binds nothing.
    ///
    /// # Errors
    /// Store failures.
    pub async fn refresh_fits_access(
        &self,
        refresh: &str,
        access: &str,
    ) -> Result<bool, DomainError> {
        let Ok(parsed) = self.refresh_secret.parse(refresh) else {
            return Ok(true);
        };
        match self.verify_own_access_token(access).await {
            Ok(v) => Ok(v.session_id.is_none_or(|sid| sid == parsed.sid)),
            Err(DomainError::Store(e)) => Err(DomainError::Store(e)),
            Err(_) => Ok(true),
        }
    }

    /// Logout with a verified access token; idempotent.
    ///
    /// # Errors
    /// Store failures.
    pub async fn logout_with_access(
        &self,
        access: &VerifiedAccess,
        address: Option<&str>,
    ) -> Result<(), DomainError> {
        let Some(sid) = access.session_id else {
            return Ok(());
        };
        if let Some(session) = self.store.find_session(sid).await? {
            if session.revoked_at.is_none() {
                self.revoke(&session, RevokeReason::Logout, "user", address)
                    .await?;
            }
        }
        Ok(())
    }

    /// The session a refresh or access token belongs to, when its signature
    /// or MAC checks out (expiry does not matter for revocation).
    async fn session_of_token(&self, token: &str) -> Option<SessionId> {
        if token.starts_with(refresh::PREFIX) {
            return self.refresh_secret.parse(token).ok().map(|p| p.sid);
        }
        let header = jwt::peek_header(token, ACCESS_TOKEN_TYP).ok()?;
        let key = self
            .keys
            .verification_key(&header.kid, header.alg, self.now())?;
        // Revocation accepts an expired token: ending its session is harmless.
        let claims: crate::tokens::claims::AccessClaims = jwt::verify(
            token,
            &key.decoding,
            key.algorithm(),
            &self.policy.issuer,
            None,
            self.now().timestamp(),
            i64::MAX,
        )
        .ok()?;
        claims.sid.as_deref().and_then(SessionId::parse)
    }

    /// RFC 7662 introspection on behalf of `caller`: `None` means
    /// `{"active": false}`. A caller learns about a token only when it is the
    /// token's client, the token is for the caller's registered audience, or
    /// the caller holds the introspection permission (RFC 7662 §4); to anyone
    /// else every token is inactive, so nothing tells the cases apart.
    ///
    /// # Errors
    /// Store failures.
    pub async fn introspect(
        &self,
        caller: &ClientRecord,
        token: &str,
    ) -> Result<Option<Introspection>, DomainError> {
        let Some(found) = self.introspect_any(token).await? else {
            return Ok(None);
        };
        let own = found.client_id == caller.id.to_string();
        let audience = match (&found.aud, &caller.audience) {
            (Some(token_aud), Some(caller_aud)) => token_aud == caller_aud,
            _ => false,
        };
        Ok((caller.introspect || own || audience).then_some(found))
    }

    async fn introspect_any(&self, token: &str) -> Result<Option<Introspection>, DomainError> {
        if token.starts_with(refresh::PREFIX) {
            return self.introspect_refresh(token).await;
        }
        match self.verify_access_token(token).await {
            Ok(v) => Ok(Some(Introspection {
                sub: v.claims.sub,
                client_id: v.claims.client_id,
                scope: v.claims.scope,
                exp: v.claims.exp,
                iat: v.claims.iat,
                iss: v.claims.iss,
                aud: Some(v.claims.aud),
                jti: Some(v.claims.jti),
                sid: v.claims.sid,
                token_type: if v.claims.cnf.is_some() {
                    "DPoP"
                } else {
                    "Bearer"
                },
                cnf: v.claims.cnf,
            })),
            Err(DomainError::Store(e)) => Err(DomainError::Store(e)),
            Err(_) => Ok(None),
        }
    }

    async fn introspect_refresh(&self, token: &str) -> Result<Option<Introspection>, DomainError> {
        let Ok(parsed) = self.refresh_secret.parse(token) else {
            return Ok(None);
        };
        // One round trip: the session and its user's status together.
        let Some((session, user_disabled)) =
            self.store.find_session_with_user_status(parsed.sid).await?
        else {
            return Ok(None);
        };
        let now = self.now();
        let live = session.revoked_at.is_none()
            && session.expires_at > now
            && session.last_used_at > self.idle_cutoff(now)
            && parsed.generation == session.generation;
        if !live || user_disabled {
            return Ok(None);
        }
        let end = self.session_end(&session);
        Ok(Some(Introspection {
            sub: session.user_id.to_string(),
            client_id: session.client_id.to_string(),
            scope: session.scope.to_string(),
            exp: end.timestamp(),
            iat: session.rotated_at.timestamp(),
            iss: self.policy.issuer.clone(),
            aud: None,
            jti: None,
            sid: Some(session.id.to_string()),
            token_type: "refresh_token",
            cnf: session.dpop_jkt.map(|jkt| Confirmation { jkt }),
        }))
    }

    /// Deletes failed-login counters that no longer matter: their window
    /// ended, and any lock ended long enough ago that it no longer doubles
    /// the next one. Mistyped emails (and passwords typed into the email
    /// field) do not stay in the database forever.
    async fn purge_login_failures(&self, batch: i64) -> Result<(), DomainError> {
        let now = self.now();
        let t = &self.policy.throttle;
        // Mail-request counters share the table: their window counts too.
        let window = t
            .account
            .window_secs
            .max(t.address.window_secs)
            .max(t.signup.window_secs)
            .max(self.policy.mail.request_window_secs);
        let quiet = t.account.max_lockout_secs.max(window);
        loop {
            let n = self
                .store
                .purge_login_failures(
                    now - Duration::seconds(window),
                    now - Duration::seconds(quiet),
                    batch,
                )
                .await?;
            if n < batch as u64 {
                return Ok(());
            }
            tokio::time::sleep(StdDuration::from_millis(10)).await;
        }
    }

    /// Deletes remembered JWT ids (proofs, assertions) whose time window has
    /// closed: a replay of one would be refused for its age anyway.
    async fn purge_used_jtis(&self, now: DateTime<Utc>, batch: i64) -> Result<(), DomainError> {
        loop {
            let n = self.store.purge_used_jtis(now, batch).await?;
            if n < batch as u64 {
                return Ok(());
            }
            tokio::time::sleep(StdDuration::from_millis(10)).await;
        }
    }

    /// Deletes ended sessions in bounded batches until none are left.
    /// Revoked sessions are kept until their access tokens have expired, so
    /// the session list and audit trail stay readable meanwhile.
    ///
    /// # Errors
    /// Store failures.
    pub async fn purge_once(&self) -> Result<u64, DomainError> {
        let now = self.now();
        let idle_cutoff = self.idle_cutoff(now);
        let revoked_before = now - self.policy.tokens.access_token_ttl - self.policy.tokens.leeway;
        let batch = self.policy.sessions.purge_batch_size;
        let mut total = 0;
        loop {
            let n = self
                .store
                .purge_sessions(now, idle_cutoff, revoked_before, batch)
                .await?;
            total += n;
            if n < batch as u64 {
                self.purge_login_failures(batch).await?;
                self.purge_used_jtis(now, batch).await?;
                self.metrics.count(
                    names::PURGED,
                    vec![metrics::Label::new("what", "sessions")],
                    total,
                );
                return Ok(total);
            }
            // Yield between batches so the purge never monopolises the store.
            tokio::time::sleep(StdDuration::from_millis(10)).await;
        }
    }
}
