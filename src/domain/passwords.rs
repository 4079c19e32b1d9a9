//! Password hashing with argon2id, off the request threads and bounded: at
//! most `max_concurrent_hashes` run at once (each holds `memory_kib` of RAM),
//! and a login that waits longer than the queue timeout is told to come back,
//! so a flood of logins cannot exhaust memory or starve other requests.
//!
//! Each slot keeps its argon2 working memory and hands it to the next hash
//! instead of freeing it. Allocating and freeing ~19 MiB per login on
//! whichever blocking thread runs it lets the allocator keep a copy per
//! thread arena; reusing the buffers holds the hashing memory at
//! `max_concurrent_hashes × memory_kib` however many logins arrive.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use argon2::password_hash::{Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use tokio::sync::Semaphore;

use super::error::DomainError;

/// Shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted, in bytes: checked before any hashing so a huge
/// password costs nothing.
pub const MAX_PASSWORD_BYTES: usize = 256;

/// Checks a new password's length, the only rule there is: at least
/// `MIN_PASSWORD_CHARS` characters and at most `MAX_PASSWORD_BYTES` bytes.
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

/// The most argon2 memory one hash may use, in KiB (1 GiB): the largest
/// `passwords.memory_kib` the configuration accepts, and the most a stored
/// hash may ask for.
pub const MAX_MEMORY_KIB: u32 = 1_048_576;

/// `MAX_MEMORY_KIB` in argon2's 1 KiB blocks.
const MAX_STORED_HASH_BLOCKS: usize = MAX_MEMORY_KIB as usize;

/// How passwords are hashed, as validated from `[passwords]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Policy {
    /// argon2id memory cost in KiB, at most `MAX_MEMORY_KIB`.
    pub memory_kib: u32,
    /// argon2id passes.
    pub iterations: u32,
    /// argon2id lanes.
    pub parallelism: u32,
    /// Hashes computed at once; each holds `memory_kib` while it runs.
    pub slots: usize,
    /// How long a caller waits for a slot before being told to come back.
    pub queue_timeout: Duration,
}

/// Bounded argon2id hashing and verification.
#[derive(Debug, Clone)]
pub struct Passwords {
    params: Params,
    slots: Arc<Semaphore>,
    slot_count: usize,
    memory: Arc<MemoryPool>,
    waiting: Arc<AtomicUsize>,
    queue_timeout: Duration,
    dummy_hash: Arc<str>,
}

/// argon2 working memory, one buffer per slot that has hashed at least once.
/// A hash takes a buffer while it runs and puts it back; the semaphore keeps
/// the number of buffers at or below the number of slots.
#[derive(Debug, Default)]
struct MemoryPool(Mutex<Vec<Vec<Block>>>);

impl MemoryPool {
    /// A buffer of at least `blocks` blocks: a returned one when there is
    /// one, else a new one (the first hash on a slot).
    fn take(&self, blocks: usize) -> Vec<Block> {
        let reused = self.0.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut buffer = reused.unwrap_or_default();
        if buffer.len() < blocks {
            // First use, or a stored hash made with more memory than now.
            buffer.resize(blocks, Block::default());
        }
        buffer
    }

    fn put(&self, buffer: Vec<Block>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(buffer);
    }

