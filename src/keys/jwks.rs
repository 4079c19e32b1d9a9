//! JWK Set rendering (RFC 7517; RFC 7518 §6.2 EC and §6.3 RSA keys; RFC 8037
//! §2 OKP keys) and JWK thumbprints (RFC 7638), which latchkey uses as every
//! key's `kid`.

use aws_lc_rs::digest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;

use crate::tokens::keypair::{Algorithm, PublicKey};

/// The public half of a key as a JWK. Only public members: a JWKS never
/// carries `d`, `p`, `q` or any other private parameter. `alg` pins the key
/// to its one algorithm for verifiers too (RFC 7517 §4.4).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Jwk {
    /// `RSA`, `EC` or `OKP`.
    pub kty: &'static str,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: &'static str,
    /// `RS256`, `ES256` or `EdDSA`.
    pub alg: &'static str,
    /// The RFC 7638 thumbprint.
    pub kid: String,
    /// The curve: `P-256` or `Ed25519`; absent for RSA.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crv: Option<&'static str>,
    /// RSA modulus, base64url big-endian without leading zeros.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent, likewise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// EC x coordinate, or the Ed25519 public key, base64url.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// EC y coordinate, base64url.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

impl Jwk {
    /// Builds the JWK of a public key; `kid` is computed.
    pub fn from_public(public: &PublicKey) -> Self {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        match public {
            PublicKey::Rsa { modulus, exponent } => {
                Self::from_components(modulus.as_slice(), exponent.as_slice())
            }
            PublicKey::P256 { x, y } => {
                let (x, y) = (b64(x), b64(y));
                Self {
                    kty: "EC",
                    use_: "sig",
                    alg: Algorithm::Es256.name(),
                    kid: ec_thumbprint("P-256", &x, &y),
                    crv: Some("P-256"),
                    n: None,
                    e: None,
                    x: Some(x),
                    y: Some(y),
                }
            }
            PublicKey::Ed25519 { x } => {
                let x = b64(x);
                Self {
                    kty: "OKP",
                    use_: "sig",
                    alg: Algorithm::EdDsa.name(),
                    kid: okp_thumbprint("Ed25519", &x),
                    crv: Some("Ed25519"),
                    n: None,
                    e: None,
                    x: Some(x),
                    y: None,
                }
            }
        }
    }

    /// Builds an RSA JWK from big-endian modulus and exponent; `kid` is
    /// computed.
    pub fn from_components(modulus: &[u8], exponent: &[u8]) -> Self {
        let n = URL_SAFE_NO_PAD.encode(strip_leading_zeros(modulus));
        let e = URL_SAFE_NO_PAD.encode(strip_leading_zeros(exponent));
        let kid = rsa_thumbprint(&e, &n);
        Self {
            kty: "RSA",
            use_: "sig",
            alg: Algorithm::Rs256.name(),
            kid,
            crv: None,
            n: Some(n),
            e: Some(e),
            x: None,
            y: None,
        }
    }
}

fn strip_leading_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[first..]
}

pub use latchkey_verify::thumbprint::{ec_thumbprint, okp_thumbprint, rsa_thumbprint};

/// Renders a JWK Set body and its strong ETag (a digest of the body).
pub fn render(keys: &[&Jwk]) -> (Vec<u8>, String) {
    #[derive(Serialize)]
    struct Set<'a> {
        keys: &'a [&'a Jwk],
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

    /// RFC 8037 §A.3: the Ed25519 example key's thumbprint.
    #[test]
    fn okp_thumbprint_matches_rfc8037_example() {
        assert_eq!(
            okp_thumbprint("Ed25519", "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    fn members(jwk: &Jwk) -> Vec<String> {
        let v = serde_json::to_value(jwk).expect("json");
        let mut m: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
        m.sort_unstable();
        m
    }

    #[test]
    fn ec_and_okp_jwks_have_only_public_members() {
        use crate::tokens::keypair::KeyPair;
        for (alg, expected) in [
            (
                Algorithm::Es256,
                vec!["alg", "crv", "kid", "kty", "use", "x", "y"],
            ),
            (
                Algorithm::EdDsa,
                vec!["alg", "crv", "kid", "kty", "use", "x"],
            ),
        ] {
            let der = KeyPair::generate_pkcs8(alg, 0).expect("generates");
            let pair = KeyPair::from_pkcs8(&der).expect("parses");
            let jwk = Jwk::from_public(&pair.public_key());
            assert_eq!(members(&jwk), expected, "{alg}");
            assert_eq!(jwk.alg, alg.name());
        }
    }

    #[test]
    fn jwk_has_only_public_members() {
        let jwk = Jwk::from_components(&[0, 0xc1, 0x02], &[1, 0, 1]);
        let v = serde_json::to_value(&jwk).expect("json");
        let mut members: Vec<&str> = v
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        members.sort_unstable();
        assert_eq!(members, ["alg", "e", "kid", "kty", "n", "use"]);
        assert_eq!(jwk.e.as_deref(), Some("AQAB"));
        assert_eq!(jwk.n.as_deref(), Some("wQI"));
    }

    #[test]
    fn etag_follows_the_body() {
        let a = Jwk::from_components(&[1, 2, 3], &[1, 0, 1]);
        let b = Jwk::from_components(&[4, 5, 6], &[1, 0, 1]);
        let (_, one) = render(&[&a]);
        let (_, two) = render(&[&a, &b]);
        assert_ne!(one, two);
        assert_eq!(one, render(&[&a]).1);
    }
}
