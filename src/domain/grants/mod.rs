//! The token endpoint's grants: password, refresh_token and
//! client_credentials. Refresh-token rotation is in `refresh`, token
//! issuance (access token, id_token, refresh token) in `issue`.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::audit::trace_audit;
use super::clients::{allows, ClientCredentials};
use super::dpop::{session_binding, DpopFailure, ProofInput};
use super::error::{DomainError, RefreshFailure};
use super::passwords::MAX_PASSWORD_BYTES;
use super::types::{ClientKind, Email, GrantType, Password, Scope, SessionId, UserId};
use super::Services;
use crate::store::{AuditEvent, ClientRecord, RotatedSession, SessionRecord};

pub use self::refresh::is_grace_replay;

mod issue;
mod refresh;
use crate::store::AuditKind;
use crate::tokens::claims::{AccessClaims, Confirmation, IdClaims};
use crate::tokens::jwt::{ACCESS_TOKEN_TYP, ID_TOKEN_TYP};
use crate::tokens::TokenPair;

/// A token request, as parsed from the form. `Debug` redacts the password
/// and the refresh token.
#[derive(Clone)]
pub enum GrantRequest {
    /// `grant_type=password`.
    Password {
        /// The user's email, in the field RFC 6749 §4.3.2 names `username`.
        username: String,
        password: Password,
        /// Space-separated; `None` or empty asks for all the client may have.
        scope: Option<String>,
    },
    /// `grant_type=refresh_token`.
    RefreshToken {
        /// The presented token (redacted from `Debug`).
        refresh_token: String,
        /// Requested (narrower) scope.
        scope: Option<String>,
    },
    /// `grant_type=client_credentials`.
    ClientCredentials {
        /// Space-separated; `None` or empty asks for all the client's scopes,
        /// `latchkey:admin` included for an admin client.
        scope: Option<String>,
    },
    /// `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.5).
    AuthorizationCode {
        /// The code (redacted from `Debug`).
        code: String,
        /// Must equal the authorization request's.
        redirect_uri: Option<String>,
        /// The PKCE verifier (redacted from `Debug`).
        code_verifier: Option<String>,
    },
}

impl std::fmt::Debug for GrantRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Password {
                username,
                password,
                scope,
            } => f
                .debug_struct("Password")
                .field("username", username)
                .field("password", password)
                .field("scope", scope)
                .finish(),
            Self::RefreshToken { scope, .. } => f
                .debug_struct("RefreshToken")
                .field("refresh_token", &"[redacted]")
                .field("scope", scope)
                .finish(),
            Self::ClientCredentials { scope } => f
                .debug_struct("ClientCredentials")
                .field("scope", scope)
                .finish(),
            Self::AuthorizationCode { redirect_uri, .. } => f
                .debug_struct("AuthorizationCode")
                .field("code", &"[redacted]")
                .field("redirect_uri", redirect_uri)
                .field("code_verifier", &"[redacted]")
                .finish(),
        }
    }
}

impl GrantRequest {
    /// Taken before the request is consumed, so the outcome can be counted
    /// per grant type.
    pub fn grant_type(&self) -> GrantType {
        match self {
            Self::Password { .. } => GrantType::Password,
            Self::RefreshToken { .. } => GrantType::RefreshToken,
            Self::ClientCredentials { .. } => GrantType::ClientCredentials,
            Self::AuthorizationCode { .. } => GrantType::AuthorizationCode,
        }
    }
}

/// How a refresh went, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// A new generation was issued.
    Rotated,
    /// The predecessor was replayed within grace; the newest token was
    /// handed out again.
    GraceReplay,
}

/// A successful grant.
#[derive(Debug, Clone)]
pub struct Granted {
    pub tokens: TokenPair,
    /// The authenticated client; the token endpoint answers in cookies when
    /// it is in cookie mode.
    pub client: Arc<ClientRecord>,
    /// For refresh grants, what happened.
    pub refresh: Option<RefreshOutcome>,
    /// The thumbprint of the DPoP key the access token is bound to, when
    /// the request carried a valid proof (`token_type` is then `DPoP`).
    pub dpop_jkt: Option<String>,
}

