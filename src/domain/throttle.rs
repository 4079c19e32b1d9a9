//! Failed-login throttling, counted in the store so that every instance
//! behind a load balancer sees the same counts. Each attempt is reserved
//! (counted) atomically before any password hash runs and released only if
//! the password was right, so a throttled guess costs the server one or two
//! indexed writes and no hash, and a parallel burst cannot outrun the count.
//!
//! # Design
//! Each key (`account:<email>`, `address:<ip>`, `signup:address:<ip>`) has a
//! counter whose window starts at its first attempt. Reserving is one atomic
//! upsert that counts nothing while the key is locked. When a reservation
//! brings the counter to the limit, the key is locked by a second, conditional
//! `UPDATE` that applies only while the counter still shows the limit reached
//! and the lockout count the caller read: of several requests (on any
//! instances) that saw the limit reached, exactly one locks, and the lock
//! starts a fresh window. Logins for a locked key get 429 with `Retry-After`
//! until the lock ends.
//!
//! Accounts back off exponentially: the n-th lockout in a row lasts
//! `account_window_secs × 2^(n-1)`, capped at `account_max_lockout_secs`, so a
//! guesser gets `account_max_failures` tries per lockout, ever more rarely,
//! while a user who mistyped is locked out only briefly. The lock applies to
//! unknown emails exactly as to known ones, so it reveals nothing about which
//! accounts exist. The doubling starts over after a
//! successful login (the row is deleted) or a quiet spell as long as the cap
//! after a lockout ended. Addresses lock for one window each time.

use std::net::{IpAddr, Ipv6Addr};

use chrono::{DateTime, Duration, Utc};

use super::error::DomainError;
use super::types::Email;
use super::Services;
use crate::store::{FailureCount, Lockout};

/// One counter's limit and lockout lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Failures within a window that lock the key.
    pub max_failures: i64,
    /// The counting window, and the first lockout's length.
    pub window_secs: i64,
    /// The longest lockout; equal to the window for no doubling.
    pub max_lockout_secs: i64,
}

fn account_key(email: &Email) -> String {
    format!("account:{}", email.as_str())
}

/// The counter for a client address. An IPv6 client usually holds a whole
/// /64 (and can pick any address in it), so IPv6 addresses count per /64
/// prefix; IPv4 addresses, and IPv4 mapped into IPv6, count one by one.
fn address_key(address: &str) -> String {
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let prefix = u128::from(v6) & !u128::from(u64::MAX);
            format!("address:{}/64", Ipv6Addr::from(prefix))
        }
        Ok(IpAddr::V6(v6)) => format!("address:{}", v6.to_canonical()),
        _ => format!("address:{address}"),
    }
}

/// Seconds until a locked key may try again (rounded up), or `None` when it
/// is not locked at `now`.
pub fn retry_after(count: Option<FailureCount>, now: DateTime<Utc>) -> Option<i64> {
    let until = count?.locked_until?;
    (until > now).then(|| {
        let ms = (until - now).num_milliseconds();
        ((ms + 999) / 1000).max(1)
    })
}

/// The lockout that follows `count` reaching its limit at `now`: its number
/// in the row and when it ends.
pub fn next_lockout(count: &FailureCount, limit: &Limit, now: DateTime<Utc>) -> Lockout {
    let cap = limit.max_lockout_secs.max(limit.window_secs);
    let quiet = count
        .locked_until
        .is_some_and(|ended| now - ended >= Duration::seconds(cap));
    let previous = if quiet { 0 } else { count.lockouts.max(0) };
    let factor = 1i64 << previous.min(32);
    let secs = limit.window_secs.saturating_mul(factor).min(cap);
    Lockout {
        max_failures: limit.max_failures,
        seen_lockouts: count.lockouts,
        lockouts: previous + 1,
        now,
        until: now + Duration::seconds(secs),
    }
}

impl Services {
    fn account_limit(&self) -> Limit {
        self.policy.throttle.account
    }

    fn address_limit(&self) -> Limit {
        self.policy.throttle.address
    }

    fn signup_limit(&self) -> Limit {
        self.policy.throttle.signup
    }

    /// Reserves one password attempt against the address and the account
    /// before any hash runs: 429 while either is locked or has used up its
    /// window. The reservation stands as a failure unless the password turns
    /// out right (`release_login`), so a burst, however parallel and across
    /// however many instances, gets no more guesses verified than the limit.
    ///
    /// # Errors
    /// `Throttled` with the seconds to wait; store failures.
    pub async fn reserve_login(
        &self,
        email: &Email,
        address: Option<&str>,
    ) -> Result<(), DomainError> {
        // The address first: a throttled address must not burn the attempts
        // of the account it aims at.
        if let Some(addr) = address {
            self.reserve(&address_key(addr), &self.address_limit(), "address")
                .await?;
        }
        self.reserve(&account_key(email), &self.account_limit(), "account")
            .await
    }

    /// After a right password: forgets the account's failures and lockouts,
    /// and gives the address its reserved attempt back.
    ///
    /// # Errors
    /// Store failures.
    pub async fn release_login(
        &self,
        email: &Email,
        address: Option<&str>,
    ) -> Result<(), DomainError> {
        self.store.clear_login_failures(&account_key(email)).await?;
        if let Some(addr) = address {
            self.store.release_login_attempt(&address_key(addr)).await?;
        }
        Ok(())
    }

