//! Failed-login throttling, counted in the store so that every instance
//! behind a load balancer sees the same counts. Checked before any password
//! hash runs, so a throttled guess costs the server two indexed reads.

use chrono::{DateTime, Duration, Utc};

use super::error::DomainError;
use super::types::Email;
use super::Services;
use crate::store::FailureCount;

fn account_key(email: &Email) -> String {
    format!("account:{}", email.as_str())
}

fn address_key(address: &str) -> String {
    format!("address:{address}")
}

/// Seconds until a full window ends, or `None` when the counter allows more.
pub fn retry_after(
    count: Option<FailureCount>,
    max: i64,
    window: Duration,
    now: DateTime<Utc>,
) -> Option<i64> {
    let c = count?;
    let ends = c.window_started_at + window;
    (c.failures >= max && ends > now).then(|| (ends - now).num_seconds().max(1))
}

impl Services {
    /// Refuses the login when the account or the address has used up its
    /// failures for the current window.
    ///
    /// # Errors
    /// `Throttled` with the seconds to wait; store failures.
    pub async fn check_throttle(
        &self,
        email: &Email,
        address: Option<&str>,
    ) -> Result<(), DomainError> {
        let t = &self.settings.raw.throttle;
        let now = self.now();
        let account = self.store.login_failures(&account_key(email)).await?;
        if let Some(secs) = retry_after(
            account,
            t.account_max_failures,
            Duration::seconds(t.account_window_secs),
            now,
        ) {
            return Err(DomainError::Throttled {
                retry_after_secs: secs,
            });
        }
        if let Some(addr) = address {
            let by_address = self.store.login_failures(&address_key(addr)).await?;
            if let Some(secs) = retry_after(
                by_address,
                t.address_max_failures,
                Duration::seconds(t.address_window_secs),
                now,
            ) {
                return Err(DomainError::Throttled {
                    retry_after_secs: secs,
                });
            }
        }
        Ok(())
    }

    /// Counts a failed login against the account and the address.
    ///
    /// # Errors
    /// Store failures.
    pub async fn record_failed_login(
        &self,
        email: &Email,
        address: Option<&str>,
    ) -> Result<(), DomainError> {
        let t = &self.settings.raw.throttle;
        let now = self.now();
        self.store
            .record_login_failure(&account_key(email), now, t.account_window_secs)
            .await?;
        if let Some(addr) = address {
            self.store
                .record_login_failure(&address_key(addr), now, t.address_window_secs)
                .await?;
        }
        Ok(())
    }

    /// Forgets the account's failures after a successful login.
    ///
    /// # Errors
    /// Store failures.
    pub async fn clear_failed_logins(&self, email: &Email) -> Result<(), DomainError> {
        Ok(self.store.clear_login_failures(&account_key(email)).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).expect("time")
    }

    #[test]
    fn throttles_only_a_full_live_window() {
        let w = Duration::seconds(900);
        assert_eq!(retry_after(None, 5, w, t(0)), None);
        let four = FailureCount {
            failures: 4,
            window_started_at: t(0),
        };
        assert_eq!(retry_after(Some(four), 5, w, t(10)), None);
        let five = FailureCount {
            failures: 5,
            window_started_at: t(0),
        };
        assert_eq!(retry_after(Some(five), 5, w, t(100)), Some(800));
        assert_eq!(retry_after(Some(five), 5, w, t(900)), None);
    }
}
