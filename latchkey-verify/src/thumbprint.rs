//! JWK thumbprints (RFC 7638; RFC 8037 §2 for OKP keys): latchkey's `kid`s
//! and DPoP's `jkt` (RFC 9449 §6.1). One implementation for the server's key
//! ring, its proof checks and services' proof checks.

use aws_lc_rs::digest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

fn sha256_b64(canonical: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
}

/// RFC 7638 §3.2: SHA-256 over the required members in lexicographic order,
/// with no whitespace, base64url-encoded.
pub fn rsa_thumbprint(e: &str, n: &str) -> String {
    sha256_b64(&format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#))
}

/// RFC 7638 §3.2 for an EC key: `crv`, `kty`, `x`, `y`.
pub fn ec_thumbprint(crv: &str, x: &str, y: &str) -> String {
    sha256_b64(&format!(
        r#"{{"crv":"{crv}","kty":"EC","x":"{x}","y":"{y}"}}"#
    ))
}

/// RFC 8037 §2 with RFC 7638: an OKP key's thumbprint covers `crv`, `kty`, `x`.
pub fn okp_thumbprint(crv: &str, x: &str) -> String {
    sha256_b64(&format!(r#"{{"crv":"{crv}","kty":"OKP","x":"{x}"}}"#))
}

/// The thumbprint of a public JWK given as JSON. `None` when a required
/// member is missing, not a string, or not plain base64url/name characters
/// (so nothing can break out of the canonical JSON).
pub fn jwk_thumbprint(jwk: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    let member = |name: &str| {
        jwk.get(name)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty() && s.bytes().all(is_canonical_byte))
    };
    match member("kty")? {
        "RSA" => Some(rsa_thumbprint(member("e")?, member("n")?)),
        "EC" => Some(ec_thumbprint(member("crv")?, member("x")?, member("y")?)),
        "OKP" => Some(okp_thumbprint(member("crv")?, member("x")?)),
        _ => None,
    }
}

/// base64url characters and the `-` of curve names: nothing that needs
/// escaping in JSON.
fn is_canonical_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// base64url (no padding) of SHA-256 over `bytes`: DPoP's `ath` (RFC 9449
/// §4.2) and the digest under which a used `jti` is remembered.
pub fn sha256_base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7638 §3.1's example key and its published thumbprint.
    #[test]
    fn json_thumbprint_matches_rfc7638_example() {
        let jwk = serde_json::json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        let map = jwk.as_object().expect("object");
        assert_eq!(
            jwk_thumbprint(map).as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
    }

    #[test]
    fn json_thumbprint_refuses_what_could_break_the_canonical_form() {
        let bad = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": "a\",\"y\":\"b"});
        assert_eq!(jwk_thumbprint(bad.as_object().expect("object")), None);
        let missing = serde_json::json!({"kty": "EC", "crv": "P-256", "x": "abc"});
        assert_eq!(jwk_thumbprint(missing.as_object().expect("object")), None);
        let oct = serde_json::json!({"kty": "oct", "k": "abc"});
        assert_eq!(jwk_thumbprint(oct.as_object().expect("object")), None);
    }
}
