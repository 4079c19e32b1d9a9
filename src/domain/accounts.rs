//! Accounts: sign-up, password change, enable and disable.

use super::audit::trace_audit;
use super::error::DomainError;
use super::passwords::check_policy;
use super::types::{Email, Password, SessionId, UserId};
use super::Services;
use crate::store::AuditKind;
use crate::store::{AuditEvent, StoreError, UserRecord};

impl Services {
    /// Self-service sign-up: `create_user`, while `signup.enabled` allows
    /// it. Operators create users with `users create` whatever the switch.
    ///
    /// # Errors
    /// `SignupDisabled`, and whatever `create_user` returns.
    pub async fn sign_up(
        &self,
        email: &str,
        password: Password,
        address: Option<String>,
    ) -> Result<UserRecord, DomainError> {
        if !self.policy.signup.enabled {
            return Err(DomainError::SignupDisabled);
        }
        self.create_user(email, password, address).await
    }

    /// Creates a user (through `sign_up`, and `users create`).
    ///
    /// # Errors
    /// `InvalidEmail`, `WeakPassword`, `Throttled` once the address used up
    /// its sign-ups, `EmailTaken`, `HashQueueFull`, store failures.
    pub async fn create_user(
        &self,
        email: &str,
        password: Password,
        address: Option<String>,
    ) -> Result<UserRecord, DomainError> {
        let email = Email::parse(email).ok_or(DomainError::InvalidEmail)?;
        check_policy(&password.0)?;
        // Counted before anything else costs: sign-ups share the hashing
        // slots with logins, and the lookup below would let a host probe
        // which addresses have accounts.
        self.reserve_signup(address.as_deref()).await?;
        // Refuse a taken address before spending a hash on it; the unique
        // constraint below still decides a race between two sign-ups.
        if self
            .store
            .find_user_by_email(email.as_str())
            .await?
            .is_some()
        {
            return Err(DomainError::EmailTaken);
        }
        let password_hash = self.passwords.hash(password.0).await?;
        let now = self.now();
        let user = UserRecord {
            id: UserId::new_random(),
            email: email.as_str().to_owned(),
            password_hash,
            disabled: false,
            credentials_version: 0,
            email_verified: false,
            created_at: now,
        };
        self.store.insert_user(&user).await.map_err(|e| match e {
            StoreError::Conflict => DomainError::EmailTaken,
            other => other.into(),
        })?;
        let ev = AuditEvent::new(AuditKind::UserSignedUp, now)
            .user(user.id)
            .address(address.as_deref());
        self.insert_audit(&ev).await?;
        // The account exists either way; a verification mail that could not
        // be queued can be asked for again (POST /v1/account/email/verify).
        if let Err(err) = self.send_verification(&user).await {
            tracing::warn!(?err, user.id = %user.id, "could not queue the verification mail");
        }
        Ok(user)
    }

    /// Enables or disables a user. Disabling revokes every session at once.
    ///
    /// # Errors
    /// `NotFound` for an unknown user; store failures.
    pub async fn set_user_disabled(
        &self,
        id: UserId,
        disabled: bool,
        by: &str,
    ) -> Result<(), DomainError> {
        let ev = AuditEvent::new(
            if disabled {
                AuditKind::UserDisabled
            } else {
                AuditKind::UserEnabled
            },
            self.now(),
        )
        .user(id)
        .reason(format!("by {by}"));
        self.store
            .set_user_disabled(id, disabled, &ev)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => DomainError::NotFound,
                other => other.into(),
            })?;
        trace_audit(&ev);
        Ok(())
    }

    /// Changes a password after checking the current one, and revokes every
    /// session of the user but `current` (RFC 9700 §4.14: a password change
    /// must end sessions an attacker may hold). `address` is the caller's,
    /// for the audit record.
    ///
    /// # Errors
    /// `InvalidCredentials` for a wrong current password, `Throttled` once
    /// the account or the address used up its attempts, `WeakPassword`,
    /// `HashQueueFull`, store failures.
    pub async fn change_password(
        &self,
        user_id: UserId,
        current: SessionId,
        current_password: Password,
        new_password: Password,
        address: Option<&str>,
    ) -> Result<u64, DomainError> {
        check_policy(&new_password.0)?;
        if current_password.0.len() > super::passwords::MAX_PASSWORD_BYTES {
            return Err(DomainError::InvalidCredentials);
        }
        let user = self
            .store
            .find_user(user_id)
            .await?
            .ok_or(DomainError::NotFound)?;
        // The current-password check is a password oracle for whoever holds
        // an access token: it counts against the same account and address
        // limits as logins, reserved before the hash.
        let email = Email::parse(&user.email).ok_or(DomainError::InvalidCredentials)?;
        self.reserve_login(&email, address).await?;
        if !self
            .passwords
            .verify(current_password.0, Some(user.password_hash.clone()))
            .await?
        {
            return Err(DomainError::InvalidCredentials);
        }
        self.release_login(&email, address).await?;
        let hash = self.passwords.hash(new_password.0).await?;
        let ev = AuditEvent::new(AuditKind::PasswordChanged, self.now())
            .user(user_id)
            .session(current)
            .address(address);
        // Only if no other change landed since the current password was
        // read: two changes racing each verified the same old password, and
        // only the first may replace it.
        let revoked = self
            .store
            .update_password(
                user_id,
                &hash,
                Some(user.credentials_version),
                Some(current),
                &ev,
            )
            .await
            .map_err(|e| match e {
                StoreError::Conflict => DomainError::InvalidCredentials,
                other => other.into(),
            })?;
        trace_audit(&ev);
        Ok(revoked)
    }
}
