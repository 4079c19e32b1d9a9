//! Where a token's signature is computed (`tokens.signing`): inline on the
//! request's worker, or on a few dedicated OS threads behind a bounded queue.
//! Only the private-key operation and the token's assembly (header, payload,
//! base64url) move to the pool; claims are built by the caller, and nothing
//! here touches the store or the wire.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::keys::LoadedKey;
use crate::tokens::jwt;

/// `tokens.signing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningMode {
    /// On the actix worker that handles the request.
    Inline,
    /// On a pool of one OS thread per core.
    Pool,
}

impl SigningMode {
    /// `inline` or `pool`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "inline" => Some(Self::Inline),
            "pool" => Some(Self::Pool),
            _ => None,
        }
    }
}

/// Why a token could not be signed. Neither happens with a loaded key and a
/// running pool; both become a 500 `server_error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The key refused to sign, or the claims did not serialise.
    #[error("signing failed")]
    Key,
    /// The pool is shut down, or the job panicked on its thread.
    #[error("signing pool unavailable")]
    Pool,
}

/// Signs tokens, inline or on the pool, as configured.
#[derive(Debug)]
pub struct Signer {
    pool: Option<SigningPool>,
}

impl Signer {
    /// Signing on the caller's thread: what a worker does with no pool.
    pub fn inline() -> Self {
        Self { pool: None }
    }

    /// Signing on `threads` dedicated threads, at most `threads *
    /// QUEUE_PER_THREAD` jobs waiting.
    ///
    /// # Errors
    /// The OS refused a thread.
    pub fn pool(threads: usize) -> std::io::Result<Self> {
        let threads = threads.max(1);
        Ok(Self {
            pool: Some(SigningPool::new(threads, threads * QUEUE_PER_THREAD)?),
        })
    }

    /// Per `mode`, with a pool sized to the cores.
    ///
    /// # Errors
    /// The OS refused a thread.
    pub fn for_mode(mode: SigningMode) -> std::io::Result<Self> {
        match mode {
            SigningMode::Inline => Ok(Self::inline()),
            SigningMode::Pool => {
                Self::pool(std::thread::available_parallelism().map_or(2, |n| n.get()))
            }
        }
    }

    /// Signs `claims` with `key` as a compact JWS of type `typ`.
    ///
    /// # Errors
    /// See [`SignError`].
    pub async fn sign<T>(
        &self,
        key: Arc<LoadedKey>,
        typ: &'static str,
        claims: T,
    ) -> Result<String, SignError>
    where
        T: Serialize + Send + 'static,
    {
        let job =
            move || jwt::sign(&key.pair, &key.entry.kid, typ, &claims).map_err(|_| SignError::Key);
        match &self.pool {
            None => job(),
            Some(pool) => pool.run(job).await?,
        }
    }
}

/// Jobs that may wait per signing thread. Enough to keep every thread busy
/// while the workers hand over the next requests; beyond it, a request's
/// task waits for a free slot (backpressure) instead of queueing without
/// bound. One queued job holds its claims and a few hundred bytes.
pub const QUEUE_PER_THREAD: usize = 64;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A fixed set of OS threads taking jobs from one bounded queue. Dropping it
/// closes the queue; the threads finish the jobs already queued and are
/// joined.
#[derive(Debug)]
pub struct SigningPool {
    queue: Option<mpsc::Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
    capacity: usize,
}

