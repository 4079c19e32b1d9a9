//! A JWK Set parsed into keys pinned to one algorithm each (RFC 7517,
//! RFC 7518 §6). The algorithm comes from the key (`kty`, `crv`, `alg`),
//! never from a token's header (RFC 8725 §3.1). Keys this verifier does not
//! use are skipped, not fatal: an issuer adding a key type must not take
//! every service down. Symmetric (`oct`) keys are always skipped: a public
//! key set has no business carrying an HMAC secret, and accepting one is the
//! classic algorithm-confusion hole.

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use crate::rules::MAX_KID_BYTES;

/// A published key with the one algorithm it verifies.
#[derive(Clone)]
pub struct PinnedKey {
    /// The only algorithm a token signed by this key may name.
    pub alg: Algorithm,
    pub(crate) decoding: DecodingKey,
}

impl std::fmt::Debug for PinnedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedKey").field("alg", &self.alg).finish()
    }
}

/// The usable keys of a JWK Set, by `kid`.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: HashMap<String, Arc<PinnedKey>>,
    skipped: usize,
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

/// The JWK Set document itself was unusable (not JSON, no `keys` array).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a JWK Set")]
pub struct NotAKeySet;

impl KeySet {
    /// Parses a JWK Set, keeping the keys latchkey signs with (RSA for
    /// RS256, EC P-256 for ES256, OKP Ed25519 for EdDSA) and skipping every
    /// other entry, including malformed ones.
    ///
    /// # Errors
    /// [`NotAKeySet`] when the document is not a JSON object with a `keys`
    /// array.
    pub fn from_json(body: &[u8]) -> Result<Self, NotAKeySet> {
        let raw: RawSet = serde_json::from_slice(body).map_err(|_| NotAKeySet)?;
        let mut set = Self::default();
        for value in raw.keys {
            match serde_json::from_value::<RawJwk>(value)
                .ok()
                .and_then(|jwk| pin(&jwk))
            {
                Some((kid, key)) => {
                    set.keys.insert(kid, Arc::new(key));
                }
                None => set.skipped += 1,
            }
        }
        Ok(set)
    }

    /// The key published as `kid`.
    pub fn get(&self, kid: &str) -> Option<&Arc<PinnedKey>> {
        self.keys.get(kid)
    }

    /// How many usable keys the set holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set holds no usable key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// How many entries were skipped as unusable or of an unknown type.
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// The `kid`s of the usable keys.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }
}

/// The algorithm a JWK is pinned to, or `None` to skip it. A stated `alg`
/// must agree with the key type; an absent one takes the only algorithm
/// latchkey uses with that type.
fn pin(jwk: &RawJwk) -> Option<(String, PinnedKey)> {
    let kid = jwk
        .kid
        .as_deref()
        .filter(|k| !k.is_empty() && k.len() <= MAX_KID_BYTES)?;
    if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
        return None;
    }
    let (alg, decoding) = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
        ("RSA", _) => (
            Algorithm::RS256,
            DecodingKey::from_rsa_components(jwk.n.as_deref()?, jwk.e.as_deref()?).ok()?,
        ),
        ("EC", Some("P-256")) => (
            Algorithm::ES256,
            DecodingKey::from_ec_components(jwk.x.as_deref()?, jwk.y.as_deref()?).ok()?,
        ),
        ("OKP", Some("Ed25519")) => (
            Algorithm::EdDSA,
            DecodingKey::from_ed_components(jwk.x.as_deref()?).ok()?,
        ),
        _ => return None,
    };
    if jwk.alg.as_deref().is_some_and(|a| a != alg_name(alg)) {
        return None;
    }
    Some((kid.to_owned(), PinnedKey { alg, decoding }))
}

/// The JOSE name of an algorithm this crate pins keys to.
pub(crate) fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::RS256 => "RS256",
        Algorithm::ES256 => "ES256",
        Algorithm::EdDSA => "EdDSA",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

    #[test]
    fn keeps_rsa_ec_and_ed25519_and_skips_the_rest() {
        let body = serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "rsa", "alg": "RS256", "use": "sig", "n": N, "e": "AQAB"},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "alg": "ES256",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519",
             "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "EC", "kid": "p384", "crv": "P-384", "x": "AA", "y": "AA"},
            {"kty": "RSA", "kid": "rsa-as-hs", "alg": "HS256", "n": N, "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": N, "e": "AQAB"},
            {"kty": "RSA", "n": N, "e": "AQAB"},
            {"kty": "PQC", "kid": "future"},
            "not even an object"
        ]});
        let set = KeySet::from_json(&serde_json::to_vec(&body).expect("json")).expect("a set");
        assert_eq!(set.get("rsa").map(|k| k.alg), Some(Algorithm::RS256));
        assert_eq!(set.get("ec").map(|k| k.alg), Some(Algorithm::ES256));
        assert_eq!(set.get("ed").map(|k| k.alg), Some(Algorithm::EdDSA));
        assert_eq!(set.len(), 3);
        assert_eq!(set.skipped(), 7);
    }

    #[test]
    fn a_document_without_keys_is_refused() {
        assert_eq!(KeySet::from_json(b"[]").err(), Some(NotAKeySet));
        assert_eq!(KeySet::from_json(b"{}").err(), Some(NotAKeySet));
        assert_eq!(KeySet::from_json(b"\xff").err(), Some(NotAKeySet));
    }
}
