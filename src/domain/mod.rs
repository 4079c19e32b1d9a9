//! The rules of latchkey: grants, sessions and rotation, verification,
//! accounts, clients and throttling. Nothing here knows about actix or sqlx;
//! time comes only from the injected `Clock`.

pub mod accounts;
pub mod admin;
pub mod audit;
pub mod authorization;
pub mod client_assertion;
pub mod client_keys;
pub mod client_lifecycle;
pub mod clients;
pub mod demo;
pub mod dpop;
pub mod error;
pub mod grants;
pub mod keystore;
pub mod metrics;
pub mod origins;
pub mod outbox;
pub mod passwords;
pub mod policy;
pub mod recovery;

/// The records the domain hands to its callers (a client, a user, a page
/// position): the store's types, named here so that the HTTP layer speaks
/// to the domain alone and never imports the store.
pub mod records {
    pub use crate::store::{
        BrowserSessionRecord, ClientRecord, KeySource, PageAfter, TokenPurpose, UserRecord,
    };
}
pub mod sessions;
pub mod signing;
pub mod status;
pub mod throttle;
pub mod types;
pub mod verify;

use std::sync::Arc;

use chrono::{DateTime, Utc};

use self::clients::ClientCache;
use self::error::DomainError;
use self::origins::OriginCache;
use self::passwords::Passwords;
use self::policy::Policy;
use self::signing::Signer;
use self::types::ClientId;
use crate::clock::Clock;
use crate::keys::KeyRing;
use crate::store::{ClientRecord, SessionRecord, Store};
use crate::telemetry::Metrics;
use crate::tokens::refresh::RefreshSecret;

/// Everything a request needs, shared by the HTTP layer and the CLI. The
/// store, the key ring and the policy are private: callers go through the
/// rules below, never around them.
#[derive(Debug, Clone)]
pub struct Services {
    store: Arc<dyn Store>,
    /// Every rule reads the time here, so tests can move it.
    pub clock: Arc<dyn Clock>,
    keys: Arc<KeyRing>,
    policy: Arc<Policy>,
    /// Bounded argon2id.
    pub passwords: Passwords,
    /// The secret refresh tokens are derived under.
    pub refresh_secret: Arc<RefreshSecret>,
    /// The metrics registry behind `GET /metrics`.
    pub metrics: Metrics,
    /// Signs tokens inline or on the signing threads (`tokens.signing`);
    /// the last clone to go closes the pool and joins its threads.
    signer: Arc<Signer>,
    /// Clients, cached after the first lookup so client authentication
    /// costs no store round trip; dropped when the store's client version
    /// moves, and read again after `clients.cache_ttl_secs` whatever happens.
    clients: Arc<ClientCache>,
    /// Registered browser origins, for CORS and cookie mode.
    origins: Arc<OriginCache>,
    /// Mail bodies (built in, or overridden from `email.templates_dir`).
    mail_templates: Arc<outbox::Templates>,
    /// Wakes this instance's mail sender when a message is queued here.
    mail_wake: Arc<tokio::sync::Notify>,
    /// `private_key_jwt` clients' JWKS fetched from their `jwks_uri`.
    jwks_cache: Arc<client_keys::JwksCache>,
}

impl Services {
    /// Services signing inline, with a fresh metrics registry, the built-in
    /// mail templates and empty caches; the `with_*` methods replace the
    /// first three.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        keys: Arc<KeyRing>,
        policy: Policy,
        passwords: Passwords,
        refresh_secret: RefreshSecret,
    ) -> Self {
        let timeout = policy.client_keys.jwks_fetch_timeout;
        Self {
            store,
            clock,
            keys,
            policy: Arc::new(policy),
            passwords,
            refresh_secret: Arc::new(refresh_secret),
            metrics: Metrics::new(),
            signer: Arc::new(Signer::inline()),
            clients: Arc::default(),
            origins: Arc::default(),
            mail_templates: Arc::default(),
            mail_wake: Arc::default(),
            jwks_cache: Arc::new(client_keys::JwksCache::new(timeout)),
        }
    }

    /// The same services rendering mail with `templates`.
    pub fn with_mail_templates(mut self, templates: outbox::Templates) -> Self {
        self.mail_templates = Arc::new(templates);
        self
    }

    /// The same services signing with `signer`.
    pub fn with_signer(mut self, signer: Signer) -> Self {
        self.signer = Arc::new(signer);
        self
    }

    /// The same services recording into `metrics` (the registry the store
    /// was wrapped with, so one `/metrics` shows both).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Now, by the injected clock rather than the system's.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The moment before which an unrefreshed session counts as idle.
    pub fn idle_cutoff(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.policy.sessions.idle_ttl
    }

    /// When `session` ends unless it is refreshed first: at its absolute
    /// end, or after the idle timeout since its last use, whichever is
    /// sooner. The refresh token's `expires_in` and introspection's `exp`
    /// both say this.
    pub fn session_end(&self, session: &SessionRecord) -> DateTime<Utc> {
        let idle_end = session.last_used_at + self.policy.sessions.idle_ttl;
        session.expires_at.min(idle_end)
    }

    /// The client `id`, from the cache or the store, unless it is disabled:
    /// every OAuth path (client authentication, token verification, the
    /// authorization flow, cookie mode) looks clients up here, so a
    /// suspended client is refused by all of them at once.
    ///
    /// # Errors
    /// Store failures.
    pub async fn find_client(
        &self,
        id: ClientId,
    ) -> Result<Option<Arc<ClientRecord>>, DomainError> {
        let now = self.now();
        let ttl = self.policy.clients.cache_ttl;
        if let Some(c) = self.clients.get(id, now, ttl) {
            return Ok(Some(c).filter(|c| c.disabled_at.is_none()));
        }
        // Taken before the read: a change noticed while the read is in
        // flight keeps what it read out of the cache.
        let epoch = self.clients.epoch();
        let Some(client) = self.store.find_client(id).await? else {
            return Ok(None);
        };
        let client = Arc::new(client);
        self.clients.insert(epoch, client.clone(), now);
        Ok(Some(client).filter(|c| c.disabled_at.is_none()))
    }

    /// Asks the store whether any client changed since the last poll and, if
    /// so, drops every cached client and origin. Run every
    /// `clients.change_poll_ms` by each instance; returns whether anything
    /// was dropped.
    ///
    /// # Errors
    /// Store failures (the cache is then bounded by its TTL alone).
    pub async fn poll_client_changes(&self) -> Result<bool, DomainError> {
        let version = self.store.clients_version().await?;
        if !self.clients.note_version(version) {
            return Ok(false);
        }
        self.clients.clear();
        self.origins.clear();
        Ok(true)
    }

    /// The audience of access tokens issued to `client`.
    pub fn audience_for<'a>(&'a self, client: &'a ClientRecord) -> &'a str {
        client
            .audience
            .as_deref()
            .unwrap_or(&self.policy.tokens.default_audience)
    }
}