impl SigningPool {
    /// `threads` threads named `signing-N`, at most `queue_len` jobs waiting.
    /// Returns once every thread is running, so a server that answers
    /// `/readyz` has its signing threads up, not merely asked for.
    ///
    /// # Errors
    /// The OS refused a thread (those already started are joined).
    pub fn new(threads: usize, queue_len: usize) -> std::io::Result<Self> {
        let capacity = queue_len.max(1);
        let (tx, rx) = mpsc::channel::<Job>(capacity);
        let rx = Arc::new(Mutex::new(rx));
        let mut pool = Self {
            queue: Some(tx),
            threads: Vec::with_capacity(threads),
            capacity,
        };
        let (started, running) = std::sync::mpsc::channel::<()>();
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let started = started.clone();
            let handle = std::thread::Builder::new()
                .name(format!("signing-{i}"))
                .spawn(move || {
                    let _ = started.send(());
                    drop(started);
                    work(&rx);
                })?;
            pool.threads.push(handle);
        }
        drop(started);
        // Ends early only if a thread died before saying so (every sender
        // is then gone), so this never waits forever.
        for _ in &pool.threads {
            if running.recv().is_err() {
                break;
            }
        }
        Ok(pool)
    }

    /// Runs `job` on a pool thread and hands back its result. Waits for a
    /// free queue slot when the queue is full.
    ///
    /// # Errors
    /// `SignError::Pool` when the pool is shut down or the job panicked.
    pub async fn run<R, F>(&self, job: F) -> Result<R, SignError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let queue = self.queue.as_ref().ok_or(SignError::Pool)?;
        let permit = queue.reserve().await.map_err(|_| SignError::Pool)?;
        let (done, result) = oneshot::channel();
        permit.send(Box::new(move || {
            // The caller may have gone (its request was cancelled).
            let _ = done.send(job());
        }));
        // A panicking job drops `done` unsent: its caller gets an error,
        // and the thread goes on with the next job.
        result.await.map_err(|_| SignError::Pool)
    }

    /// Jobs waiting for a thread (not those running).
    pub fn queued(&self) -> usize {
        self.queue
            .as_ref()
            .map_or(0, |q| self.capacity - q.capacity())
    }
}

impl Drop for SigningPool {
    fn drop(&mut self) {
        self.queue = None;
        let me = std::thread::current().id();
        for handle in self.threads.drain(..) {
            // A job that owned the last handle to the pool would otherwise
            // wait for its own thread.
            if handle.thread().id() != me {
                let _ = handle.join();
            }
        }
    }
}

