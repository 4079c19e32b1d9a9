//! Verified addresses and password reset by email. Every link carries a
//! single-use token of 256 random bits; the store keeps only its SHA-256, so
//! a database dump cannot be turned into a working link. A reset token is
//! bound to the password it was issued under (any password change voids it),
//! and a newer request voids the older link. Requests answer the same and
//! do the same work whether or not the address has an account: each queues
//! one request row in the outbox, and the sender, off the request path,
//! looks the address up, mints the token and writes the mail, or drops it.

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::Duration;

use super::audit::trace_audit;
use super::error::DomainError;
use super::outbox::templates::lifetime_words;
use super::outbox::MailKind;
use super::passwords::check_policy;
use super::types::{Email, Password, UserId};
use super::Services;
use crate::store::AuditKind;
use crate::store::{
    AuditEvent, ClaimedMail, EmailTokenRecord, FailureCount, MailMessage, StoreError, TokenPurpose,
    UserRecord,
};
use crate::telemetry::names;

/// Random bytes in a token: 256 bits.
const TOKEN_BYTES: usize = 32;
/// Characters of a token in base64url without padding.
pub const TOKEN_LEN: usize = 43;

/// A fresh token and the digest the store keeps.
///
/// # Errors
/// The system has no randomness to give.
pub fn new_email_token() -> Result<(String, Vec<u8>), DomainError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| DomainError::Internal("no randomness"))?;
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let digest = digest::digest(&digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec();
    Ok((token, digest))
}

/// The digest of a well-formed token; `None` for anything that cannot be one,
/// which is refused without a store query.
pub fn token_digest(token: &str) -> Option<Vec<u8>> {
    let well_formed = token.len() == TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then(|| {
        digest::digest(&digest::SHA256, token.as_bytes())
            .as_ref()
            .to_vec()
    })
}

impl Services {
    fn link(&self, path: &str, token: &str) -> String {
        format!("{}{path}?token={token}", self.policy.issuer)
    }

