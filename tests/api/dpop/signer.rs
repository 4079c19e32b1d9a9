//! A test-only DPoP client key: aws-lc-rs key pairs signing proofs whose
//! header and claims the test controls completely, so that every defect
//! RFC 9449 §4.3 lists can be forged.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use aws_lc_rs::{digest, hmac};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

enum Pair {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Rsa(RsaKeyPair, &'static dyn signature::RsaEncoding),
}

/// A client's proof key.
pub struct ProofKey {
    pair: Pair,
    pub alg: &'static str,
    /// The public JWK, as a proof's header carries it.
    pub jwk: Value,
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// base64url SHA-256, as `ath` and `jkt` use.
pub fn sha256(bytes: &[u8]) -> String {
    b64(digest::digest(&digest::SHA256, bytes).as_ref())
}

impl ProofKey {
    pub fn es256() -> Self {
        let pair =
            EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).expect("EC key");
        let point = pair.public_key().as_ref().to_vec();
        let jwk = json!({"kty": "EC", "crv": "P-256",
                         "x": b64(&point[1..33]), "y": b64(&point[33..65])});
        Self {
            pair: Pair::Ec(pair),
            alg: "ES256",
            jwk,
        }
    }

    pub fn ed25519() -> Self {
        let pair = Ed25519KeyPair::generate().expect("Ed25519 key");
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())});
        Self {
            pair: Pair::Ed(pair),
            alg: "EdDSA",
            jwk,
        }
    }

    fn rsa(alg: &'static str, encoding: &'static dyn signature::RsaEncoding) -> Self {
        let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("RSA key");
        let public = pair.public_key();
        let n = public.modulus().big_endian_without_leading_zero().to_vec();
        let e = public.exponent().big_endian_without_leading_zero().to_vec();
        let jwk = json!({"kty": "RSA", "n": b64(&n), "e": b64(&e)});
        Self {
            pair: Pair::Rsa(pair, encoding),
            alg,
            jwk,
        }
    }

    pub fn rs256() -> Self {
        Self::rsa("RS256", &signature::RSA_PKCS1_SHA256)
    }

    pub fn ps256() -> Self {
        Self::rsa("PS256", &signature::RSA_PSS_SHA256)
    }

    /// The RFC 7638 thumbprint, computed here independently of the server.
    pub fn jkt(&self) -> String {
        let j = &self.jwk;
        let canonical = match j["kty"].as_str() {
            Some("EC") => json!({"crv": j["crv"], "kty": "EC", "x": j["x"], "y": j["y"]}),
            Some("OKP") => json!({"crv": j["crv"], "kty": "OKP", "x": j["x"]}),
            _ => json!({"e": j["e"], "kty": "RSA", "n": j["n"]}),
        };
        // serde_json's map is ordered by key, with no whitespace.
        sha256(canonical.to_string().as_bytes())
    }

    /// The header of a well-formed proof.
    pub fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": self.alg, "jwk": self.jwk})
    }

    /// The claims of a well-formed proof for `htm` `htu` at `iat`.
    pub fn claims(htm: &str, htu: &str, iat: i64) -> Value {
        json!({"jti": uuid::Uuid::new_v4().to_string(), "htm": htm, "htu": htu, "iat": iat})
    }

    /// A well-formed proof.
    pub fn proof(&self, htm: &str, htu: &str, iat: i64) -> String {
        self.sign(&self.header(), &Self::claims(htm, htu, iat))
    }

    /// A well-formed proof for a protected resource: with `ath`, and the
    /// server's nonce when given.
    pub fn resource_proof(
        &self,
        htm: &str,
        htu: &str,
        iat: i64,
        token: &str,
        nonce: Option<&str>,
    ) -> String {
        let mut claims = Self::claims(htm, htu, iat);
        claims["ath"] = sha256(token.as_bytes()).into();
        if let Some(n) = nonce {
            claims["nonce"] = n.into();
        }
        self.sign(&self.header(), &claims)
    }

    /// Signs `header.claims` exactly as given, with this key.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = signing_input(header, claims);
        let rng = SystemRandom::new();
        let sig = match &self.pair {
            Pair::Ec(p) => p
                .sign(&rng, input.as_bytes())
                .expect("signs")
                .as_ref()
                .to_vec(),
            Pair::Ed(p) => p.sign(input.as_bytes()).as_ref().to_vec(),
            Pair::Rsa(p, encoding) => {
                let mut sig = vec![0; p.public_modulus_len()];
                p.sign(*encoding, &rng, input.as_bytes(), &mut sig)
                    .expect("signs");
                sig
            }
        };
        format!("{input}.{}", b64(&sig))
    }
}

pub fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64(&serde_json::to_vec(header).expect("json")),
        b64(&serde_json::to_vec(claims).expect("json"))
    )
}

/// An HS256 "proof" keyed with `secret`: what an attacker without any
/// private key could produce.
pub fn hmac_proof(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let input = signing_input(header, claims);
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    format!(
        "{input}.{}",
        b64(hmac::sign(&key, input.as_bytes()).as_ref())
    )
}

/// An unsigned "proof" (`alg: none`).
pub fn unsigned_proof(header: &Value, claims: &Value) -> String {
    format!("{}.", signing_input(header, claims))
}