/// One pool thread: take a job, run it, until the queue is closed and empty.
fn work(rx: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        // The lock is held only while waiting for the next job, never while
        // running one, so the threads sign in parallel.
        let job = match rx.lock() {
            Ok(mut rx) => rx.blocking_recv(),
            Err(_) => return,
        };
        let Some(job) = job else { return };
        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Waker};

    use crate::tokens::claims::AccessClaims;
    use crate::tokens::jwt::{Algorithm, ACCESS_TOKEN_TYP};

    fn claims() -> AccessClaims {
        AccessClaims {
            iss: "https://issuer.test".into(),
            sub: "user".into(),
            aud: "api".into(),
            exp: 2_000_000_000,
            iat: 1_900_000_000,
            jti: "jti".into(),
            client_id: "client".into(),
            scope: "read".into(),
            sid: None,
            nbf: None,
            cnf: None,
        }
    }

    /// A freshly generated key; `decoding` is usable for P-256 only (the
    /// one algorithm checked by verification here).
    fn key(alg: Algorithm) -> Arc<LoadedKey> {
        use crate::keys::jwks::Jwk;
        use crate::keys::manifest::ManifestEntry;
        use crate::tokens::keypair::{KeyPair, PublicKey};
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        let der = KeyPair::generate_pkcs8(alg, 2048).expect("generate");
        let pair = KeyPair::from_pkcs8(&der).expect("parse");
        let public = pair.public_key();
        let decoding = match &public {
            PublicKey::P256 { x, y } => jsonwebtoken::DecodingKey::from_ec_components(
                &URL_SAFE_NO_PAD.encode(x),
                &URL_SAFE_NO_PAD.encode(y),
            )
            .expect("ec key"),
            _ => jsonwebtoken::DecodingKey::from_secret(b"unused"),
        };
        let jwk = Jwk::from_public(&public);
        let at = chrono::DateTime::UNIX_EPOCH;
        Arc::new(LoadedKey {
            entry: ManifestEntry {
                kid: jwk.kid.clone(),
                file: "key.pem".into(),
                published_at: at,
                activates_at: at,
                retires_at: None,
                expires_at: None,
            },
            pair,
            jwk,
            decoding,
        })
    }

    #[tokio::test]
    async fn pool_signs_exactly_what_inline_signs() {
        let pool = Signer::pool(2).expect("pool");
        let inline = Signer::inline();
        // RS256 (PKCS#1 v1.5) and EdDSA are deterministic: the same claims
        // give the same bytes; ES256 is randomised, so it is verified.
        for alg in [Algorithm::Rs256, Algorithm::EdDsa] {
            let k = key(alg);
            let a = inline
                .sign(k.clone(), ACCESS_TOKEN_TYP, claims())
                .await
                .expect("inline");
            let b = pool
                .sign(k.clone(), ACCESS_TOKEN_TYP, claims())
                .await
                .expect("pool");
            assert_eq!(a, b, "{alg:?}");
        }
        let k = key(Algorithm::Es256);
        let token = pool
            .sign(k.clone(), ACCESS_TOKEN_TYP, claims())
            .await
            .expect("pool");
        let verified: AccessClaims = jwt::verify(
            &token,
            &k.decoding,
            Algorithm::Es256,
            "https://issuer.test",
            Some(&["api"]),
            1_900_000_000,
            0,
        )
        .expect("verifies");
        assert_eq!(verified.sub, "user");
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone_and_the_pool_goes_on() {
        let pool = SigningPool::new(1, 4).expect("pool");
        let r = pool.run(|| -> u32 { panic!("boom") }).await;
        assert_eq!(r, Err(SignError::Pool));
        // The only thread survived and takes the next jobs.
        for i in 0..8u32 {
            assert_eq!(pool.run(move || i * 2).await, Ok(i * 2));
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_full_queue_makes_callers_wait_instead_of_growing() {
        let pool = Arc::new(SigningPool::new(1, 3).expect("pool"));
        // Hold the only thread until released.
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = std::sync::mpsc::channel::<()>();
        let blocker = {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.run(move || {
                    let _ = started_tx.send(());
                    let _ = gate.recv();
                })
                .await
            })
        };
        while started.try_recv().is_err() {
            tokio::task::yield_now().await;
        }
        // Fill the queue: three jobs wait.
        let ran = Arc::new(AtomicUsize::new(0));
        let mut waiting = Vec::new();
        for _ in 0..3 {
            let (pool, ran) = (pool.clone(), ran.clone());
            waiting.push(tokio::spawn(async move {
                pool.run(move || ran.fetch_add(1, Ordering::SeqCst)).await
            }));
        }
        while pool.queued() < 3 {
            tokio::task::yield_now().await;
        }
        // A fourth caller cannot enqueue: its future stays pending and the
        // queue does not grow.
        let mut fourth = pin!(pool.run(|| 4usize));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(fourth.as_mut().poll(&mut cx).is_pending());
        assert!(fourth.as_mut().poll(&mut cx).is_pending());
        assert_eq!(pool.queued(), 3);
        assert_eq!(ran.load(Ordering::SeqCst), 0);
        // Released, everything runs, the fourth caller included.
        release.send(()).expect("release");
        assert_eq!(blocker.await.expect("join"), Ok(()));
        for w in waiting {
            assert!(w.await.expect("join").is_ok());
        }
        assert_eq!(fourth.await, Ok(4));
        assert_eq!(ran.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn dropping_the_pool_runs_the_queued_jobs_and_joins_its_threads() {
        let pool = SigningPool::new(2, 8).expect("pool");
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        let ran = Arc::new(AtomicUsize::new(0));
        let queue = pool.queue.clone().expect("open");
        for _ in 0..6 {
            let (gate, ran) = (gate.clone(), ran.clone());
            let job: Job = Box::new(move || {
                let _ = gate.lock().map(|g| g.recv());
                ran.fetch_add(1, Ordering::SeqCst);
            });
            assert!(queue.try_send(job).is_ok());
        }
        drop(queue);
        // Dropped while every job still waits on the gate: the drop
        // returns only once all six have run and both threads have ended.
        let dropper = std::thread::spawn(move || drop(pool));
        for _ in 0..6 {
            release.send(()).expect("release");
        }
        dropper.join().expect("drop joined");
        assert_eq!(ran.load(Ordering::SeqCst), 6);
    }

    #[test]
    fn modes_are_named() {
        assert_eq!(SigningMode::from_name("inline"), Some(SigningMode::Inline));
        assert_eq!(SigningMode::from_name("pool"), Some(SigningMode::Pool));
        assert_eq!(SigningMode::from_name("Pool"), None);
        assert_eq!(SigningMode::from_name(""), None);
    }
}