impl Services {
    /// Runs a grant. The client authenticates first; only then is the
    /// request's DPoP proof, if any, checked and its `jti` remembered
    /// (RFC 9449 §5), so a request that cannot authenticate writes nothing
    /// to the replay store, and a bad proof changes nothing but that. With a
    /// valid proof the access token is bound to its key, and so is a public
    /// client's new session.
    ///
    /// # Errors
    /// Every RFC 6749 §5.2 case, `DpopRefused`, throttling, and store
    /// failures.
    pub async fn grant(
        &self,
        creds: &ClientCredentials,
        request: GrantRequest,
        address: Option<&str>,
        proof: &ProofInput<'_>,
    ) -> Result<Granted, DomainError> {
        let grant = request.grant_type();
        let out = self
            .authenticated_grant(creds, request, address, proof)
            .await;
        self.record_grant(grant, &out);
        out
    }

    async fn authenticated_grant(
        &self,
        creds: &ClientCredentials,
        request: GrantRequest,
        address: Option<&str>,
        proof: &ProofInput<'_>,
    ) -> Result<Granted, DomainError> {
        let client = self.authenticate_client(creds).await?;
        let jkt = self.check_dpop(proof, false).await?;
        let mut granted = self
            .run_grant(client, request, address, jkt.as_deref())
            .await?;
        granted.dpop_jkt = jkt;
        Ok(granted)
    }

    async fn run_grant(
        &self,
        client: Arc<ClientRecord>,
        request: GrantRequest,
        address: Option<&str>,
        jkt: Option<&str>,
    ) -> Result<Granted, DomainError> {
        if client.require_dpop && jkt.is_none() {
            return Err(DomainError::DpopRefused(DpopFailure::Required));
        }
        match request {
            GrantRequest::Password {
                username,
                password,
                scope,
            } => {
                self.require_grant(&client, GrantType::Password)?;
                let tokens = self
                    .password_grant(&client, &username, password, scope.as_deref(), address, jkt)
                    .await?;
                Ok(Granted {
                    tokens,
                    client,
                    refresh: None,
                    dpop_jkt: None,
                })
            }
            GrantRequest::RefreshToken {
                refresh_token,
                scope,
            } => {
                self.require_grant(&client, GrantType::RefreshToken)?;
                let (tokens, outcome) = self
                    .refresh_grant(&client, &refresh_token, scope.as_deref(), address, jkt)
                    .await?;
                Ok(Granted {
                    tokens,
                    client,
                    refresh: Some(outcome),
                    dpop_jkt: None,
                })
            }
            GrantRequest::AuthorizationCode {
                code,
                redirect_uri,
                code_verifier,
            } => {
                self.require_grant(&client, GrantType::AuthorizationCode)?;
                let tokens = self
                    .authorization_code_grant(
                        &client,
                        &code,
                        redirect_uri.as_deref(),
                        code_verifier.as_deref(),
                        address,
                        jkt,
                    )
                    .await?;
                Ok(Granted {
                    tokens,
                    client,
                    refresh: None,
                    dpop_jkt: None,
                })
            }
            GrantRequest::ClientCredentials { scope } => {
                if client.kind != ClientKind::Confidential {
                    return Err(DomainError::UnauthorizedClient(
                        "client_credentials is for confidential clients",
                    ));
                }
                self.require_grant(&client, GrantType::ClientCredentials)?;
                let tokens = self
                    .client_credentials_grant(&client, scope.as_deref(), jkt)
                    .await?;
                Ok(Granted {
                    tokens,
                    client,
                    refresh: None,
                    dpop_jkt: None,
                })
            }
        }
    }

