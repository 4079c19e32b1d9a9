//! Browser sessions at latchkey: after a login on latchkey's own page, a
//! `__Host-` cookie lets the user authorize another app without typing the
//! password again, until it ends (absolute and idle lifetimes) or the user
//! logs out of latchkey.

use super::codes::code_digest;
use crate::domain::error::DomainError;
use crate::domain::types::random_token;
use crate::domain::Services;
use crate::store::{BrowserSessionRecord, UserRecord};

/// A cookie value is 32 random bytes in base64url.
fn is_plausible_cookie(v: &str) -> bool {
    v.len() == 43
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Services {
    /// Starts a browser session for `user`, who just entered their password.
    /// Always a new secret, so a session id planted before the login is
    /// worthless (session fixation). Returns the cookie value and the record.
    ///
    /// # Errors
    /// Store failures; no randomness.
    pub async fn start_browser_session(
        &self,
        user: &UserRecord,
    ) -> Result<(String, BrowserSessionRecord), DomainError> {
        let secret = random_token(32)?;
        let now = self.now();
        let record = BrowserSessionRecord {
            id_hash: code_digest(&secret),
            user_id: user.id,
            auth_time: now,
            credentials_version: user.credentials_version,
            last_seen_at: now,
            expires_at: now + self.policy.browser_sessions.absolute_ttl,
            revoked_at: None,
        };
        self.store.insert_browser_session(&record).await?;
        Ok((secret, record))
    }

    /// The live browser session named by the cookie value, marked used now.
    ///
    /// # Errors
    /// Store failures.
    pub async fn browser_session(
        &self,
        cookie: Option<&str>,
    ) -> Result<Option<BrowserSessionRecord>, DomainError> {
        let Some(v) = cookie.filter(|v| is_plausible_cookie(v)) else {
            return Ok(None);
        };
        let now = self.now();
        let idle_cutoff = now - self.policy.browser_sessions.idle_ttl;
        Ok(self
            .store
            .touch_browser_session(&code_digest(v), now, idle_cutoff)
            .await?)
    }

    /// Ends the browser session named by the cookie value (logout); idempotent.
    ///
    /// # Errors
    /// Store failures.
    pub async fn end_browser_session(&self, cookie: Option<&str>) -> Result<(), DomainError> {
        if let Some(v) = cookie.filter(|v| is_plausible_cookie(v)) {
            self.store
                .end_browser_session(&code_digest(v), self.now())
                .await?;
        }
        Ok(())
    }
}
