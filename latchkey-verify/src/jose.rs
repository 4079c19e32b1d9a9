//! JWS signed with a client's own public key: the pieces DPoP proofs (RFC
//! 9449) and client assertions (RFC 7523, checked by latchkey's server)
//! share. Decoding the header, the asymmetric algorithms accepted, a public
//! JWK checked against the algorithm it is used with, and the signature
//! check with that algorithm pinned.
//!
//! What is deliberately not here: which claims a token must carry, and
//! where its key comes from (a proof's header, a client's registration).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::thumbprint::jwk_thumbprint;

/// The algorithms accepted, by JOSE name. Asymmetric only: `none` and HMAC
/// could be produced without the private key (and HMAC keyed with a public
/// key's bytes is the classic algorithm-confusion forgery).
pub const SIGNING_ALGS: [&str; 4] = ["ES256", "EdDSA", "RS256", "PS256"];

/// RSA keys shorter than this are refused (RFC 8017-era guidance; latchkey's
/// own keys are at least as long).
pub const MIN_RSA_MODULUS_BYTES: usize = 256;

/// Private JWK members (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2): a JWK
/// carrying one is a private (or symmetric) key, never a public one.
pub const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why a JWS or a key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JoseError {
    /// Not a compact JWS with a JSON header and claims.
    #[error("malformed JWS")]
    Malformed,
    /// `alg` is absent, `none`, symmetric or not supported.
    #[error("algorithm not allowed")]
    Algorithm,
    /// A private member, or a key that does not fit the algorithm.
    #[error("unusable key")]
    Key,
    /// The signature does not verify with the key.
    #[error("bad signature")]
    Signature,
}

/// The JOSE header of a compact JWS (three parts, the first JSON).
///
/// # Errors
/// `Malformed`.
pub fn decode_header(jws: &str) -> Result<Map<String, Value>, JoseError> {
    let mut parts = jws.split('.');
    let (Some(h), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JoseError::Malformed);
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(h)
        .map_err(|_| JoseError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JoseError::Malformed)
}

/// The claims of a compact JWS, read without checking anything: only to
/// find which key must then verify it.
///
/// # Errors
/// `Malformed`.
pub fn decode_claims_unverified(jws: &str) -> Result<Map<String, Value>, JoseError> {
    let mut parts = jws.split('.');
    let (Some(_), Some(c), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JoseError::Malformed);
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(c)
        .map_err(|_| JoseError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JoseError::Malformed)
}

/// One of [`SIGNING_ALGS`] by name; `None` for anything else.
pub fn signing_algorithm(name: &str) -> Option<Algorithm> {
    match name {
        "ES256" => Some(Algorithm::ES256),
        "EdDSA" => Some(Algorithm::EdDSA),
        "RS256" => Some(Algorithm::RS256),
        "PS256" => Some(Algorithm::PS256),
        _ => None,
    }
}

/// Whether `jwk` is a public key with no private member that `alg` can use:
/// P-256 for ES256, Ed25519 for EdDSA, RSA of at least 2048 bits for RS256
/// and PS256, and, when the key names its own `alg`, that one (RFC 7517
/// §4.4: a key is pinned to its algorithm).
pub fn fits(jwk: &Map<String, Value>, alg: Algorithm) -> bool {
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return false;
    }
    let member = |name: &str| jwk.get(name).and_then(Value::as_str);
    let shape = match alg {
        Algorithm::ES256 => member("kty") == Some("EC") && member("crv") == Some("P-256"),
        Algorithm::EdDSA => member("kty") == Some("OKP") && member("crv") == Some("Ed25519"),
        Algorithm::RS256 | Algorithm::PS256 => {
            member("kty") == Some("RSA")
                && member("n")
                    .and_then(|n| URL_SAFE_NO_PAD.decode(n).ok())
                    .is_some_and(|n| n.len() >= MIN_RSA_MODULUS_BYTES)
        }
        _ => false,
    };
    shape && member("alg").is_none_or(|a| signing_algorithm(a) == Some(alg))
}

/// The key `jwk` names, checked with [`fits`], with its RFC 7638 thumbprint.
///
/// # Errors
/// `Key`.
pub fn public_key(
    jwk: &Map<String, Value>,
    alg: Algorithm,
) -> Result<(String, DecodingKey), JoseError> {
    if !fits(jwk, alg) {
        return Err(JoseError::Key);
    }
    let jkt = jwk_thumbprint(jwk).ok_or(JoseError::Key)?;
    let parsed: Jwk =
        serde_json::from_value(Value::Object(jwk.clone())).map_err(|_| JoseError::Key)?;
    let key = DecodingKey::from_jwk(&parsed).map_err(|_| JoseError::Key)?;
    Ok((jkt, key))
}

/// Verifies `jws` with `key` and `alg` alone (the header's `alg` must be
/// exactly it) and returns its claims; no claim is checked.
///
/// # Errors
/// `Signature`, `Algorithm`, `Key` or `Malformed`.
pub fn verify_signature(
    jws: &str,
    key: &DecodingKey,
    alg: Algorithm,
) -> Result<Map<String, Value>, JoseError> {
    let mut validation = Validation::new(alg);
    validation.algorithms = vec![alg];
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Map<String, Value>>(jws, key, &validation)
        .map(|data| data.claims)
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature => JoseError::Signature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => JoseError::Algorithm,
            ErrorKind::InvalidKeyFormat
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidRsaKey(_) => JoseError::Key,
            ErrorKind::InvalidToken
            | ErrorKind::Base64(_)
            | ErrorKind::Json(_)
            | ErrorKind::Utf8(_) => JoseError::Malformed,
            _ => JoseError::Signature,
        })
}

/// A NumericDate claim as whole seconds (it may carry a fraction).
pub fn numeric_date(claims: &Map<String, Value>, name: &str) -> Option<i64> {
    let v = claims.get(name)?;
    v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.is_finite() && f.abs() < 1e15)
            .map(|f| f.floor() as i64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn keys_fit_only_their_algorithm_and_never_carry_private_members() {
        let ec = map(json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}));
        assert!(fits(&ec, Algorithm::ES256));
        assert!(!fits(&ec, Algorithm::RS256));
        assert!(!fits(&ec, Algorithm::HS256));
        let mut pinned = ec.clone();
        pinned.insert("alg".into(), json!("ES384"));
        assert!(!fits(&pinned, Algorithm::ES256));
        let mut private = ec.clone();
        private.insert("d".into(), json!("AA"));
        assert!(!fits(&private, Algorithm::ES256));
        let short_rsa = map(json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"}));
        assert!(!fits(&short_rsa, Algorithm::RS256));
        let oct = map(json!({"kty": "oct", "k": "c2VjcmV0"}));
        assert!(!fits(&oct, Algorithm::HS256));
        assert_eq!(signing_algorithm("none"), None);
        assert_eq!(signing_algorithm("HS256"), None);
    }

    #[test]
    fn dates_accept_fractions_and_refuse_other_types() {
        let c = map(json!({"a": 10, "b": 10.7, "c": "10", "d": 1e300}));
        assert_eq!(numeric_date(&c, "a"), Some(10));
        assert_eq!(numeric_date(&c, "b"), Some(10));
        assert_eq!(numeric_date(&c, "c"), None);
        assert_eq!(numeric_date(&c, "d"), None);
        assert_eq!(numeric_date(&c, "e"), None);
    }
}
