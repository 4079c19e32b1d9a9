//! The JWKS cache. One rule per threat:
//! - freshness follows the issuer's `Cache-Control` (clamped to the
//!   configured bounds), renewed with `If-None-Match` so an unchanged set
//!   costs a 304;
//! - a background task renews at 80% of the freshness, so requests do not
//!   wait and a key published ahead of use is known before it signs;
//! - one fetch at a time (a gate, and an attempt counter so whoever waited
//!   behind a fetch does not repeat it);
//! - an unknown `kid` triggers at most one fetch per interval, claimed
//!   before any queueing: a flood of forged `kid`s costs the issuer one
//!   request per interval; requests that arrive while that fetch is in
//!   flight wait for it (the first tokens of a new key come together);
//! - a failed fetch keeps the last good set for a bounded time
//!   (stale-if-error) and is retried no sooner than the retry interval.
//!
//! Every fetch runs as a task on the runtime that built the verifier, so a
//! caller that gives up (a client that disconnected) cannot cancel a fetch
//! half-way and leave the gate to a second one, and connections stay on one
//! runtime even when a framework runs one runtime per worker thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use super::http::{self, FetchFailed, JwksAnswer, Metadata, SetupError};
use super::introspect::IntrospectionCache;
use super::Settings;
use crate::clock::Clock;
use crate::keys::{KeySet, PinnedKey};
use crate::verify::Expectations;
use crate::Error;

/// Counters of the JWKS cache since the verifier was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests sent for the JWKS (including the first, and 304s).
    pub fetches: u64,
    /// Of those, how many were answered 304 Not Modified.
    pub not_modified: u64,
    /// Of those, how many were caused by an unknown `kid`.
    pub unknown_kid_fetches: u64,
    /// Fetches that failed (unreachable, error status, not a JWK Set).
    pub failures: u64,
    /// Requests sent to the introspection endpoint.
    pub introspections: u64,
}

#[derive(Default)]
struct Counters {
    fetches: AtomicU64,
    not_modified: AtomicU64,
    unknown_kid_fetches: AtomicU64,
    failures: AtomicU64,
    pub(super) introspections: AtomicU64,
}

/// Why a fetch is made: logged with it, and counted apart in
/// `Stats::unknown_kid_fetches` when it is an unknown `kid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Background,
    Expired,
    UnknownKid,
}

struct State {
    keys: Arc<KeySet>,
    etag: Option<String>,
    /// When the last successful fetch happened (clock time).
    fetched_at: Duration,
    /// Until when the set is fresh.
    fresh_until: Duration,
    /// Bumped by every fetch attempt, successful or not.
    attempts: u64,
    /// No fetch before this after a failure.
    retry_not_before: Duration,
    /// When an unknown `kid` last caused a fetch.
    last_unknown_kid_fetch: Option<Duration>,
}

pub(crate) struct Inner {
    pub issuer: String,
    pub jwks_uri: String,
    pub introspection_endpoint: Option<String>,
    pub introspection_client: Option<(String, String)>,
    pub introspection_cache: IntrospectionCache,
    pub http: reqwest::Client,
    pub expect: Expectations,
    pub settings: Settings,
    pub clock: Arc<dyn Clock>,
    state: RwLock<State>,
    gate: tokio::sync::Mutex<()>,
    /// Whether a fetch caused by an unknown `kid` is in flight.
    unknown_kid_fetch: tokio::sync::watch::Sender<bool>,
    counters: Counters,
    pub(super) runtime: tokio::runtime::Handle,
}

impl Inner {
    /// Fetches the first key set (which must succeed) and starts the
    /// background refresher.
    pub(super) async fn load(
        issuer: String,
        metadata: Metadata,
        http: reqwest::Client,
        expect: Expectations,
        settings: Settings,
        clock: Arc<dyn Clock>,
        introspection_client: Option<(String, String)>,
    ) -> Result<Arc<Self>, SetupError> {
        let now = clock.now();
        let inner = Arc::new(Self {
            issuer,
            jwks_uri: metadata.jwks_uri,
            introspection_endpoint: metadata.introspection_endpoint,
            introspection_client,
            introspection_cache: IntrospectionCache::default(),
            http,
            expect,
            settings,
            clock,
            state: RwLock::new(State {
                keys: Arc::new(KeySet::default()),
                etag: None,
                fetched_at: now,
                fresh_until: now,
                attempts: 0,
                retry_not_before: now,
                last_unknown_kid_fetch: None,
            }),
            gate: tokio::sync::Mutex::new(()),
            unknown_kid_fetch: tokio::sync::watch::Sender::new(false),
            counters: Counters::default(),
            runtime: tokio::runtime::Handle::current(),
        });
        if !inner.clone().fetch_now(Reason::Expired).await {
            return Err(SetupError::Fetch {
                what: "JWKS",
                source: None,
            });
        }
        if inner.settings.background_refresh {
            tokio::spawn(refresh_in_background(Arc::downgrade(&inner)));
        }
        Ok(inner)
    }

