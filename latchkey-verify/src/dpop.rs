//! DPoP proofs (RFC 9449): the checks of §4.3 as one pure function, shared by
//! latchkey's token endpoint and protected endpoints and by services that
//! verify DPoP-bound access tokens, plus the seam a service plugs its replay
//! store into.
//!
//! What is deliberately not here: remembering used `jti`s (the caller's
//! store: latchkey's database, a service's [`ReplayStore`]) and server nonces
//! (§8; latchkey issues and checks its own, see its README).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use serde_json::{Map, Value};

use crate::jose::{
    decode_header, numeric_date, public_key, signing_algorithm, verify_signature, JoseError,
};
use crate::thumbprint::sha256_base64url;

/// The JOSE `typ` of a proof (RFC 9449 §4.2).
pub const DPOP_TYP: &str = "dpop+jwt";

/// The proof algorithms accepted, as advertised in
/// `dpop_signing_alg_values_supported`. Asymmetric only: `none` and HMAC
/// could be produced without the private key (RFC 9449 §4.3 check 5).
pub const SIGNING_ALGS: [&str; 4] = crate::jose::SIGNING_ALGS;

/// Proofs longer than this are refused before parsing (a proof with a
/// 4096-bit RSA key is under 2 KiB).
pub const MAX_PROOF_BYTES: usize = 8192;

/// Longest `jti` accepted (RFC 9449 §4.2 asks for 96 bits of randomness;
/// this bound keeps a proof from carrying a novel into the replay store).
pub const MAX_JTI_BYTES: usize = 256;

/// Default acceptance window for a proof's `iat`, either side of now.
pub const DEFAULT_WINDOW_SECS: i64 = 60;

/// Which check of RFC 9449 §4.3 a proof failed. Every variant is an
/// `invalid_dpop_proof`; the variants exist for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// Not a compact JWS with JSON header and claims, too long, or a `crit`.
    #[error("malformed proof")]
    Malformed,
    /// `typ` is not `dpop+jwt`.
    #[error("wrong proof type")]
    Type,
    /// `alg` is absent, `none`, symmetric or not supported.
    #[error("proof algorithm not allowed")]
    Algorithm,
    /// No `jwk`, a private member in it, or a key that does not fit `alg`.
    #[error("unusable proof key")]
    Key,
    /// The signature does not verify with the header's key.
    #[error("bad proof signature")]
    Signature,
    /// `htm` is not this request's method.
    #[error("proof method mismatch")]
    Method,
    /// `htu` is not this request's URL (without query and fragment).
    #[error("proof URL mismatch")]
    Url,
    /// `iat` is missing or outside the acceptance window.
    #[error("proof too old or too new")]
    Time,
    /// `jti` is missing, empty or too long.
    #[error("proof jti missing")]
    Jti,
    /// `ath` is missing or is not the hash of the presented access token.
    #[error("proof access token hash mismatch")]
    AccessTokenHash,
    /// The `jti` was used before.
    #[error("proof replayed")]
    Replayed,
    /// The proof's key is not the one the token is bound to.
    #[error("proof key does not match the token binding")]
    Binding,
}

/// The request a proof must describe.
#[derive(Debug, Clone, Copy)]
pub struct ProofRequest<'a> {
    /// The HTTP method, e.g. `POST`.
    pub method: &'a str,
    /// The request's absolute URL as the client addressed it.
    pub url: &'a str,
    /// For a protected resource: the access token presented with the proof,
    /// whose hash `ath` must carry (§4.3 check 11).
    pub access_token: Option<&'a str>,
}

/// A proof that passed every check of [`check_proof`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The RFC 7638 thumbprint of the proof's key (`cnf.jkt`).
    pub jkt: String,
    /// SHA-256 of the `jti`, base64url: what a replay store keeps.
    pub jti_digest: String,
    /// The proof's `iat`, in seconds since the epoch.
    pub iat: i64,
    /// The server nonce the proof carries, if any (§8).
    pub nonce: Option<String>,
}