    /// Buffers back in the pool; a running hash holds its own outside it.
    #[cfg(test)]
    fn buffers(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
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
    /// `Internal` when the argon2 parameters are invalid or no randomness
    /// is available.
    pub fn new(s: &Argon2Policy) -> Result<Self, DomainError> {
        let params = Params::new(s.memory_kib, s.iterations, s.parallelism, None)
            .map_err(|_| DomainError::Internal("invalid argon2 parameters"))?;
        let mut random = [0u8; 24];
        SystemRandom::new()
            .fill(&mut random)
            .map_err(|_| DomainError::Internal("no randomness"))?;
        let memory = Arc::new(MemoryPool::default());
        let mut buffer = memory.take(params.block_count());
        let dummy_hash = hash_with(&params, hex::encode(random).as_bytes(), &mut buffer)?;
        memory.put(buffer);
        Ok(Self {
            params,
            slots: Arc::new(Semaphore::new(s.slots.max(1))),
            slot_count: s.slots.max(1),
            memory,
            waiting: Arc::default(),
            queue_timeout: s.queue_timeout,
            dummy_hash: dummy_hash.into(),
        })
    }

    /// Hashes `password` into a PHC string with a fresh salt and the
    /// configured parameters, waiting up to the queue timeout for a slot.
    ///
    /// # Errors
    /// `HashQueueFull` when no slot frees up in time.
    pub async fn hash(&self, password: String) -> Result<String, DomainError> {
        let params = self.params.clone();
        self.run(params.block_count(), move |buffer| {
            hash_with(&params, password.as_bytes(), buffer)
        })
        .await?
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
        // A stored hash names its own parameters; size the buffer for them,
        // up to the configurable maximum. A hash asking for more fails to
        // verify rather than allocate.
        let blocks = PasswordHash::new(&hash)
            .ok()
            .and_then(|parsed| Params::try_from(&parsed).ok())
            .map_or(0, |p| p.block_count())
            .min(MAX_STORED_HASH_BLOCKS);
        let ok = self
            .run(blocks, move |buffer| {
                verify_with(password.as_bytes(), &hash, buffer)
            })
            .await?;
        Ok(ok && real)
    }

    /// Whether `stored` is weaker than what new hashes get: another
    /// algorithm or version, or less memory, fewer iterations or less
    /// parallelism than configured. Such a hash verifies faster than the
    /// dummy hash unknown emails are checked against, so it tells an old
    /// account apart by timing until it is re-hashed. A hash that does not
    /// parse is not upgraded (it never verifies anyway).
    pub fn is_weaker_than_configured(&self, stored: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(stored) else {
            return false;
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return false;
        };
        parsed.algorithm != Algorithm::Argon2id.ident()
            || parsed.version != Some(Version::V0x13.into())
            || params.m_cost() < self.params.m_cost()
            || params.t_cost() < self.params.t_cost()
            || params.p_cost() < self.params.p_cost()
    }

    /// Hashes `password` with the configured parameters only if a hashing
    /// slot is free right now: re-hashing on login is an upgrade that may
    /// wait for a later login, and never queues behind (or in front of)
    /// the logins that need a slot. `None` when no slot was free.
    ///
    /// # Errors
    /// `Internal` when the hashing task dies or no randomness is available.
    pub async fn hash_if_idle(&self, password: String) -> Result<Option<String>, DomainError> {
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            return Ok(None);
        };
        let params = self.params.clone();
        let memory = self.memory.clone();
        tokio::task::spawn_blocking(move || {
            let mut buffer = memory.take(params.block_count());
            let out = hash_with(&params, password.as_bytes(), &mut buffer);
            memory.put(buffer);
            drop(permit);
            out
        })
        .await
        .map_err(|_| DomainError::Internal("hashing task failed"))?
        .map(Some)
    }

    /// How many hashes may run at once.
    pub fn slot_count(&self) -> usize {
        self.slot_count
    }

    /// Slots taken right now, re-hashes on login included.
    pub fn in_flight(&self) -> usize {
        self.slot_count
            .saturating_sub(self.slots.available_permits())
    }

    /// Callers waiting for a slot right now: the hashing queue's depth.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// argon2 buffers held for reuse (at most one per slot).
    #[cfg(test)]
    fn buffers(&self) -> usize {
        self.memory.buffers()
    }

    async fn run<T: Send + 'static>(
        &self,
        blocks: usize,
        f: impl FnOnce(&mut [Block]) -> T + Send + 'static,
    ) -> Result<T, DomainError> {
        let queued = Waiting::start(&self.waiting);
        let permit = tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| DomainError::HashQueueFull)?
            .map_err(|_| DomainError::Internal("hash semaphore closed"))?;
        drop(queued);
        let memory = self.memory.clone();
        tokio::task::spawn_blocking(move || {
            let mut buffer = memory.take(blocks);
            let out = f(&mut buffer);
            memory.put(buffer);
            drop(permit);
            out
        })
        .await
        .map_err(|_| DomainError::Internal("hashing task failed"))
    }
}

/// Hashes `password` with a fresh salt into a PHC string, in `memory`.
fn hash_with(
    params: &Params,
    password: &[u8],
    memory: &mut [Block],
) -> Result<String, DomainError> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| DomainError::Internal("no randomness"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|_| DomainError::Internal("salt encoding"))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let output = compute(
        &argon,
        password,
        salt.as_salt(),
        Params::DEFAULT_OUTPUT_LEN,
        memory,
    )
    .ok_or(DomainError::Internal("argon2 hashing failed"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params)
            .map_err(|_| DomainError::Internal("argon2 parameters"))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `stored`; any malformed part
/// of `stored` is a mismatch. The comparison is constant-time.
fn verify_with(password: &[u8], stored: &str, memory: &mut [Block]) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let argon = Argon2::new(algorithm, version, params);
    compute(&argon, password, salt, expected.len(), memory).is_some_and(|out| out == expected)
}

