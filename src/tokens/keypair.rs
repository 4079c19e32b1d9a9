//! The signing algorithms latchkey offers (RFC 7518 §3.3 RS256, §3.4 ES256,
//! RFC 8037 EdDSA with Ed25519) and a private key parsed once for one of them.
//! A key's algorithm follows from the key material itself, so a key can only
//! ever sign, or verify, under its own algorithm. No I/O here.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaPrivate, KeySize};
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
    RSA_PKCS1_SHA256,
};

/// A JWS signing algorithm latchkey signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256: the default, which every verifier
    /// supports.
    Rs256,
    /// ECDSA on P-256 with SHA-256: signs about twelve times faster than
    /// RSA-2048, and its 64-byte signature makes a token about 250
    /// base64url characters shorter.
    Es256,
    /// Ed25519 (RFC 8037): as short as ES256, signs about half as fast as
    /// it here; not every JOSE library verifies it.
    EdDsa,
}

impl Algorithm {
    /// Every algorithm, in the order latchkey prefers for compatibility.
    pub const ALL: [Self; 3] = [Self::Rs256, Self::Es256, Self::EdDsa];

    /// The JOSE `alg` name (RFC 7518 §3.1, RFC 8037 §3.1).
    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// The algorithm a JOSE `alg` names, exactly (names are case-sensitive,
    /// RFC 7515 §4.1.1); `None` for any other name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The same algorithm in jsonwebtoken's terms, for verification.
    pub fn to_jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::Rs256 => jsonwebtoken::Algorithm::RS256,
            Self::Es256 => jsonwebtoken::Algorithm::ES256,
            Self::EdDsa => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The public half of a key pair, as the raw values a JWK carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// RSA modulus and exponent, big-endian without leading zeros.
    Rsa {
        /// `n`.
        modulus: Vec<u8>,
        /// `e`.
        exponent: Vec<u8>,
    },
    /// A P-256 point's affine coordinates, 32 bytes each.
    P256 {
        /// `x`.
        x: Vec<u8>,
        /// `y`.
        y: Vec<u8>,
    },
    /// An Ed25519 public key, 32 bytes.
    Ed25519 {
        /// `x`.
        x: Vec<u8>,
    },
}

/// A private key parsed once, for one algorithm.
#[derive(Debug)]
pub enum KeyPair {
    /// An RSA key: RS256.
    Rsa(RsaKeyPair),
    /// A P-256 key: ES256.
    P256(EcdsaKeyPair),
    /// An Ed25519 key: EdDSA.
    Ed25519(Ed25519KeyPair),
}

/// The key material is none of the supported kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an RSA, P-256 or Ed25519 PKCS#8 private key")]
pub struct UnsupportedKey;