    fn require_grant(&self, client: &ClientRecord, grant: GrantType) -> Result<(), DomainError> {
        if allows(client, grant) {
            Ok(())
        } else {
            Err(DomainError::UnauthorizedClient(
                "the client is not allowed this grant type",
            ))
        }
    }

    /// `password`: one argon2 verification whether or not the user exists,
    /// so wrong email and wrong password look and time the same.
    async fn password_grant(
        &self,
        client: &ClientRecord,
        username: &str,
        password: Password,
        scope: Option<&str>,
        address: Option<&str>,
        jkt: Option<&str>,
    ) -> Result<TokenPair, DomainError> {
        let scope = granted_scope(client, scope)?;
        let user = self
            .login_with_password(client, username, password, address)
            .await?;
        let now = self.now();
        let session = SessionRecord {
            id: SessionId::new_random(),
            user_id: user.id,
            client_id: client.id,
            scope: scope.clone(),
            created_at: now,
            last_used_at: now,
            expires_at: now + self.policy.sessions.absolute_ttl,
            generation: 0,
            rotated_at: now,
            revoked_at: None,
            revoked_reason: None,
            dpop_jkt: session_binding(client, jkt),
        };
        // The credentials verified above may have changed while the hash
        // ran (a password change, a disable, every session revoked): the
        // store starts the session only if they are still current.
        if !self
            .store
            .start_session(&session, user.credentials_version)
            .await?
        {
            return Err(DomainError::InvalidCredentials);
        }
        let ev = AuditEvent::new(AuditKind::LoginSucceeded, now)
            .user(user.id)
            .client(client.id)
            .session(session.id)
            .address(address);
        self.insert_audit(&ev).await?;
        let with_id_token = scope.has("openid");
        self.user_tokens(
            client,
            &session,
            &scope,
            Some((&user.email, user.email_verified)),
            with_id_token,
            jkt,
            now,
        )
        .await
    }

    /// Checks an email and password: throttling before any hash, one bounded
    /// argon2 verification whether or not the user exists, one answer for
    /// unknown email, wrong password and disabled account. Shared by the
    /// password grant and the login page, so both have the same guarantees.
    ///
    /// # Errors
    /// `InvalidCredentials`, `Throttled`, `HashQueueFull`; store failures.
    pub async fn login_with_password(
        &self,
        client: &ClientRecord,
        username: &str,
        password: Password,
        address: Option<&str>,
    ) -> Result<crate::store::UserRecord, DomainError> {
        let email = Email::parse(username).ok_or(DomainError::InvalidCredentials)?;
        if password.0.len() > MAX_PASSWORD_BYTES {
            return Err(DomainError::InvalidCredentials);
        }
        self.reserve_login(&email, address).await?;
        let user = self.store.find_user_by_email(email.as_str()).await?;
        let stored = user.as_ref().map(|u| u.password_hash.clone());
        // Kept only when the stored hash will need an upgrade if it matches.
        let to_upgrade = stored
            .as_deref()
            .is_some_and(|h| self.passwords.is_weaker_than_configured(h))
            .then(|| password.0.clone());
        let password_ok = match self.passwords.verify(password.0, stored).await {
            Ok(ok) => ok,
            Err(err) => {
                // Nothing was verified (no hashing slot in time): the
                // attempt is given back rather than held against the user.
                self.give_back_login(&email, address).await?;
                return Err(err);
            }
        };
        let user = match user {
            Some(u) if password_ok && !u.disabled => u,
            other => {
                // The reserved attempt stands as the failure.
                let ev = AuditEvent::new(AuditKind::LoginFailed, self.now())
                    .user(other.map(|u| u.id))
                    .client(client.id)
                    .address(address);
                self.insert_audit(&ev).await?;
                return Err(DomainError::InvalidCredentials);
            }
        };
        self.release_login(&email, address).await?;
        if let Some(password) = to_upgrade {
            self.upgrade_password_hash(&user, password).await;
        }
        // Only after the password proved right, so the answer tells an
        // unverified address apart only to its owner.
        if self.policy.signup.require_verified_email && !user.email_verified {
            return Err(DomainError::EmailUnverified);
        }
        Ok(user)
    }