/// One argon2 computation in the caller's memory; `None` on any error.
fn compute(
    argon: &Argon2<'_>,
    password: &[u8],
    salt: Salt<'_>,
    len: usize,
    memory: &mut [Block],
) -> Option<Output> {
    let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
    let salt = salt.decode_b64(&mut salt_bytes).ok()?;
    Output::init_with(len, |out| {
        argon
            .hash_password_into_with_memory(password, salt, out, &mut *memory)
            .map_err(|_| argon2::password_hash::Error::Password)
    })
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Argon2Policy {
        Argon2Policy {
            memory_kib: 19456,
            iterations: 2,
            parallelism: 1,
            slots: 1,
            queue_timeout: Duration::from_millis(5000),
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
        let p = Passwords::new(&settings()).expect("builds");
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

    #[test]
    fn hashes_interoperate_with_the_argon2_crate() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let params = Params::new(1024, 1, 1, None).expect("params");
        let mut memory = vec![Block::default(); params.block_count()];
        let ours = hash_with(&params, b"correct horse", &mut memory).expect("hashes");
        let parsed = PasswordHash::new(&ours).expect("a PHC string");
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"wrong", &parsed)
            .is_err());

        let salt = SaltString::encode_b64(&[3u8; 16]).expect("salt");
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"battery staple", &salt)
            .expect("hashes")
            .to_string();
        assert!(verify_with(b"battery staple", &theirs, &mut memory));
        assert!(!verify_with(b"battery stapler", &theirs, &mut memory));
    }

    #[test]
    fn malformed_or_foreign_stored_hashes_never_match() {
        let mut memory = vec![Block::default(); 8];
        for stored in [
            "",
            "not a hash",
            "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ",
            "$argon2id$v=99$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$scrypt$ln=15,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        ] {
            assert!(!verify_with(b"password", stored, &mut memory), "{stored}");
        }
    }

    #[tokio::test]
    async fn a_stored_hash_with_more_memory_than_configured_still_verifies() {
        let bigger = Params::new(4096, 1, 1, None).expect("params");
        let mut memory = vec![Block::default(); bigger.block_count()];
        let stored = hash_with(&bigger, b"old password", &mut memory).expect("hashes");
        let mut small = settings();
        small.memory_kib = 1024;
        small.iterations = 1;
        let p = Passwords::new(&small).expect("builds");
        assert!(p
            .verify("old password".into(), Some(stored))
            .await
            .expect("verifies"));
    }

    #[tokio::test]
    async fn weaker_stored_hashes_are_told_apart_and_upgraded() {
        let mut s = settings();
        s.memory_kib = 2048;
        s.iterations = 2;
        let p = Passwords::new(&s).expect("builds");
        let current = p.hash("pw".into()).await.expect("hashes");
        assert!(!p.is_weaker_than_configured(&current));
        for (m, t, par) in [(1024, 2, 1), (2048, 1, 1)] {
            let weaker = Params::new(m, t, par, None).expect("params");
            let mut memory = vec![Block::default(); weaker.block_count()];
            let stored = hash_with(&weaker, b"pw", &mut memory).expect("hashes");
            assert!(p.is_weaker_than_configured(&stored), "{stored}");
        }
        let stronger = Params::new(4096, 3, 1, None).expect("params");
        let mut memory = vec![Block::default(); stronger.block_count()];
        let stored = hash_with(&stronger, b"pw", &mut memory).expect("hashes");
        assert!(!p.is_weaker_than_configured(&stored));
        assert!(!p.is_weaker_than_configured("not a hash"));
        let argon2i = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(2048, 2, 1, None).expect("params"),
        );
        let salt = SaltString::encode_b64(&[5u8; 16]).expect("salt");
        let stored = {
            use argon2::password_hash::PasswordHasher as _;
            argon2i
                .hash_password(b"pw", &salt)
                .expect("hashes")
                .to_string()
        };
        assert!(p.is_weaker_than_configured(&stored));

        let upgraded = p
            .hash_if_idle("pw".into())
            .await
            .expect("hashes")
            .expect("a slot is free");
        assert!(
            upgraded.starts_with("$argon2id$v=19$m=2048,t=2,p=1$"),
            "{upgraded}"
        );
        assert!(p
            .verify("pw".into(), Some(upgraded))
            .await
            .expect("verifies"));
    }

    #[tokio::test]
    async fn hash_if_idle_never_waits_for_a_slot() {
        let mut s = settings();
        s.memory_kib = 1024;
        s.iterations = 1;
        let p = Passwords::new(&s).expect("builds");
        let held = p.slots.clone().try_acquire_owned().expect("the only slot");
        assert!(p
            .hash_if_idle("pw".into())
            .await
            .expect("no error")
            .is_none());
        drop(held);
        assert!(p
            .hash_if_idle("pw".into())
            .await
            .expect("no error")
            .is_some());
    }

    #[tokio::test]
    async fn buffers_are_reused_never_more_than_one_per_slot() {
        let mut s = settings();
        s.memory_kib = 1024;
        s.iterations = 1;
        s.slots = 2;
        let p = Passwords::new(&s).expect("builds");
        let mut tasks = Vec::new();
        for i in 0..16 {
            let p = p.clone();
            tasks.push(tokio::spawn(async move {
                p.hash(format!("password {i}")).await.expect("hashes")
            }));
        }
        for t in tasks {
            t.await.expect("joins");
        }
        assert!(p.buffers() <= 2, "{} buffers for 2 slots", p.buffers());
        assert!(p.buffers() >= 1);
    }
}