impl KeyPair {
    /// Parses a PKCS#8 (v1 or v2) private key of any supported kind.
    ///
    /// # Errors
    /// `UnsupportedKey` for anything else (other curves, DSA, garbage).
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, UnsupportedKey> {
        if let Ok(pair) = RsaKeyPair::from_pkcs8(der) {
            return Ok(Self::Rsa(pair));
        }
        if let Ok(pair) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der) {
            return Ok(Self::P256(pair));
        }
        Ed25519KeyPair::from_pkcs8(der)
            .map(Self::Ed25519)
            .map_err(|_| UnsupportedKey)
    }

    /// Generates a new private key for `alg` as PKCS#8 DER; `rsa_bits`
    /// applies to RS256 only.
    ///
    /// # Errors
    /// An unsupported RSA size, or the generator failed.
    pub fn generate_pkcs8(alg: Algorithm, rsa_bits: u32) -> Result<Vec<u8>, &'static str> {
        let der = match alg {
            Algorithm::Rs256 => {
                let size = match rsa_bits {
                    2048 => KeySize::Rsa2048,
                    3072 => KeySize::Rsa3072,
                    4096 => KeySize::Rsa4096,
                    _ => return Err("RSA key size must be 2048, 3072 or 4096"),
                };
                let pair = RsaPrivate::generate(size).map_err(|_| "RSA key generation failed")?;
                pair.as_der()
                    .map_err(|_| "PKCS#8 encoding failed")?
                    .as_ref()
                    .to_vec()
            }
            Algorithm::Es256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .and_then(|p| p.to_pkcs8v1())
                .map_err(|_| "P-256 key generation failed")?
                .as_ref()
                .to_vec(),
            Algorithm::EdDsa => Ed25519KeyPair::generate()
                .and_then(|p| p.to_pkcs8())
                .map_err(|_| "Ed25519 key generation failed")?
                .as_ref()
                .to_vec(),
        };
        Ok(der)
    }

    /// The one algorithm this key signs and verifies with.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::Rsa(_) => Algorithm::Rs256,
            Self::P256(_) => Algorithm::Es256,
            Self::Ed25519(_) => Algorithm::EdDsa,
        }
    }

    /// RSA modulus length in bytes; `None` for other keys.
    pub fn rsa_modulus_len(&self) -> Option<usize> {
        match self {
            Self::Rsa(p) => Some(p.public_modulus_len()),
            _ => None,
        }
    }

    /// The public values a JWK publishes.
    pub fn public_key(&self) -> PublicKey {
        match self {
            Self::Rsa(p) => {
                let public = p.public_key();
                PublicKey::Rsa {
                    modulus: public.modulus().big_endian_without_leading_zero().to_vec(),
                    exponent: public.exponent().big_endian_without_leading_zero().to_vec(),
                }
            }
            Self::P256(p) => {
                // SEC 1 §2.3.3 uncompressed point: 0x04 || x || y.
                let point = p.public_key().as_ref();
                let coords = point.get(1..).unwrap_or_default();
                let (x, y) = coords.split_at(coords.len() / 2);
                PublicKey::P256 {
                    x: x.to_vec(),
                    y: y.to_vec(),
                }
            }
            Self::Ed25519(p) => PublicKey::Ed25519 {
                x: p.public_key().as_ref().to_vec(),
            },
        }
    }

    /// The JWS signature over `message` (RFC 7518 §3.4: ECDSA as the fixed
    /// 64-byte `R || S`, not DER).
    ///
    /// # Errors
    /// Only if the library fails, which a loaded key does not.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, aws_lc_rs::error::Unspecified> {
        match self {
            Self::Rsa(p) => {
                let mut sig = vec![0u8; p.public_modulus_len()];
                p.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut sig)?;
                Ok(sig)
            }
            Self::P256(p) => Ok(p.sign(&SystemRandom::new(), message)?.as_ref().to_vec()),
            Self::Ed25519(p) => Ok(p.sign(message).as_ref().to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_case_sensitive() {
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(alg.name()), Some(alg));
        }
        for other in ["rs256", "es256", "EDDSA", "ES384", "PS256", "none", ""] {
            assert_eq!(Algorithm::from_name(other), None, "{other}");
        }
    }

    #[test]
    fn generated_keys_parse_back_with_their_algorithm() {
        for alg in Algorithm::ALL {
            let der = KeyPair::generate_pkcs8(alg, 2048).expect("generates");
            let pair = KeyPair::from_pkcs8(&der).expect("parses");
            assert_eq!(pair.algorithm(), alg);
            let sig = pair.sign(b"message").expect("signs");
            let expected = match alg {
                Algorithm::Rs256 => 256,
                Algorithm::Es256 | Algorithm::EdDsa => 64,
            };
            assert_eq!(sig.len(), expected, "{alg}");
        }
    }

    #[test]
    fn public_coordinates_have_the_curve_sizes() {
        let der = KeyPair::generate_pkcs8(Algorithm::Es256, 0).expect("generates");
        match KeyPair::from_pkcs8(&der).expect("parses").public_key() {
            PublicKey::P256 { x, y } => assert_eq!((x.len(), y.len()), (32, 32)),
            other => panic!("not P-256: {other:?}"),
        }
        let der = KeyPair::generate_pkcs8(Algorithm::EdDsa, 0).expect("generates");
        match KeyPair::from_pkcs8(&der).expect("parses").public_key() {
            PublicKey::Ed25519 { x } => assert_eq!(x.len(), 32),
            other => panic!("not Ed25519: {other:?}"),
        }
    }

    #[test]
    fn garbage_and_bad_sizes_are_refused() {
        assert_eq!(
            KeyPair::from_pkcs8(b"not a key").err(),
            Some(UnsupportedKey)
        );
        assert!(KeyPair::generate_pkcs8(Algorithm::Rs256, 1024).is_err());
    }
}