    pub(crate) fn now_secs(&self) -> i64 {
        i64::try_from(self.clock.now().as_secs()).unwrap_or(i64::MAX)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The key published as `kid`, fetching only as the rules above allow.
    pub(super) async fn key_for(self: &Arc<Self>, kid: &str) -> Result<Arc<PinnedKey>, Error> {
        let now = self.clock.now();
        let (attempts, key, fresh) = {
            let s = self.read();
            (s.attempts, s.keys.get(kid).cloned(), now < s.fresh_until)
        };
        if fresh {
            if let Some(key) = key {
                return Ok(key);
            }
            self.fetch_for_unknown_kid(attempts, now).await;
        } else {
            self.run(attempts, Reason::Expired).await;
        }
        let now = self.clock.now();
        let s = self.read();
        if now >= s.fresh_until.saturating_add(self.settings.stale_if_error) {
            return Err(Error::Unavailable);
        }
        s.keys.get(kid).cloned().ok_or(Error::UnknownKey)
    }

    /// An unknown `kid` while the set is fresh: one fetch per interval.
    /// The interval is checked and claimed before queueing at the gate, so
    /// a flood neither fetches nor piles up behind a fetch.
    async fn fetch_for_unknown_kid(self: &Arc<Self>, attempts: u64, now: Duration) {
        let claimed = {
            let mut s = self.write();
            if s.attempts != attempts {
                // A fetch finished since we looked; its set is the answer.
                return;
            }
            let within_interval = s
                .last_unknown_kid_fetch
                .is_some_and(|t| now < t.saturating_add(self.settings.unknown_kid_interval));
            if !within_interval {
                s.last_unknown_kid_fetch = Some(now);
                // Set under the state lock, so whoever sees the claim also
                // sees the fetch in flight.
                self.unknown_kid_fetch.send_replace(true);
            }
            !within_interval
        };
        if claimed {
            self.run(attempts, Reason::UnknownKid).await;
        } else {
            self.wait_for_unknown_kid_fetch().await;
        }
    }

    /// A request that lost the claim waits for the fetch in flight, if
    /// any, rather than refuse a key that fetch is about to bring: the
    /// first tokens of a new key arrive together. It adds no fetch, and the
    /// wait is bounded by the request timeout.
    async fn wait_for_unknown_kid_fetch(&self) {
        let mut in_flight = self.unknown_kid_fetch.subscribe();
        let _ = tokio::time::timeout(
            self.settings.http_timeout,
            in_flight.wait_for(|busy| !*busy),
        )
        .await;
    }

    /// Runs a fetch on the verifier's runtime unless one happened since
    /// `attempts` was read, and waits for it.
    async fn run(self: &Arc<Self>, attempts: u64, reason: Reason) {
        let inner = self.clone();
        let task = self.runtime.spawn(async move {
            let _gate = inner.gate.lock().await;
            let skip = {
                let s = inner.read();
                s.attempts != attempts || inner.clock.now() < s.retry_not_before
            };
            if !skip {
                inner.clone().fetch_now(reason).await;
            }
            // Cleared here, not by the caller, who may have gone away.
            if reason == Reason::UnknownKid {
                inner.unknown_kid_fetch.send_replace(false);
            }
        });
        // A panic in the task cannot happen on input; if the runtime is
        // gone the cached set simply stays as it is.
        let _ = task.await;
    }

    /// One fetch; the caller holds the gate (or is `load`). Returns whether
    /// it succeeded.
    async fn fetch_now(self: Arc<Self>, reason: Reason) -> bool {
        let etag = self.read().etag.clone();
        self.counters.fetches.fetch_add(1, Ordering::Relaxed);
        if reason == Reason::UnknownKid {
            self.counters
                .unknown_kid_fetches
                .fetch_add(1, Ordering::Relaxed);
        }
        let answer = http::fetch_jwks(&self.http, &self.jwks_uri, etag.as_deref()).await;
        let now = self.clock.now();
        tracing::debug!(jwks.uri = %self.jwks_uri, ?reason, ok = answer.is_ok(), "JWKS fetched");
        let mut s = self.write();
        s.attempts += 1;
        match answer {
            Ok(JwksAnswer::Fresh {
                keys,
                etag,
                max_age,
            }) => {
                s.keys = Arc::new(keys);
                s.etag = etag;
                s.fetched_at = now;
                s.fresh_until = now.saturating_add(self.ttl(max_age));
                true
            }
            Ok(JwksAnswer::NotModified { max_age }) => {
                self.counters.not_modified.fetch_add(1, Ordering::Relaxed);
                s.fetched_at = now;
                s.fresh_until = now.saturating_add(self.ttl(max_age));
                true
            }
            Err(FetchFailed) => {
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                s.retry_not_before = now.saturating_add(self.settings.retry_interval);
                tracing::warn!(jwks.uri = %self.jwks_uri, "JWKS fetch failed; keeping the last good key set");
                false
            }
        }
    }

    fn ttl(&self, max_age: Option<Duration>) -> Duration {
        max_age
            .unwrap_or(self.settings.default_ttl)
            .clamp(self.settings.min_ttl, self.settings.max_ttl)
    }

    /// How long the background task sleeps before its next renewal.
    fn next_renewal_in(&self) -> Duration {
        let now = self.clock.now();
        let s = self.read();
        let ttl = s.fresh_until.saturating_sub(s.fetched_at);
        let renew_at = s.fetched_at.saturating_add(ttl.mul_f64(0.8));
        renew_at
            .max(s.retry_not_before)
            .saturating_sub(now)
            .max(Duration::from_millis(100))
    }

    pub(super) fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            fetches: c.fetches.load(Ordering::Relaxed),
            not_modified: c.not_modified.load(Ordering::Relaxed),
            unknown_kid_fetches: c.unknown_kid_fetches.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
            introspections: c.introspections.load(Ordering::Relaxed),
        }
    }

    pub(super) fn count_introspection(&self) {
        self.counters.introspections.fetch_add(1, Ordering::Relaxed);
    }
}

/// Renews the key set ahead of expiry for as long as the verifier lives.
async fn refresh_in_background(inner: Weak<Inner>) {
    loop {
        let Some(wait) = inner.upgrade().map(|i| i.next_renewal_in()) else {
            return;
        };
        tokio::time::sleep(wait).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let attempts = inner.read().attempts;
        inner.run(attempts, Reason::Background).await;
    }
}