impl Proof {
    /// Until when the `jti` must be remembered: after that, `iat` no longer
    /// passes a window of `window_secs` on a clock up to `skew_secs` behind.
    pub fn remember_until(&self, window_secs: i64, skew_secs: i64) -> i64 {
        self.iat
            .saturating_add(window_secs)
            .saturating_add(skew_secs)
            .saturating_add(1)
    }
}

/// Checks a proof against `request` at `now` (seconds since the epoch), its
/// `iat` within `window_secs` either side: RFC 9449 §4.3 checks 2 to 11,
/// leaving the `jti` replay check (12) and nonces to the caller.
///
/// # Errors
/// The first check that fails.
pub fn check_proof(
    proof: &str,
    request: &ProofRequest<'_>,
    now: i64,
    window_secs: i64,
) -> Result<Proof, ProofError> {
    if proof.is_empty() || proof.len() > MAX_PROOF_BYTES {
        return Err(ProofError::Malformed);
    }
    let header = decode_header(proof)?;
    let typ = header.get("typ").and_then(Value::as_str);
    if !typ.is_some_and(|t| t.eq_ignore_ascii_case(DPOP_TYP)) {
        return Err(ProofError::Type);
    }
    if header.contains_key("crit") {
        return Err(ProofError::Malformed);
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(signing_algorithm)
        .ok_or(ProofError::Algorithm)?;
    let jwk = header
        .get("jwk")
        .and_then(Value::as_object)
        .ok_or(ProofError::Key)?;
    // A header key with a private member leaks it, and is refused (§4.3
    // check 7); `public_key` also pins the key to `alg`.
    let (jkt, key) = public_key(jwk, alg)?;
    let claims = verify_signature(proof, &key, alg)?;
    check_claims(&claims, request, now, window_secs)?;
    Ok(Proof {
        jkt,
        jti_digest: claims
            .get("jti")
            .and_then(Value::as_str)
            .map(|j| sha256_base64url(j.as_bytes()))
            .ok_or(ProofError::Jti)?,
        iat: iat(&claims).ok_or(ProofError::Time)?,
        nonce: claims
            .get("nonce")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

impl From<JoseError> for ProofError {
    fn from(e: JoseError) -> Self {
        match e {
            JoseError::Malformed => ProofError::Malformed,
            JoseError::Algorithm => ProofError::Algorithm,
            JoseError::Key => ProofError::Key,
            JoseError::Signature => ProofError::Signature,
        }
    }
}

fn check_claims(
    claims: &Map<String, Value>,
    request: &ProofRequest<'_>,
    now: i64,
    window_secs: i64,
) -> Result<(), ProofError> {
    let string = |name: &str| claims.get(name).and_then(Value::as_str);
    match string("jti") {
        Some(j) if !j.is_empty() && j.len() <= MAX_JTI_BYTES => {}
        _ => return Err(ProofError::Jti),
    }
    if string("htm") != Some(request.method) {
        return Err(ProofError::Method);
    }
    if !string("htu").is_some_and(|htu| same_target(htu, request.url)) {
        return Err(ProofError::Url);
    }
    let iat = iat(claims).ok_or(ProofError::Time)?;
    if iat.abs_diff(now) > window_secs.unsigned_abs() {
        return Err(ProofError::Time);
    }
    if let Some(token) = request.access_token {
        if string("ath") != Some(sha256_base64url(token.as_bytes()).as_str()) {
            return Err(ProofError::AccessTokenHash);
        }
    }
    Ok(())
}

fn iat(claims: &Map<String, Value>) -> Option<i64> {
    numeric_date(claims, "iat")
}

/// RFC 9449 §4.3 check 9: `htu` names the request's URL, ignoring query and
/// fragment, after the syntax-based normalisation of RFC 3986 §6.2.2 and
/// §6.2.3 (case of scheme and host, default ports, dot segments).
pub fn same_target(htu: &str, url: &str) -> bool {
    let strip = |raw: &str| {
        url::Url::parse(raw).ok().map(|mut u| {
            u.set_query(None);
            u.set_fragment(None);
            u
        })
    };
    match (strip(htu), strip(url)) {
        (Some(a), Some(b)) => a == b && a.has_host(),
        _ => false,
    }
}

/// A boxed future, so that [`ReplayStore`] stays object-safe.
pub type ReplayFuture<'a> =
    Pin<Box<dyn Future<Output = Result<bool, ReplayUnavailable>> + Send + 'a>>;

/// The replay store could not answer; the proof must then be refused (a
/// replay check that fails open is no check).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("replay store unavailable")]
pub struct ReplayUnavailable;

/// Where a service remembers the proofs it has seen (RFC 9449 §11.1). With
/// one instance [`MemoryReplayStore`] does; with several, plug in a store
/// they share (a database table with a unique key, Redis `SET NX EX`), or a
/// proof replayed at another instance passes there.
pub trait ReplayStore: Send + Sync {
    /// Remembers `jti_digest` for the key `jkt` until `expires_at` (seconds
    /// since the epoch). `Ok(true)` for the first use only, decided
    /// atomically: of concurrent callers with one digest, exactly one wins.
    fn first_use<'a>(
        &'a self,
        jkt: &'a str,
        jti_digest: &'a str,
        expires_at: i64,
    ) -> ReplayFuture<'a>;
}

/// A [`ReplayStore`] in this process's memory, bounded: when full, expired
/// entries are dropped, and if none have expired the proof is refused
/// rather than an entry forgotten early.
#[derive(Debug)]
pub struct MemoryReplayStore {
    seen: Mutex<HashMap<(String, String), i64>>,
    capacity: usize,
    clock: fn() -> i64,
}

impl MemoryReplayStore {
    /// A store holding at most `capacity` live proofs, reading time from
    /// `clock` (seconds since the epoch).
    pub fn new(capacity: usize, clock: fn() -> i64) -> Self {
        Self {
            seen: Mutex::new(HashMap::new()),
            capacity,
            clock,
        }
    }
}

impl ReplayStore for MemoryReplayStore {
    fn first_use<'a>(
        &'a self,
        jkt: &'a str,
        jti_digest: &'a str,
        expires_at: i64,
    ) -> ReplayFuture<'a> {
        let now = (self.clock)();
        let answer = (|| {
            let mut seen = self.seen.lock().map_err(|_| ReplayUnavailable)?;
            let key = (jkt.to_owned(), jti_digest.to_owned());
            if seen.get(&key).is_some_and(|until| *until > now) {
                return Ok(false);
            }
            if seen.len() >= self.capacity {
                seen.retain(|_, until| *until > now);
                if seen.len() >= self.capacity {
                    return Ok(false);
                }
            }
            seen.insert(key, expires_at);
            Ok(true)
        })();
        Box::pin(std::future::ready(answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_compare_without_query_fragment_and_case() {
        let t = "https://auth.example/oauth/token";
        assert!(same_target(t, t));
        assert!(same_target("https://AUTH.example:443/oauth/token?x=1#f", t));
        assert!(same_target(t, "https://auth.example/oauth/token?a=b"));
        assert!(!same_target("https://auth.example/oauth/token/", t));
        assert!(!same_target("http://auth.example/oauth/token", t));
        assert!(!same_target("https://auth.example:8443/oauth/token", t));
        assert!(!same_target("https://evil.example/oauth/token", t));
        assert!(!same_target("/oauth/token", t));
    }

    #[test]
    fn memory_store_answers_first_use_once_and_stays_bounded() {
        fn zero() -> i64 {
            0
        }
        let store = MemoryReplayStore::new(2, zero);
        let run = |f: ReplayFuture<'_>| {
            // The memory store's futures are ready at once.
            let waker = std::task::Waker::noop();
            let mut cx = std::task::Context::from_waker(waker);
            let mut f = f;
            match f.as_mut().poll(&mut cx) {
                std::task::Poll::Ready(r) => r,
                std::task::Poll::Pending => Err(ReplayUnavailable),
            }
        };
        assert_eq!(run(store.first_use("k", "a", 10)), Ok(true));
        assert_eq!(run(store.first_use("k", "a", 10)), Ok(false));
        assert_eq!(run(store.first_use("k2", "a", 10)), Ok(true));
        // Full of live entries: refused, not forgotten.
        assert_eq!(run(store.first_use("k", "b", 10)), Ok(false));
    }
}
