//! The public keys of `private_key_jwt` clients (RFC 7523 §2.2): what
//! registration accepts (a JWKS URL, or a public JWK or JWKS given inline),
//! and the cache of the JWKS fetched from clients' URLs. Checking an
//! assertion with these keys is `client_assertion`'s business.
//!
//! A `jwks_uri` makes latchkey send requests to a URL a client names.
//! Registering one is an operator action (the CLI, the admin API), never
//! self-service, so the URL is as trusted as the operator who typed it; the
//! fetch still follows no redirects, reads at most `MAX_JWKS_BYTES`, gives
//! up after `client_keys.jwks_fetch_timeout_ms`, and needs https except to a
//! loopback host.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use latchkey_verify::jose::{self, PRIVATE_MEMBERS, SIGNING_ALGS};
use serde_json::{Map, Value};

use super::error::DomainError;
use super::Services;
use crate::store::KeySource;

/// The most keys a client's JWKS may hold (a rotation needs two or three).
pub const MAX_KEYS: usize = 10;

/// The largest JWKS read, inline or fetched (ten 4096-bit RSA keys are
/// about 8 KiB).
pub const MAX_JWKS_BYTES: usize = 64 * 1024;

/// The longest `jwks_uri` accepted.
const MAX_URI_BYTES: usize = 2048;

/// One JWK as JSON members.
pub type Jwk = Map<String, Value>;

/// Checks what an operator registers and returns it normalised: a JWKS URL
/// as parsed, an inline JWK or JWKS as `{"keys": [...]}`.
///
/// # Errors
/// `InvalidRequest` naming the problem: a URL that is not https (or http to
/// a loopback host), a private or symmetric key, a key of a type or
/// algorithm latchkey does not accept.
pub fn validate_key_source(source: KeySource) -> Result<KeySource, DomainError> {
    match source {
        KeySource::JwksUri(raw) => validate_jwks_uri(&raw).map(KeySource::JwksUri),
        KeySource::Jwks(raw) => {
            let keys = registered_keys(&raw)?;
            let text = serde_json::json!({ "keys": keys }).to_string();
            Ok(KeySource::Jwks(text))
        }
    }
}

