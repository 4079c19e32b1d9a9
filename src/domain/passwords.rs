//! Password hashing with argon2id, off the request threads and bounded: at
//! most `max_concurrent_hashes` run at once (each holds `memory_kib` of RAM),
//! and a login that waits longer than the queue timeout is told to come back,
//! so a flood of logins cannot exhaust memory or starve other requests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use tokio::sync::Semaphore;

use super::error::DomainError;
use crate::config::PasswordSettings;

/// Shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted, in bytes: checked before any hashing so a huge
/// password costs nothing.
pub const MAX_PASSWORD_BYTES: usize = 256;

/// Checks the password policy.
///
/// # Errors
/// `WeakPassword` naming the rule broken.
pub fn check_policy(password: &str) -> Result<(), DomainError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(DomainError::WeakPassword(
            "password must be at most 256 bytes",
        ));
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(DomainError::WeakPassword(
            "password must be at least 8 characters",
        ));
    }
    Ok(())
}

/// Bounded argon2id hashing and verification.
#[derive(Debug, Clone)]
pub struct Passwords {
    params: Params,
    slots: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    queue_timeout: Duration,
    dummy_hash: Arc<str>,
}

/// Counts a caller as waiting for a slot until dropped, however the wait
/// ends (a slot, the timeout, or the request going away).
struct Waiting(Arc<AtomicUsize>);

impl Waiting {
    fn start(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter.clone())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Passwords {
    /// Builds the hasher and the dummy hash that unknown users are verified
    /// against, so their logins cost the same time as real ones.
    ///
    /// # Errors
    /// Invalid parameters.
    pub fn new(s: &PasswordSettings, max_concurrent: usize) -> Result<Self, DomainError> {
        let params = Params::new(s.memory_kib, s.iterations, s.parallelism, None)
            .map_err(|_| DomainError::Internal("invalid argon2 parameters"))?;
        let mut random = [0u8; 24];
        SystemRandom::new()
            .fill(&mut random)
            .map_err(|_| DomainError::Internal("no randomness"))?;
        let dummy_hash = hash_with(&params, &hex::encode(random))?;
        Ok(Self {
            params,
            slots: Arc::new(Semaphore::new(max_concurrent.max(1))),
            waiting: Arc::default(),
            queue_timeout: Duration::from_millis(s.queue_timeout_ms),
            dummy_hash: dummy_hash.into(),
        })
    }

    /// Hashes a new password.
    ///
    /// # Errors
    /// `HashQueueFull` when no slot frees up in time.
    pub async fn hash(&self, password: String) -> Result<String, DomainError> {
        let params = self.params.clone();
        self.run(move || hash_with(&params, &password)).await?
    }

    /// Verifies `password` against `stored`, or against the dummy hash when
    /// there is no user, so both paths cost one argon2 computation.
    ///
    /// # Errors
    /// `HashQueueFull` when no slot frees up in time.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, DomainError> {
        let real = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let ok = self
            .run(move || {
                PasswordHash::new(&hash)
                    .map(|parsed| {
                        Argon2::default()
                            .verify_password(password.as_bytes(), &parsed)
                            .is_ok()
                    })
                    .unwrap_or(false)
            })
            .await?;
        Ok(ok && real)
    }

    /// Hashes in flight right now.
    pub fn in_flight(&self, max: usize) -> usize {
        max.saturating_sub(self.slots.available_permits())
    }

    /// Callers waiting for a slot right now: the hashing queue's depth.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, DomainError> {
        let queued = Waiting::start(&self.waiting);
        let permit = tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| DomainError::HashQueueFull)?
            .map_err(|_| DomainError::Internal("hash semaphore closed"))?;
        drop(queued);
        tokio::task::spawn_blocking(move || {
            let out = f();
            drop(permit);
            out
        })
        .await
        .map_err(|_| DomainError::Internal("hashing task failed"))
    }
}

fn hash_with(params: &Params, password: &str) -> Result<String, DomainError> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| DomainError::Internal("no randomness"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|_| DomainError::Internal("salt encoding"))?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| DomainError::Internal("argon2 hashing failed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> PasswordSettings {
        PasswordSettings {
            memory_kib: 19456,
            iterations: 2,
            parallelism: 1,
            max_concurrent_hashes: 1,
            queue_timeout_ms: 5000,
        }
    }

    #[test]
    fn policy_bounds() {
        assert!(check_policy("short").is_err());
        assert!(check_policy(&"x".repeat(257)).is_err());
        assert!(check_policy("long enough").is_ok());
        assert!(check_policy(&"é".repeat(8)).is_ok());
    }

    #[tokio::test]
    async fn hashes_with_owasp_parameters_and_verifies() {
        let p = Passwords::new(&settings(), 1).expect("builds");
        let h = p.hash("correct horse".into()).await.expect("hashes");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(p
            .verify("correct horse".into(), Some(h.clone()))
            .await
            .expect("verifies"));
        assert!(!p
            .verify("wrong horse".into(), Some(h))
            .await
            .expect("verifies"));
        assert!(!p.verify("anything".into(), None).await.expect("verifies"));
    }
}
