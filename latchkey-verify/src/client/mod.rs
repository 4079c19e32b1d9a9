//! [`Verifier`]: discovery once, then a JWKS cache that follows the issuer's
//! key schedule, and verification of each token against it.

mod cache;
mod http;
mod introspect;

use std::sync::Arc;
use std::time::Duration;

pub use cache::Stats;
pub use http::SetupError;

use crate::clock::{Clock, SystemClock};
use crate::verify::{precheck, verify_with_key, Expectations};
use crate::{Claims, Error};

/// Verifies latchkey access tokens for one audience. Cheap to clone (one
/// `Arc`); share one per service.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<cache::Inner>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.inner.issuer)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Verifier {
    /// Discovers `issuer` and loads its keys, with the default settings,
    /// for tokens whose `aud` contains `audience`.
    ///
    /// # Errors
    /// Discovery or the first JWKS fetch failed, or the discovery
    /// document's `issuer` is not exactly `issuer`.
    pub async fn discover(issuer: &str, audience: &str) -> Result<Self, SetupError> {
        Self::builder(issuer, audience).discover().await
    }

    /// A builder for `issuer` and `audience` with every setting at its
    /// default: change some, then call [`VerifierBuilder::discover`].
    pub fn builder(issuer: &str, audience: &str) -> VerifierBuilder {
        VerifierBuilder {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            settings: Settings::default(),
            clock: Arc::new(SystemClock),
            introspection: None,
        }
    }

    /// Verifies a bearer token: the shared rules, a key from the cache
    /// (fetching at most as the cache's rules allow), the key's pinned
    /// algorithm, signature, `iss`, `aud` and times.
    ///
    /// # Errors
    /// Why the token was refused; [`Error::Unavailable`] when no key set is
    /// usable (the issuer has been unreachable past the stale bound).
    pub async fn verify(&self, token: &str) -> Result<Claims, Error> {
        let claims = self.verify_any(token).await?;
        // RFC 9449 §7.2: a DPoP-bound token is worthless without its key;
        // accepting it as a bearer token would make it a bearer token.
        if claims.dpop_jkt().is_some() {
            return Err(Error::DpopBinding);
        }
        Ok(claims)
    }

    async fn verify_any(&self, token: &str) -> Result<Claims, Error> {
        let (kid, alg) = precheck(token)?;
        let key = self.inner.key_for(&kid).await?;
        let now = self.inner.now_secs();
        verify_with_key(token, alg.as_deref(), &key, &self.inner.expect, now)
    }

    /// Verifies a token presented with the `DPoP` scheme (RFC 9449 §7.1):
    /// the token as [`Verifier::verify`] does, that it is bound, and the
    /// request's one `DPoP` proof: RFC 9449 §4.3's checks for this `method`
    /// and `url` (the URL clients address this service by, without query),
    /// `ath` over the token, the key the token is bound to, and a first use
    /// of its `jti` in `replay`. Proofs are accepted within
    /// [`dpop::DEFAULT_WINDOW_SECS`](crate::dpop::DEFAULT_WINDOW_SECS) of now.
    ///
    /// # Errors
    /// As [`Verifier::verify`]; [`Error::DpopBinding`] for an unbound token;
    /// [`Error::DpopProof`] for a missing, bad or replayed proof;
    /// [`Error::Unavailable`] when `replay` cannot answer.
    pub async fn verify_dpop(
        &self,
        token: &str,
        proofs: &[&str],
        method: &str,
        url: &str,
        replay: &dyn crate::dpop::ReplayStore,
    ) -> Result<Claims, Error> {
        use crate::dpop::{self, ProofError, ProofRequest};
        let claims = self.verify_any(token).await?;
        let bound = claims.dpop_jkt().ok_or(Error::DpopBinding)?.to_owned();
        let [proof] = proofs else {
            return Err(Error::DpopProof(ProofError::Malformed));
        };
        let request = ProofRequest {
            method,
            url,
            access_token: Some(token),
        };
        let window = dpop::DEFAULT_WINDOW_SECS;
        let now = self.inner.now_secs();
        let checked = dpop::check_proof(proof, &request, now, window).map_err(Error::DpopProof)?;
        if checked.jkt != bound {
            return Err(Error::DpopProof(ProofError::Binding));
        }
        let leeway = self.inner.expect.leeway_secs();
        let until = checked.remember_until(window, leeway);
        match replay
            .first_use(&checked.jkt, &checked.jti_digest, until)
            .await
        {
            Ok(true) => Ok(claims),
            Ok(false) => Err(Error::DpopProof(ProofError::Replayed)),
            Err(_) => Err(Error::Unavailable),
        }
    }

    /// Verifies the token locally, then asks the issuer whether it is
    /// still active (RFC 7662), so a session revoked a moment ago is seen.
    /// Answers are cached for the configured introspection TTL (never past
    /// the token's `exp`). Needs [`VerifierBuilder::introspection`].
    ///
    /// # Errors
    /// As [`Verifier::verify`]; [`Error::Inactive`] when the issuer says
    /// the token is not active; [`Error::Unavailable`] when introspection is
    /// not configured or the issuer cannot answer.
    pub async fn introspect(&self, token: &str) -> Result<Claims, Error> {
        let claims = self.verify(token).await?;
        introspect::check_active(&self.inner, token, claims).await
    }

    /// Counters of the JWKS cache, for metrics and tests.
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// The issuer exactly as given at build time, which discovery found the
    /// document to name.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }
}