    /// Re-hashes a password whose stored hash is weaker than the configured
    /// parameters, now that it is known. An upgrade, never a condition of
    /// the login: when no hashing slot is free, or the store refuses, the
    /// login goes on and a later one upgrades. The store replaces the hash
    /// only while it is still the one verified, so a password changed
    /// meanwhile wins; the credentials version stays, so no session ends.
    async fn upgrade_password_hash(&self, user: &crate::store::UserRecord, password: String) {
        let upgraded = match self.passwords.hash_if_idle(password).await {
            Ok(Some(hash)) => hash,
            Ok(None) => {
                tracing::debug!(user.id = %user.id, "no hashing slot free; password hash upgrade deferred");
                return;
            }
            Err(err) => {
                tracing::warn!(?err, user.id = %user.id, "could not re-hash a password with the configured parameters");
                return;
            }
        };
        match self
            .store
            .upgrade_password_hash(user.id, &user.password_hash, &upgraded)
            .await
        {
            Ok(true) => {
                tracing::info!(user.id = %user.id, "password hash upgraded to the configured parameters")
            }
            Ok(false) => {
                tracing::debug!(user.id = %user.id, "password changed meanwhile; hash upgrade dropped")
            }
            Err(err) => {
                tracing::warn!(?err, user.id = %user.id, "could not store the upgraded password hash")
            }
        }
    }

    async fn client_credentials_grant(
        &self,
        client: &ClientRecord,
        scope: Option<&str>,
        jkt: Option<&str>,
    ) -> Result<TokenPair, DomainError> {
        let scope = scope_among(super::admin::allowed_scope(client, true), scope)?;
        let now = self.now();
        let (access_token, expires_in) = self
            .issue_access_token(client, &client.id.to_string(), &scope, None, jkt, now)
            .await?;
        Ok(TokenPair {
            access_token,
            expires_in,
            refresh_token: None,
            refresh_expires_in: None,
            scope: scope.to_string(),
            id_token: None,
        })
    }
}

/// The scope to grant for a user: the requested one when the client may
/// have all of it, or the client's whole scope when none was requested.
/// Never `latchkey:admin`, which only client_credentials of an admin client
/// may carry.
pub(crate) fn granted_scope(
    client: &ClientRecord,
    requested: Option<&str>,
) -> Result<Scope, DomainError> {
    scope_among(super::admin::allowed_scope(client, false), requested)
}