/// A `jwks_uri`: https, or http to a loopback host (a key server on the
/// same machine, and tests); no credentials or fragment in it.
///
/// # Errors
/// `InvalidRequest`.
pub fn validate_jwks_uri(raw: &str) -> Result<String, DomainError> {
    const BAD: &str =
        "--jwks-uri must be an https URL (http only to 127.0.0.1, [::1] or localhost)";
    let raw = raw.trim();
    if raw.len() > MAX_URI_BYTES {
        return Err(DomainError::InvalidRequest(BAD));
    }
    let url = url::Url::parse(raw).map_err(|_| DomainError::InvalidRequest(BAD))?;
    let allowed = match url.scheme() {
        "https" => url.host().is_some(),
        "http" => is_loopback(&url),
        _ => false,
    };
    if !allowed || !url.username().is_empty() || url.password().is_some() {
        return Err(DomainError::InvalidRequest(BAD));
    }
    if url.fragment().is_some() {
        return Err(DomainError::InvalidRequest(
            "--jwks-uri must not carry a #fragment",
        ));
    }
    Ok(url.to_string())
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The keys of an inline `--jwk`: one JWK or a JWKS, every key public and
/// usable with one of the accepted algorithms, `kid`s distinct.
fn registered_keys(raw: &str) -> Result<Vec<Jwk>, DomainError> {
    if raw.len() > MAX_JWKS_BYTES {
        return Err(DomainError::InvalidRequest("the JWK file is too large"));
    }
    let value: Value = serde_json::from_str(raw)
        .map_err(|_| DomainError::InvalidRequest("--jwk must name a JSON file: a JWK or a JWKS"))?;
    let keys: Vec<Jwk> = match value {
        Value::Object(mut o) if o.contains_key("keys") => match o.remove("keys") {
            Some(Value::Array(keys)) => keys
                .into_iter()
                .map(|k| match k {
                    Value::Object(k) => Ok(k),
                    _ => Err(DomainError::InvalidRequest(
                        "every key of a JWKS is a JSON object",
                    )),
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(DomainError::InvalidRequest("a JWKS's \"keys\" is an array")),
        },
        Value::Object(o) => vec![o],
        _ => {
            return Err(DomainError::InvalidRequest(
                "--jwk must name a JSON file: a JWK or a JWKS",
            ))
        }
    };
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(DomainError::InvalidRequest(
            "register between one and ten public keys",
        ));
    }
    for key in &keys {
        check_registered_key(key)?;
    }
    let mut kids: Vec<&str> = keys
        .iter()
        .filter_map(|k| k.get("kid").and_then(Value::as_str))
        .collect();
    let named = kids.len();
    kids.sort_unstable();
    kids.dedup();
    if kids.len() != named {
        return Err(DomainError::InvalidRequest("two keys share one kid"));
    }
    Ok(keys)
}

/// Why a registered key is refused, most telling reason first.
fn check_registered_key(key: &Jwk) -> Result<(), DomainError> {
    let member = |name: &str| key.get(name).and_then(Value::as_str);
    if member("kty") == Some("oct") {
        return Err(DomainError::InvalidRequest(
            "symmetric keys are not accepted: register a public key (RSA, P-256 or Ed25519)",
        ));
    }
    if PRIVATE_MEMBERS.iter().any(|m| key.contains_key(*m)) {
        return Err(DomainError::InvalidRequest(
            "this is a private key: register the public key only (no \"d\")",
        ));
    }
    if member("alg").is_some_and(|a| jose::signing_algorithm(a).is_none()) {
        return Err(DomainError::InvalidRequest(
            "the key's alg is not accepted: use RS256, PS256, ES256 or EdDSA",
        ));
    }
    if key.get("use").is_some_and(|u| u != "sig") {
        return Err(DomainError::InvalidRequest("the key's use must be sig"));
    }
    if key.get("kid").is_some_and(|k| !k.is_string()) {
        return Err(DomainError::InvalidRequest("a kid is a string"));
    }
    if algorithms(key).is_empty() {
        return Err(DomainError::InvalidRequest(
            "unusable key: accepted are RSA of 2048 bits or more (RS256, PS256), EC P-256 (ES256) and Ed25519 (EdDSA)",
        ));
    }
    Ok(())
}

/// The accepted algorithms `key` can verify, with a key jsonwebtoken can
/// build (so a malformed `x` or `n` is caught at registration).
fn algorithms(key: &Jwk) -> Vec<&'static str> {
    SIGNING_ALGS
        .into_iter()
        .filter(|name| {
            jose::signing_algorithm(name).is_some_and(|alg| jose::public_key(key, alg).is_ok())
        })
        .collect()
}

/// The usable keys of a JWKS document: signing keys only, public ones, of a
/// kind latchkey accepts. Others are left out rather than failing the set,
/// so a client's JWKS may also publish, say, an encryption key.
fn usable_keys(value: &Value) -> Vec<Jwk> {
    value
        .get("keys")
        .and_then(Value::as_array)
        .map(|keys| {
            keys.iter()
                .filter_map(Value::as_object)
                .filter(|k| k.get("use").is_none_or(|u| u == "sig"))
                .filter(|k| !algorithms(k).is_empty())
                .take(MAX_KEYS)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// JWKS fetched from clients' URLs, per URL. Each URL has its own lock, so
/// concurrent requests for one client wait for one fetch instead of each
/// making their own.
#[derive(Debug)]
pub struct JwksCache {
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
    http: Option<reqwest::Client>,
}

#[derive(Debug, Default)]
struct Slot {
    keys: Option<Arc<Vec<Jwk>>>,
    fetched_at: Option<DateTime<Utc>>,
    attempted_at: Option<DateTime<Utc>>,
}

/// Why a fetch failed (logged with the URL; the client sees only
/// `invalid_client`).
#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("no HTTP client")]
    NoClient,
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("status {0}")]
    Status(u16),
    #[error("response too large")]
    TooLarge,
    #[error("not a JWKS")]
    NotJson,
}

impl JwksCache {
    /// A cache whose fetches give up after `timeout` and follow no
    /// redirects (a redirect could lead anywhere, the registered URL could
    /// not).
    pub fn new(timeout: std::time::Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("latchkey/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| tracing::error!(error = %e, "no HTTP client for client JWKS"))
            .ok();
        Self {
            slots: Mutex::default(),
            http,
        }
    }

    /// The keys at `uri`: cached while younger than `ttl`, fetched otherwise
    /// or when `refetch` (an unknown `kid`), but never more often than once
    /// per `interval`. A failed fetch keeps what was fetched before.
    async fn keys(
        &self,
        uri: &str,
        now: DateTime<Utc>,
        ttl: Duration,
        interval: Duration,
        refetch: bool,
    ) -> Option<Arc<Vec<Jwk>>> {
        let slot = {
            let mut slots = self.slots.lock().ok()?;
            slots.entry(uri.to_owned()).or_default().clone()
        };
        let mut slot = slot.lock().await;
        let fresh = slot.fetched_at.is_some_and(|t| t <= now && now - t < ttl);
        let may_fetch = slot
            .attempted_at
            .is_none_or(|t| now < t || now - t >= interval);
        if (!fresh || refetch) && may_fetch {
            slot.attempted_at = Some(now);
            match self.fetch(uri).await {
                Ok(keys) => {
                    slot.keys = Some(Arc::new(keys));
                    slot.fetched_at = Some(now);
                }
                Err(e) => {
                    tracing::warn!(jwks_uri = uri, error = %e, "fetching a client's JWKS failed")
                }
            }
        }
        slot.keys.clone()
    }

    async fn fetch(&self, uri: &str) -> Result<Vec<Jwk>, FetchError> {
        let http = self.http.as_ref().ok_or(FetchError::NoClient)?;
        let mut res = http
            .get(uri)
            .header(
                reqwest::header::ACCEPT,
                "application/jwk-set+json, application/json",
            )
            .send()
            .await?;
        if !res.status().is_success() {
            return Err(FetchError::Status(res.status().as_u16()));
        }
        if res
            .content_length()
            .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
        {
            return Err(FetchError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let value: Value = serde_json::from_slice(&body).map_err(|_| FetchError::NotJson)?;
        Ok(usable_keys(&value))
    }
}

impl Services {
    /// The public keys of a `private_key_jwt` client; with `refetch`, its
    /// `jwks_uri` is read again if the rate limit allows (an unknown `kid`:
    /// the client may have rotated its keys).
    pub(crate) async fn client_public_keys(
        &self,
        source: &KeySource,
        refetch: bool,
    ) -> Arc<Vec<Jwk>> {
        match source {
            KeySource::Jwks(text) => Arc::new(
                serde_json::from_str::<Value>(text)
                    .map(|v| usable_keys(&v))
                    .unwrap_or_default(),
            ),
            KeySource::JwksUri(uri) => {
                let p = self.policy.client_keys;
                self.jwks_cache
                    .keys(
                        uri,
                        self.now(),
                        p.jwks_cache,
                        p.jwks_refetch_interval,
                        refetch,
                    )
                    .await
                    .unwrap_or_default()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const EC: &str = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;

    fn refused(raw: &str) -> bool {
        validate_key_source(KeySource::Jwks(raw.to_owned())).is_err()
    }

    #[test]
    fn an_inline_public_key_is_normalised_into_a_jwks() {
        let Ok(KeySource::Jwks(text)) = validate_key_source(KeySource::Jwks(EC.to_owned())) else {
            panic!("accepted");
        };
        let v: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["keys"][0]["crv"], "P-256");
    }

    #[test]
    fn private_symmetric_and_foreign_keys_are_refused() {
        let mut private: Value = serde_json::from_str(EC).expect("json");
        private["d"] = json!("jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI");
        assert!(refused(&private.to_string()));
        assert!(refused(
            r#"{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQ"}"#
        ));
        let mut hs: Value = serde_json::from_str(EC).expect("json");
        hs["alg"] = json!("HS256");
        assert!(refused(&hs.to_string()));
        let mut es384: Value = serde_json::from_str(EC).expect("json");
        es384["alg"] = json!("RS256");
        assert!(refused(&es384.to_string()));
        let mut enc: Value = serde_json::from_str(EC).expect("json");
        enc["use"] = json!("enc");
        assert!(refused(&enc.to_string()));
        assert!(refused(r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#));
        assert!(refused(r#"{"keys":[]}"#));
        assert!(refused("not json"));
        let twice = json!({"keys": [
            {"kid": "a", "kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kid": "a", "kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
        ]});
        assert!(refused(&twice.to_string()));
    }

    #[test]
    fn jwks_uris_need_https_except_on_loopback() {
        assert!(validate_jwks_uri("https://keys.example/jwks.json").is_ok());
        assert!(validate_jwks_uri("http://127.0.0.1:8080/jwks").is_ok());
        assert!(validate_jwks_uri("http://[::1]:8080/jwks").is_ok());
        assert!(validate_jwks_uri("http://localhost/jwks").is_ok());
        assert!(validate_jwks_uri("http://keys.example/jwks.json").is_err());
        assert!(validate_jwks_uri("http://10.0.0.1/jwks.json").is_err());
        assert!(validate_jwks_uri("https://u:p@keys.example/jwks.json").is_err());
        assert!(validate_jwks_uri("https://keys.example/jwks.json#x").is_err());
        assert!(validate_jwks_uri("file:///etc/passwd").is_err());
        assert!(validate_jwks_uri("keys.example").is_err());
    }

    #[test]
    fn fetched_sets_keep_only_usable_signing_keys() {
        let ec: Value = serde_json::from_str(EC).expect("json");
        let mut enc = ec.clone();
        enc["use"] = json!("enc");
        let mut private = ec.clone();
        private["d"] = json!("AA");
        let set = json!({"keys": [ec, enc, private, {"kty": "oct", "k": "AA"}]});
        assert_eq!(usable_keys(&set).len(), 1);
        assert!(usable_keys(&json!({"keys": "x"})).is_empty());
    }
}