/// The cache's knobs. Defaults suit latchkey's schedule (a new key is
/// published twice the JWKS max-age before it signs).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub leeway: Duration,
    pub min_ttl: Duration,
    pub max_ttl: Duration,
    pub default_ttl: Duration,
    pub unknown_kid_interval: Duration,
    pub retry_interval: Duration,
    pub stale_if_error: Duration,
    pub http_timeout: Duration,
    pub background_refresh: bool,
    pub introspection_ttl: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            leeway: Duration::from_secs(60),
            min_ttl: Duration::from_secs(5),
            max_ttl: Duration::from_secs(3600),
            default_ttl: Duration::from_secs(300),
            unknown_kid_interval: Duration::from_secs(5),
            retry_interval: Duration::from_secs(5),
            stale_if_error: Duration::from_secs(3600),
            http_timeout: Duration::from_secs(10),
            background_refresh: true,
            introspection_ttl: Duration::from_secs(10),
        }
    }
}

/// Builds a [`Verifier`] with settings other than the defaults.
#[must_use]
pub struct VerifierBuilder {
    issuer: String,
    audience: String,
    settings: Settings,
    clock: Arc<dyn Clock>,
    introspection: Option<(String, String)>,
}

impl VerifierBuilder {
    /// Clock-skew leeway for `exp`, `nbf` and `iat` (default 60 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.settings.leeway = leeway;
        self
    }

    /// Bounds on how long a fetched key set stays fresh, whatever
    /// `Cache-Control` says (default 5 s to 1 h). A minimum above the
    /// issuer's `max-age` delays seeing a new key; keep it small.
    pub fn ttl_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.settings.min_ttl = min;
        self.settings.max_ttl = max.max(min);
        self
    }

    /// Freshness when the issuer sends no `max-age` (default 5 min, then
    /// clamped to the bounds).
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.settings.default_ttl = ttl;
        self
    }

    /// At most one refetch per this interval because a token named a `kid`
    /// the cached set lacks (default 5 s). Forged `kid`s therefore cost the
    /// issuer one request per interval, however many arrive.
    pub fn unknown_kid_interval(mut self, interval: Duration) -> Self {
        self.settings.unknown_kid_interval = interval;
        self
    }

    /// After a failed fetch, wait this long before trying again (default 5 s).
    pub fn retry_interval(mut self, interval: Duration) -> Self {
        self.settings.retry_interval = interval;
        self
    }

    /// How long past its freshness the last good key set is still used
    /// while the issuer is unreachable (default 1 h). Beyond it, requests
    /// get [`Error::Unavailable`] rather than trust keys that may have been
    /// withdrawn.
    pub fn stale_if_error(mut self, bound: Duration) -> Self {
        self.settings.stale_if_error = bound;
        self
    }

    /// Timeout of each request to the issuer (default 10 s).
    pub fn http_timeout(mut self, timeout: Duration) -> Self {
        self.settings.http_timeout = timeout;
        self
    }

    /// Whether a background task refreshes the key set before it goes
    /// stale (default on), so no request waits for a fetch.
    pub fn background_refresh(mut self, on: bool) -> Self {
        self.settings.background_refresh = on;
        self
    }

    /// A confidential client for [`Verifier::introspect`] (RFC 7662,
    /// `client_secret_basic`), and how long answers are cached (default
    /// 10 s; a revocation is seen at most this late).
    pub fn introspection(mut self, client_id: &str, client_secret: &str, cache: Duration) -> Self {
        self.introspection = Some((client_id.to_owned(), client_secret.to_owned()));
        self.settings.introspection_ttl = cache;
        self
    }

    /// The clock for token times and cache freshness (tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Discovers the issuer and loads its keys. Must run inside a Tokio
    /// runtime, which then performs every fetch of this verifier: keep that
    /// runtime alive as long as the verifier (the `main` runtime of a
    /// service does).
    ///
    /// # Errors
    /// As [`Verifier::discover`].
    pub async fn discover(self) -> Result<Verifier, SetupError> {
        let http = reqwest::Client::builder()
            .timeout(self.settings.http_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(SetupError::Client)?;
        let metadata = http::discover(&http, &self.issuer).await?;
        let expect = Expectations::new(&self.issuer, &self.audience, self.settings.leeway);
        let inner = cache::Inner::load(
            self.issuer,
            metadata,
            http,
            expect,
            self.settings,
            self.clock,
            self.introspection,
        )
        .await?;
        Ok(Verifier { inner })
    }
}