/// The requested scope when it is within `allowed`, or all of `allowed`
/// when none was requested.
fn scope_among(allowed: Scope, requested: Option<&str>) -> Result<Scope, DomainError> {
    match requested {
        None => Ok(allowed),
        Some(raw) => {
            let scope = Scope::parse(raw).ok_or(DomainError::InvalidScope)?;
            if scope.is_empty() {
                return Ok(allowed);
            }
            if scope.is_subset_of(&allowed) {
                Ok(scope)
            } else {
                Err(DomainError::InvalidScope)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::types::ClientId;

    fn session(generation: i64, rotated_at: DateTime<Utc>) -> SessionRecord {
        SessionRecord {
            id: SessionId::new_random(),
            user_id: UserId::new_random(),
            client_id: ClientId::new_random(),
            scope: crate::ids::Scope::parse("openid").expect("valid"),
            created_at: rotated_at,
            last_used_at: rotated_at,
            expires_at: rotated_at + Duration::days(30),
            generation,
            rotated_at,
            revoked_at: None,
            revoked_reason: None,
            dpop_jkt: None,
        }
    }

    #[test]
    fn grant_request_debug_redacts_password_and_refresh_token() {
        let password = GrantRequest::Password {
            username: "a@example.com".into(),
            password: Password("hunter2-hunter2".into()),
            scope: None,
        };
        let refresh = GrantRequest::RefreshToken {
            refresh_token: "lk_rt_SECRETSECRET".into(),
            scope: Some("openid".into()),
        };
        let shown = format!("{password:?} {refresh:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("SECRETSECRET"), "{shown}");
        assert!(shown.contains("openid"), "{shown}");
    }

    #[test]
    fn grace_forgives_only_the_immediate_predecessor_in_time() {
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).expect("time");
        let s = session(5, t0);
        let grace = Duration::seconds(10);
        let (now, late) = (Duration::zero(), Duration::seconds(11));
        assert!(is_grace_replay(4, &s, Duration::seconds(10), grace));
        assert!(!is_grace_replay(4, &s, late, grace));
        assert!(!is_grace_replay(3, &s, now, grace));
        assert!(!is_grace_replay(5, &s, now, grace));
        assert!(!is_grace_replay(4, &s, now, Duration::zero()));
    }

    #[test]
    fn granted_scope_is_a_subset_of_the_clients() {
        let client = ClientRecord {
            id: ClientId::new_random(),
            name: "c".into(),
            kind: ClientKind::Public,
            secret_hash: None,
            grants: vec!["password".into()],
            scopes: vec!["openid".into(), "email".into()],
            audience: None,
            cookie_mode: false,
            origins: vec![],
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            first_party: false,
            introspect: false,
            require_dpop: false,
            key_source: None,
            created_at: DateTime::from_timestamp(0, 0).expect("time"),
            disabled_at: None,
            previous_secret_hash: None,
            previous_secret_expires_at: None,
            admin: false,
        };
        assert_eq!(
            granted_scope(&client, None).expect("ok").to_string(),
            "openid email"
        );
        assert_eq!(
            granted_scope(&client, Some("email"))
                .expect("ok")
                .to_string(),
            "email"
        );
        assert!(matches!(
            granted_scope(&client, Some("admin")),
            Err(DomainError::InvalidScope)
        ));
    }

    #[test]
    fn the_admin_scope_goes_only_to_client_credentials_of_an_admin_client() {
        let admin = ClientRecord {
            kind: ClientKind::Confidential,
            grants: vec!["client_credentials".into(), "password".into()],
            scopes: vec!["read".into(), "latchkey:admin".into()],
            admin: true,
            ..client_record()
        };
        let cc = |c: &ClientRecord, s| scope_among(crate::domain::admin::allowed_scope(c, true), s);
        assert_eq!(
            cc(&admin, Some("latchkey:admin"))
                .map(|s| s.to_string())
                .ok(),
            Some("latchkey:admin".to_owned())
        );
        // A user's token of the same client never carries it.
        assert!(matches!(
            granted_scope(&admin, Some("latchkey:admin")),
            Err(DomainError::InvalidScope)
        ));
        assert_eq!(
            granted_scope(&admin, None).map(|s| s.to_string()).ok(),
            Some("read".to_owned())
        );
        // A client not created with --admin, even with the scope in its row.
        let plain = ClientRecord {
            admin: false,
            ..admin.clone()
        };
        assert!(matches!(
            cc(&plain, Some("latchkey:admin")),
            Err(DomainError::InvalidScope)
        ));
        assert_eq!(
            cc(&plain, None).map(|s| s.to_string()).ok(),
            Some("read".to_owned())
        );
    }

    fn client_record() -> ClientRecord {
        ClientRecord {
            id: ClientId::new_random(),
            name: "c".into(),
            kind: ClientKind::Public,
            secret_hash: None,
            grants: vec![],
            scopes: vec![],
            audience: None,
            cookie_mode: false,
            origins: vec![],
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            first_party: false,
            introspect: false,
            require_dpop: false,
            created_at: DateTime::from_timestamp(0, 0).expect("time"),
            disabled_at: None,
            previous_secret_hash: None,
            previous_secret_expires_at: None,
            admin: false,
            key_source: None,
        }
    }
}