    /// A fresh token of the purpose of `kind` for `user`, and its message,
    /// both dated `at` (the time it was asked for).
    fn mint_mail(
        &self,
        user: &UserRecord,
        kind: MailKind,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(EmailTokenRecord, MailMessage), DomainError> {
        let e = &self.policy.mail;
        let (purpose, ttl, path, bound_hash) = match kind {
            MailKind::ResetPassword => (
                TokenPurpose::ResetPassword,
                e.reset_ttl_secs,
                "/reset-password",
                Some(user.password_hash.clone()),
            ),
            _ => (
                TokenPurpose::VerifyEmail,
                e.verify_ttl_secs,
                "/verify-email",
                None,
            ),
        };
        let (token, digest) = new_email_token()?;
        let record = EmailTokenRecord {
            digest,
            user_id: user.id,
            purpose,
            bound_hash,
            created_at: at,
            expires_at: at + Duration::seconds(ttl),
        };
        let mut mail = self.compose_mail(
            kind,
            &user.email,
            &self.link(path, &token),
            &lifetime_words(ttl),
        );
        mail.created_at = at;
        Ok((record, mail))
    }

    /// Issues a verification token for `user` and queues its mail, in one
    /// transaction; an earlier unused link stops working.
    ///
    /// # Errors
    /// Store failures.
    pub async fn send_verification(&self, user: &UserRecord) -> Result<(), DomainError> {
        let (record, mail) = self.mint_mail(user, MailKind::VerifyEmail, self.now())?;
        self.store.insert_email_token(&record, &mail).await?;
        self.mail_queued();
        Ok(())
    }

    /// Issues a reset token for `user`, bound to their current password,
    /// and queues its mail; an earlier unused reset link stops working.
    ///
    /// # Errors
    /// Store failures.
    pub async fn send_reset(&self, user: &UserRecord) -> Result<(), DomainError> {
        let (record, mail) = self.mint_mail(user, MailKind::ResetPassword, self.now())?;
        self.store.insert_email_token(&record, &mail).await?;
        self.mail_queued();
        self.audit_reset_requested(user.id, record.created_at).await
    }

    async fn audit_reset_requested(
        &self,
        user: UserId,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), DomainError> {
        let ev = AuditEvent::new(AuditKind::PasswordResetRequested, at).user(user);
        self.insert_audit(&ev).await
    }

    /// `POST /v1/account/password/reset`: counts the request and queues it,
    /// the same row whatever the address. The sender looks the address up
    /// off the request path, so neither the answer, nor its timing, nor the
    /// work the request causes says whether the address has an account.
    ///
    /// # Errors
    /// `InvalidEmail`; `Throttled` when this client asked too often; store
    /// failures while counting or queueing.
    pub async fn request_password_reset(
        &self,
        email: &str,
        address: Option<&str>,
    ) -> Result<(), DomainError> {
        self.request_mail(email, address, TokenPurpose::ResetPassword)
            .await
    }

    /// `POST /v1/account/email/verify` with an email: like a reset request,
    /// for a new verification link (sent only to an unverified account).
    ///
    /// # Errors
    /// As `request_password_reset`.
    pub async fn request_verification_email(
        &self,
        email: &str,
        address: Option<&str>,
    ) -> Result<(), DomainError> {
        self.request_mail(email, address, TokenPurpose::VerifyEmail)
            .await
    }

    async fn request_mail(
        &self,
        email: &str,
        address: Option<&str>,
        purpose: TokenPurpose,
    ) -> Result<(), DomainError> {
        let email = Email::parse(email).ok_or(DomainError::InvalidEmail)?;
        if !self.count_mail_request(&email, address, purpose).await? {
            return Ok(());
        }
        // Not a wake-up of the sender: it finds the row at its next poll,
        // so the work of resolving it is not tied to this request's moment.
        self.store
            .enqueue_mail_request(uuid::Uuid::new_v4(), email.as_str(), purpose, self.now())
            .await?;
        Ok(())
    }

    /// Resolves a queued request claimed by the sender: mints the token and
    /// writes the message into the row when an account should get it, else
    /// deletes the row. Returns the message to deliver, or `None`.
    ///
    /// # Errors
    /// Store failures.
    pub(crate) async fn resolve_mail_request(
        &self,
        mail: ClaimedMail,
        purpose: TokenPurpose,
    ) -> Result<Option<ClaimedMail>, DomainError> {
        let id = mail.message.id;
        let user = match Email::parse(&mail.message.recipient) {
            Some(email) => self.store.find_user_by_email(email.as_str()).await?,
            None => None,
        };
        let kind = mail_kind(purpose);
        let user = user.filter(|u| should_get(u, kind));
        let Some(user) = user else {
            self.store.drop_mail_request(id, mail.claim).await?;
            return Ok(None);
        };
        let (record, mut message) = self.mint_mail(&user, kind, mail.message.created_at)?;
        message.id = id;
        if !self
            .store
            .resolve_mail_request(mail.claim, &record, &message)
            .await?
        {
            return Ok(None);
        }
        self.metrics.count(names::MAIL_QUEUED, vec![], 1);
        if kind == MailKind::ResetPassword {
            self.audit_reset_requested(user.id, record.created_at)
                .await?;
        }
        Ok(Some(ClaimedMail { message, ..mail }))
    }

    /// Sends the mail of `kind` to the account with this address, when there
    /// is one that should get it (enabled; for verification, unverified).
    /// Returns whether a message was queued; the sender delivers it later.
    ///
    /// # Errors
    /// Store failures.
    pub async fn send_mail_for(&self, email: &Email, kind: MailKind) -> Result<bool, DomainError> {
        let Some(user) = self.store.find_user_by_email(email.as_str()).await? else {
            return Ok(false);
        };
        if !should_get(&user, kind) {
            return Ok(false);
        }
        match kind {
            MailKind::ResetPassword => self.send_reset(&user).await?,
            _ => self.send_verification(&user).await?,
        }
        Ok(true)
    }

    /// Counts a mail request against the client address (over the limit:
    /// `Throttled`) and the typed-in address (over the limit: `false`, and
    /// the caller sends nothing but answers as usual, so the answer never
    /// says whether an account exists).
    async fn count_mail_request(
        &self,
        email: &Email,
        address: Option<&str>,
        purpose: TokenPurpose,
    ) -> Result<bool, DomainError> {
        let e = &self.policy.mail;
        let now = self.now();
        if let Some(addr) = address {
            let key = format!("mail-client:{addr}");
            let count = self
                .store
                .reserve_login_attempt(&key, now, e.request_window_secs)
                .await?;
            if count.failures > e.max_requests_per_client {
                return Err(DomainError::Throttled {
                    retry_after_secs: self.window_left(&count, e.request_window_secs),
                });
            }
        }
        let key = format!("mail-{}:{}", mail_kind(purpose).name(), email.as_str());
        let count = self
            .store
            .reserve_login_attempt(&key, now, e.request_window_secs)
            .await?;
        Ok(count.failures <= e.max_requests_per_email)
    }

    fn window_left(&self, count: &FailureCount, window_secs: i64) -> i64 {
        let end = count.window_started_at + Duration::seconds(window_secs);
        (end - self.now()).num_seconds().max(1)
    }

    /// Whether a link's token is usable now (the pages check before showing
    /// a form). Uses nothing.
    ///
    /// # Errors
    /// `EmailTokenRefused`; store failures.
    pub async fn check_email_token(
        &self,
        token: &str,
        purpose: TokenPurpose,
    ) -> Result<UserId, DomainError> {
        let digest = token_digest(token).ok_or(DomainError::EmailTokenRefused)?;
        self.store
            .find_email_token(&digest, purpose, self.now())
            .await?
            .ok_or(DomainError::EmailTokenRefused)
    }

    /// Uses a verification link: the user's address is verified from now on.
    ///
    /// # Errors
    /// `EmailTokenRefused` for a malformed, unknown, used or expired token;
    /// store failures.
    pub async fn verify_email(
        &self,
        token: &str,
        address: Option<&str>,
    ) -> Result<UserId, DomainError> {
        let digest = token_digest(token).ok_or(DomainError::EmailTokenRefused)?;
        let now = self.now();
        let mut ev = AuditEvent::new(AuditKind::EmailVerified, now)
            .reason("verification link")
            .address(address);
        let user = self
            .store
            .verify_email_with_token(&digest, now, &ev)
            .await?
            .ok_or(DomainError::EmailTokenRefused)?;
        ev.user_id = Some(user);
        trace_audit(&ev);
        Ok(user)
    }

    /// Marks an address verified on an operator's word (`users verify-email`).
    ///
    /// # Errors
    /// `NotFound` for an unknown user; store failures.
    pub async fn mark_email_verified(&self, id: UserId, by: &str) -> Result<(), DomainError> {
        let ev = AuditEvent::new(AuditKind::EmailVerified, self.now())
            .user(id)
            .reason(format!("by {by}"));
        self.store
            .set_email_verified(id, &ev)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => DomainError::NotFound,
                other => other.into(),
            })?;
        trace_audit(&ev);
        Ok(())
    }

    /// Uses a reset link: sets the new password (the sign-up policy and
    /// hashing), ends every session of the user, clears the account's login
    /// lockout, audits, and queues a "password changed" notice.
    ///
    /// # Errors
    /// `WeakPassword`; `EmailTokenRefused` for a malformed, unknown, used,
    /// expired or superseded token; `HashQueueFull`; store failures.
    pub async fn confirm_password_reset(
        &self,
        token: &str,
        new_password: Password,
        address: Option<&str>,
    ) -> Result<(), DomainError> {
        check_policy(&new_password.0)?;
        // Refuse a dead link before spending a hash on it; the consuming
        // UPDATE below still decides a race between two uses.
        self.check_email_token(token, TokenPurpose::ResetPassword)
            .await?;
        let hash = self.passwords.hash(new_password.0).await?;
        let digest = token_digest(token).ok_or(DomainError::EmailTokenRefused)?;
        let user_id = self
            .store
            .consume_email_token(&digest, TokenPurpose::ResetPassword, self.now())
            .await?
            .ok_or(DomainError::EmailTokenRefused)?;
        let ev = AuditEvent::new(AuditKind::PasswordReset, self.now())
            .user(user_id)
            .address(address);
        let revoked = self
            .store
            .update_password(user_id, &hash, None, None, &ev)
            .await?;
        trace_audit(&ev);
        tracing::info!(user.id = %user_id, sessions.revoked = revoked, "password reset");
        if let Some(user) = self.store.find_user(user_id).await? {
            if let Some(email) = Email::parse(&user.email) {
                self.clear_account_lockout(&email).await?;
            }
            let notice = self.compose_mail(MailKind::PasswordChanged, &user.email, "", "");
            self.enqueue_mail(&notice).await?;
        }
        Ok(())
    }
}

/// Whether `user` should get mail of `kind`: an enabled account; for
/// verification, one not verified yet.
fn should_get(user: &UserRecord, kind: MailKind) -> bool {
    !user.disabled && (kind != MailKind::VerifyEmail || !user.email_verified)
}

fn mail_kind(purpose: TokenPurpose) -> MailKind {
    match purpose {
        TokenPurpose::ResetPassword => MailKind::ResetPassword,
        TokenPurpose::VerifyEmail => MailKind::VerifyEmail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bits_and_digests_match() {
        let (token, digest) = new_email_token().expect("token");
        assert_eq!(token.len(), TOKEN_LEN);
        assert_eq!(digest.len(), 32);
        assert_eq!(token_digest(&token), Some(digest));
        let (other, _) = new_email_token().expect("token");
        assert_ne!(token, other);
    }

    #[test]
    fn malformed_tokens_have_no_digest() {
        assert_eq!(token_digest(""), None);
        assert_eq!(token_digest(&"a".repeat(TOKEN_LEN + 1)), None);
        assert_eq!(token_digest(&"+".repeat(TOKEN_LEN)), None);
        assert!(token_digest(&"a".repeat(TOKEN_LEN)).is_some());
    }
}
