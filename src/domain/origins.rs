//! Browser origins: what a URL's origin is, and which origins registered
//! clients allow (for CORS and cookie mode), cached. The per-request Origin
//! check itself lives in `http::cookies`; the CORS headers in `http::cors`.

use std::collections::HashMap;
use std::sync::RwLock;

use chrono::{DateTime, Duration, Utc};

use super::clients::parse_origin;
use super::error::DomainError;
use super::Services;
use crate::store::ClientRecord;

/// How long a snapshot of the registered origins answers a miss before the
/// store is asked again. A hit is good until a client change is noticed
/// (`Services::poll_client_changes` clears the snapshot); a miss may be a
/// client registered since (by the CLI or another instance), and re-reading
/// at most this often bounds the store queries that a flood of requests from
/// unknown origins can cause.
pub const ORIGINS_RELOAD_SECS: i64 = 5;

/// What a registered origin may do cross-origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginAccess {
    /// Registered by body-mode clients only: CORS without credentials.
    Plain,
    /// Registered by a cookie-mode client: CORS with credentials (cookies).
    Credentialed,
}

/// The origins of every client that registered one, re-read on a miss at
/// most every `ORIGINS_RELOAD_SECS`.
#[derive(Debug, Default)]
pub struct OriginCache {
    snapshot: RwLock<Snapshot>,
    /// Single-flight: concurrent misses wait for one reload, not N.
    reload: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct Snapshot {
    origins: HashMap<String, OriginAccess>,
    loaded_at: Option<DateTime<Utc>>,
    /// Moves on every `clear`, so a reload that read the store before a
    /// clear does not put its stale list back.
    epoch: u64,
}

impl OriginCache {
    fn get(&self, origin: &str) -> Option<OriginAccess> {
        self.snapshot
            .read()
            .ok()
            .and_then(|s| s.origins.get(origin).copied())
    }

    /// Whether the snapshot was read less than `age` ago.
    fn is_younger_than(&self, now: DateTime<Utc>, age: Duration) -> bool {
        self.snapshot
            .read()
            .ok()
            .and_then(|s| s.loaded_at)
            .is_some_and(|at| now - at < age && at <= now)
    }

    /// What the snapshot says of `origin` when it was read less than `age`
    /// ago, checked under one lock so a `clear` cannot fall in between.
    fn get_if_younger_than(
        &self,
        origin: &str,
        now: DateTime<Utc>,
        age: Duration,
    ) -> Option<Option<OriginAccess>> {
        let s = self.snapshot.read().ok()?;
        let at = s.loaded_at?;
        (now - at < age && at <= now).then(|| s.origins.get(origin).copied())
    }

    fn epoch(&self) -> u64 {
        self.snapshot.read().map(|s| s.epoch).unwrap_or(u64::MAX)
    }

    /// Installs the origins of `clients` unless a `clear` came in between,
    /// and answers `origin` from that same list: a `clear` racing with the
    /// reload may empty the snapshot again, but the list just read from the
    /// store is as fresh as any answer can be.
    fn replace(
        &self,
        clients: &[ClientRecord],
        now: DateTime<Utc>,
        epoch: u64,
        origin: &str,
    ) -> Option<OriginAccess> {
        let mut origins = HashMap::new();
        for c in clients {
            add_client(&mut origins, c);
        }
        let answer = origins.get(origin).copied();
        if let Ok(mut s) = self.snapshot.write() {
            if s.epoch == epoch {
                *s = Snapshot {
                    origins,
                    loaded_at: Some(now),
                    epoch,
                };
            }
        }
        answer
    }

    fn mark_attempt(&self, now: DateTime<Utc>) {
        if let Ok(mut s) = self.snapshot.write() {
            s.loaded_at = Some(now);
        }
    }

    /// Forgets every origin, so the next request reads them again (a client
    /// changed somewhere).
    pub fn clear(&self) {
        if let Ok(mut s) = self.snapshot.write() {
            *s = Snapshot::default();
            s.epoch = s.epoch.wrapping_add(1);
        }
    }

    /// Adds a client registered by this process, so its origins work at once.
    pub fn note_client(&self, client: &ClientRecord) {
        if let Ok(mut s) = self.snapshot.write() {
            add_client(&mut s.origins, client);
        }
    }
}

fn add_client(origins: &mut HashMap<String, OriginAccess>, client: &ClientRecord) {
    let access = if client.cookie_mode {
        OriginAccess::Credentialed
    } else {
        OriginAccess::Plain
    };
    for o in &client.origins {
        let entry = origins.entry(o.clone()).or_insert(access);
        if access == OriginAccess::Credentialed {
            *entry = access;
        }
    }
}

/// The origin (`scheme://host[:port]`, normalised like registered origins)
/// of an absolute http(s) URL such as a `Referer`; `None` for anything else.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    parse_origin(&format!("{scheme}://{}", &rest[..end])).ok()
}

impl Services {
    /// What `origin` (already normalised) may do cross-origin, or `None`
    /// when no client registered it.
    ///
    /// # Errors
    /// Store failures while re-reading the registered origins.
    pub async fn origin_access(&self, origin: &str) -> Result<Option<OriginAccess>, DomainError> {
        let hit = self.origins.get(origin);
        let now = self.now();
        let reload_after = Duration::seconds(ORIGINS_RELOAD_SECS);
        let ttl = self.policy.clients.cache_ttl;
        // Credentialed is the most an origin can get: no reload can add to
        // it, so it holds until a client change clears it, or the TTL.
        if (hit == Some(OriginAccess::Credentialed) && self.origins.is_younger_than(now, ttl))
            || self.origins.is_younger_than(now, reload_after)
        {
            return Ok(hit);
        }
        let _one_reload = self.origins.reload.lock().await;
        let now = self.now();
        // Another request may have reloaded while this one waited.
        if let Some(answer) = self.origins.get_if_younger_than(origin, now, reload_after) {
            return Ok(answer);
        }
        let epoch = self.origins.epoch();
        match self.store.list_browser_clients().await {
            Ok(clients) => Ok(self.origins.replace(&clients, now, epoch, origin)),
            Err(e) => {
                // Keep the old origins and wait out the interval before
                // the next try: while the store is down, requests queued
                // on the reload lock must not each wait for a pool timeout.
                self.origins.mark_attempt(now);
                Err(e.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_of_keeps_scheme_host_and_port_only() {
        assert_eq!(
            origin_of("https://App.example/path?q=1#f").as_deref(),
            Some("https://app.example")
        );
        assert_eq!(
            origin_of("http://localhost:5173").as_deref(),
            Some("http://localhost:5173")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080?x").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin_of("null"), None);
        assert_eq!(origin_of("ftp://app.example/"), None);
        assert_eq!(origin_of("https://user@app.example/"), None);
        assert_eq!(origin_of("/relative/path"), None);
    }
}
