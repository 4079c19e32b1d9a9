//! Key-encryption keys (KEKs) and sealing: private keys and the refresh-token
//! secret are stored as AES-256-GCM ciphertext (aws-lc-rs's AEAD, a fresh
//! random nonce each time). The associated data binds each ciphertext to
//! what it is (a key's kid and algorithm, or the secret's name), so a row
//! copied onto another kid fails to open instead of signing under the wrong
//! name. Several KEKs may be configured: the first seals, all open, which is
//! how the KEK itself rotates (`latchkey keys rewrap`). No I/O here but the
//! KEK file.

use std::path::Path;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;

use super::{files, KeyError};

/// One key-encryption key. `Debug` shows only its id.
pub struct Kek {
    id: String,
    key: LessSafeKey,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kek").field("id", &self.id).finish()
    }
}

impl Kek {
    /// A KEK from its 32 bytes. Its id is a short digest of them: public,
    /// stored next to each ciphertext, so the KEK a row needs can be named.
    ///
    /// # Errors
    /// Not 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() != 32 {
            return Err(KeyError::Kek(
                "a key-encryption key must be 32 bytes (base64url)".into(),
            ));
        }
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(b"latchkey kek id v1\0");
        ctx.update(bytes);
        let id = hex::encode(&ctx.finish().as_ref()[..8]);
        let key = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| KeyError::Kek("AES-256-GCM refused the key".into()))?;
        Ok(Self {
            id,
            key: LessSafeKey::new(key),
        })
    }

    /// A KEK from base64url (padded or not).
    ///
    /// # Errors
    /// Not base64url, or not 32 bytes.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .or_else(|_| URL_SAFE.decode(text))
            .map_err(|_| {
                KeyError::Kek("a key-encryption key must be base64url of 32 bytes".into())
            })?;
        Self::from_bytes(&bytes)
    }

    /// The first 8 bytes of a domain-separated SHA-256 of the key, in hex:
    /// safe to store and print.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// 32 random bytes as base64url: a new KEK's text.
///
/// # Errors
/// The system has no randomness to give.
pub fn generate_kek_text() -> Result<String, KeyError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| KeyError::Invalid("no randomness".into()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The configured KEKs, never empty: the first seals, every one opens.
#[derive(Debug)]
pub struct Keks(Vec<Kek>);

/// What `seal` produced: the ciphertext and the id of the KEK that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// nonce || ciphertext || tag.
    pub bytes: Vec<u8>,
    /// The sealing KEK's id.
    pub kek_id: String,
}

