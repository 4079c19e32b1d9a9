//! JWK Set rendering (RFC 7517, RFC 7518 §6.3.1) and JWK thumbprints
//! (RFC 7638), which latchkey uses as every key's `kid`.

use aws_lc_rs::digest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;

/// The public half of an RSA key as a JWK. Only public members: a JWKS never
/// carries `d`, `p`, `q` or any other private parameter.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RsaJwk {
    /// Always `RSA`.
    pub kty: &'static str,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: &'static str,
    /// Always `RS256`.
    pub alg: &'static str,
    /// The RFC 7638 thumbprint.
    pub kid: String,
    /// Modulus, base64url big-endian without leading zeros.
    pub n: String,
    /// Public exponent, likewise.
    pub e: String,
}

impl RsaJwk {
    /// Builds the JWK from big-endian modulus and exponent; `kid` is computed.
    pub fn from_components(modulus: &[u8], exponent: &[u8]) -> Self {
        let n = URL_SAFE_NO_PAD.encode(strip_leading_zeros(modulus));
        let e = URL_SAFE_NO_PAD.encode(strip_leading_zeros(exponent));
        let kid = rsa_thumbprint(&e, &n);
        Self {
            kty: "RSA",
            use_: "sig",
            alg: "RS256",
            kid,
            n,
            e,
        }
    }
}

fn strip_leading_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[first..]
}

/// RFC 7638 §3.2: SHA-256 over the required members in lexicographic order,
/// with no whitespace, base64url-encoded.
pub fn rsa_thumbprint(e: &str, n: &str) -> String {
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
}

/// Renders a JWK Set body and its strong ETag (a digest of the body).
pub fn render(keys: &[&RsaJwk]) -> (Vec<u8>, String) {
    #[derive(Serialize)]
    struct Set<'a> {
        keys: &'a [&'a RsaJwk],
    }
    // Serialising plain strings cannot fail.
    let body = serde_json::to_vec(&Set { keys }).unwrap_or_else(|_| b"{\"keys\":[]}".to_vec());
    let sum = digest::digest(&digest::SHA256, &body);
    let etag = format!("\"{}\"", URL_SAFE_NO_PAD.encode(&sum.as_ref()[..16]));
    (body, etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example key of RFC 7638 §3.1 and its published thumbprint.
    #[test]
    fn thumbprint_matches_rfc7638_example() {
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        assert_eq!(
            rsa_thumbprint("AQAB", n),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn jwk_has_only_public_members() {
        let jwk = RsaJwk::from_components(&[0, 0xc1, 0x02], &[1, 0, 1]);
        let v = serde_json::to_value(&jwk).expect("json");
        let mut members: Vec<&str> = v
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        members.sort_unstable();
        assert_eq!(members, ["alg", "e", "kid", "kty", "n", "use"]);
        assert_eq!(jwk.e, "AQAB");
        assert_eq!(jwk.n, "wQI");
    }

    #[test]
    fn etag_follows_the_body() {
        let a = RsaJwk::from_components(&[1, 2, 3], &[1, 0, 1]);
        let b = RsaJwk::from_components(&[4, 5, 6], &[1, 0, 1]);
        let (_, one) = render(&[&a]);
        let (_, two) = render(&[&a, &b]);
        assert_ne!(one, two);
        assert_eq!(one, render(&[&a]).1);
    }
}