    /// Forgets the account's failures and lockouts (a password reset proved
    /// the owner holds the mailbox).
    ///
    /// # Errors
    /// Store failures.
    pub async fn clear_account_lockout(&self, email: &Email) -> Result<(), DomainError> {
        Ok(self.store.clear_login_failures(&account_key(email)).await?)
    }

    /// Gives back an attempt that verified nothing (the hashing queue was
    /// full): the bound is on guesses verified, and a server's own overload
    /// must not lock its users out.
    ///
    /// # Errors
    /// Store failures.
    pub async fn give_back_login(
        &self,
        email: &Email,
        address: Option<&str>,
    ) -> Result<(), DomainError> {
        self.store
            .release_login_attempt(&account_key(email))
            .await?;
        if let Some(addr) = address {
            self.store.release_login_attempt(&address_key(addr)).await?;
        }
        Ok(())
    }

    /// Counts one sign-up from `address` before its password is hashed:
    /// sign-ups share the hashing slots with logins, so one host must not be
    /// able to keep them busy. Every sign-up counts, successful or not.
    ///
    /// # Errors
    /// `Throttled` with the seconds to wait; store failures.
    pub async fn reserve_signup(&self, address: Option<&str>) -> Result<(), DomainError> {
        match address {
            Some(addr) => {
                let key = format!("signup:{}", address_key(addr));
                self.reserve(&key, &self.signup_limit(), "signup").await
            }
            None => Ok(()),
        }
    }

    /// One atomic reservation on `key`; locks it when this attempt is the
    /// last the window allows, refuses attempts beyond it.
    async fn reserve(
        &self,
        key: &str,
        limit: &Limit,
        kind: &'static str,
    ) -> Result<(), DomainError> {
        let now = self.now();
        let count = self
            .store
            .reserve_login_attempt(key, now, limit.window_secs)
            .await?;
        if let Some(secs) = retry_after(Some(count), now) {
            return Err(DomainError::Throttled {
                retry_after_secs: secs,
            });
        }
        if count.failures < limit.max_failures {
            return Ok(());
        }
        let lock = next_lockout(&count, limit, now);
        if self.store.lock_login_failures(key, &lock).await? {
            // The key itself (an email or an address) stays out of the logs.
            tracing::warn!(
                throttle.kind = kind,
                throttle.lockouts = lock.lockouts,
                throttle.secs = (lock.until - now).num_seconds(),
                "attempts locked after reaching the limit"
            );
        }
        if count.failures == limit.max_failures {
            // The last attempt the window allows goes ahead; the lock it
            // set refuses the next ones (and a right password lifts it).
            return Ok(());
        }
        let current = self.store.login_failures(key).await?;
        Err(DomainError::Throttled {
            retry_after_secs: retry_after(current, now).unwrap_or(limit.window_secs),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_count_per_64_and_ipv4_per_address() {
        assert_eq!(address_key("203.0.113.7"), "address:203.0.113.7");
        assert_eq!(address_key("::ffff:203.0.113.7"), "address:203.0.113.7");
        assert_eq!(
            address_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"),
            "address:2001:db8:1:2::/64"
        );
        assert_eq!(
            address_key("2001:db8:1:2::1"),
            address_key("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_ne!(
            address_key("2001:db8:1:2::1"),
            address_key("2001:db8:1:3::1")
        );
        assert_eq!(address_key("not an address"), "address:not an address");
    }

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).expect("time")
    }

    const ACCOUNT: Limit = Limit {
        max_failures: 5,
        window_secs: 900,
        max_lockout_secs: 86_400,
    };

    fn count(lockouts: i64, locked_until: Option<DateTime<Utc>>) -> FailureCount {
        FailureCount {
            failures: 5,
            window_started_at: t(0),
            lockouts,
            locked_until,
        }
    }

    #[test]
    fn only_a_live_lock_throttles() {
        assert_eq!(retry_after(None, t(0)), None);
        assert_eq!(retry_after(Some(count(0, None)), t(0)), None);
        let locked = count(1, Some(t(900)));
        assert_eq!(retry_after(Some(locked), t(100)), Some(800));
        assert_eq!(retry_after(Some(locked), t(899)), Some(1));
        assert_eq!(retry_after(Some(locked), t(900)), None);
    }

    #[test]
    fn account_lockouts_double_up_to_the_cap() {
        let mut lengths = Vec::new();
        let mut c = count(0, None);
        let mut now = t(0);
        for _ in 0..10 {
            let lock = next_lockout(&c, &ACCOUNT, now);
            lengths.push((lock.until - now).num_seconds());
            c = count(lock.lockouts, Some(lock.until));
            now = lock.until;
        }
        assert_eq!(
            lengths,
            [900, 1800, 3600, 7200, 14_400, 28_800, 57_600, 86_400, 86_400, 86_400]
        );
    }

    #[test]
    fn a_quiet_spell_as_long_as_the_cap_starts_the_doubling_over() {
        let c = count(4, Some(t(0)));
        let soon = next_lockout(&c, &ACCOUNT, t(86_399));
        assert_eq!((soon.lockouts, soon.seen_lockouts), (5, 4));
        let later = next_lockout(&c, &ACCOUNT, t(86_400));
        assert_eq!(later.lockouts, 1);
        assert_eq!((later.until - t(86_400)).num_seconds(), 900);
    }

    #[test]
    fn addresses_lock_for_one_window_each_time() {
        let address = Limit {
            max_failures: 50,
            window_secs: 900,
            max_lockout_secs: 900,
        };
        let lock = next_lockout(&count(7, Some(t(0))), &address, t(10));
        assert_eq!((lock.until - t(10)).num_seconds(), 900);
    }
}