impl Keks {
    /// One or more KEKs, base64url, separated by commas or whitespace.
    ///
    /// # Errors
    /// None given, or one is malformed.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let keks = text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(Kek::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if keks.is_empty() {
            return Err(KeyError::Kek("no key-encryption key given".into()));
        }
        Ok(Self(keks))
    }

    /// Reads KEKs from a file that only its owner may read.
    ///
    /// # Errors
    /// Unreadable, open to group or others, or malformed.
    pub fn read_file(path: &Path) -> Result<Self, KeyError> {
        files::check_permissions(path)?;
        let text = std::fs::read_to_string(path).map_err(|e| KeyError::Io(path.to_owned(), e))?;
        Self::parse(&text).map_err(|e| KeyError::Kek(format!("{}: {e}", path.display())))
    }

    /// The id of the KEK that seals.
    pub fn sealing_id(&self) -> &str {
        self.0.first().map_or("", |k| k.id())
    }

    /// Whether a KEK with this id is configured.
    pub fn has(&self, kek_id: &str) -> bool {
        self.0.iter().any(|k| k.id == kek_id)
    }

    /// Seals `plaintext` under the first KEK, bound to `aad`.
    ///
    /// # Errors
    /// No randomness, or the cipher failed.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Sealed, KeyError> {
        let kek = self
            .0
            .first()
            .ok_or_else(|| KeyError::Kek("no key-encryption key".into()))?;
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| KeyError::Invalid("no randomness".into()))?;
        let mut out = plaintext.to_vec();
        kek.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut out,
            )
            .map_err(|_| KeyError::Kek("sealing failed".into()))?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&out);
        Ok(Sealed {
            bytes,
            kek_id: kek.id.clone(),
        })
    }

    /// Opens what `seal` made under the KEK named `kek_id`, bound to `aad`;
    /// `what` names it in errors (a kid, never key material).
    ///
    /// # Errors
    /// `Kek` when that KEK is not configured, or when the ciphertext does not
    /// open (a wrong KEK under a colliding id, a row moved onto another kid,
    /// or tampering).
    pub fn open(
        &self,
        sealed: &[u8],
        kek_id: &str,
        aad: &[u8],
        what: &str,
    ) -> Result<Vec<u8>, KeyError> {
        let kek = self.0.iter().find(|k| k.id == kek_id).ok_or_else(|| {
            KeyError::Kek(format!(
                "{what} is sealed under key-encryption key {kek_id}, which is not configured \
                 (configured: {}); set keys.kek or keys.kek_file to the KEK the store was written with",
                self.ids()
            ))
        })?;
        if sealed.len() < NONCE_LEN {
            return Err(KeyError::Kek(format!("{what}: sealed value is truncated")));
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| KeyError::Kek(format!("{what}: sealed value is truncated")))?;
        let mut buf = body.to_vec();
        let plain = kek
            .key
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .map_err(|_| {
                KeyError::Kek(format!(
                    "{what} does not decrypt under key-encryption key {kek_id}: wrong KEK, or the row was altered"
                ))
            })?;
        Ok(plain.to_vec())
    }

    fn ids(&self) -> String {
        self.0
            .iter()
            .map(|k| k.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The associated data of a signing key's ciphertext: its kid and algorithm.
pub fn key_aad(kid: &str, algorithm: &str) -> Vec<u8> {
    format!("latchkey signing key v1\0{kid}\0{algorithm}").into_bytes()
}

/// The associated data of a named secret's ciphertext.
pub fn secret_aad(name: &str) -> Vec<u8> {
    format!("latchkey secret v1\0{name}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keks(n: usize) -> Vec<String> {
        (0..n).map(|_| generate_kek_text().expect("kek")).collect()
    }

    #[test]
    fn sealing_round_trips_and_binds_the_associated_data() {
        let k = Keks::parse(&keks(1)[0]).expect("parses");
        let s = k.seal(b"private", &key_aad("a", "RS256")).expect("seals");
        assert_ne!(&s.bytes[NONCE_LEN..NONCE_LEN + 7], b"private");
        let open = |aad: &[u8]| k.open(&s.bytes, &s.kek_id, aad, "key a");
        assert_eq!(open(&key_aad("a", "RS256")).expect("opens"), b"private");
        // Moved onto another kid or algorithm: refused.
        assert!(matches!(
            open(&key_aad("b", "RS256")),
            Err(KeyError::Kek(_))
        ));
        assert!(matches!(
            open(&key_aad("a", "ES256")),
            Err(KeyError::Kek(_))
        ));
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let k = Keks::parse(&keks(1)[0]).expect("parses");
        let a = k.seal(b"x", b"").expect("seals");
        let b = k.seal(b"x", b"").expect("seals");
        assert_ne!(a.bytes[..NONCE_LEN], b.bytes[..NONCE_LEN]);
    }

    #[test]
    fn a_wrong_kek_is_refused_by_name() {
        let [a, b] = <[String; 2]>::try_from(keks(2)).expect("two");
        let sealed = Keks::parse(&a).expect("a").seal(b"x", b"").expect("seals");
        let err = Keks::parse(&b)
            .expect("b")
            .open(&sealed.bytes, &sealed.kek_id, b"", "key k")
            .expect_err("refused");
        let msg = err.to_string();
        assert!(
            msg.contains("not configured") && msg.contains(&sealed.kek_id),
            "{msg}"
        );
        // The same id with other bytes (a forged id): refused, no panic.
        let forged = Keks::parse(&b).expect("b");
        let id = forged.sealing_id().to_owned();
        assert!(forged.open(&sealed.bytes, &id, b"", "key k").is_err());
        assert!(forged.open(&[1, 2], &id, b"", "key k").is_err());
    }

    #[test]
    fn the_first_of_several_keks_seals_and_every_one_opens() {
        let [a, b] = <[String; 2]>::try_from(keks(2)).expect("two");
        let old = Keks::parse(&a).expect("a").seal(b"x", b"").expect("seals");
        let both = Keks::parse(&format!("{b}, {a}")).expect("both");
        assert_eq!(
            both.open(&old.bytes, &old.kek_id, b"", "k").expect("opens"),
            b"x"
        );
        let new = both.seal(b"y", b"").expect("seals");
        assert_eq!(new.kek_id, Keks::parse(&b).expect("b").sealing_id());
    }

    #[test]
    fn malformed_keks_are_refused() {
        for bad in ["", "   ", "not base64!", "c2hvcnQ"] {
            assert!(matches!(Keks::parse(bad), Err(KeyError::Kek(_))), "{bad:?}");
        }
    }
}
