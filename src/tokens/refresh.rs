//! Opaque refresh tokens, derived rather than stored.
//!
//! # Design
//! A refresh token names its session and its place in the session's chain,
//! and proves both with a MAC under a server secret that lives in the keys
//! folder or, in store mode, in the database sealed under a KEK the database
//! does not hold:
//!
//! ```text
//! lk_rt_ base64url( version:1 | sid:16 | generation:8 | mac:32 | checksum:4 )
//! mac      = HMAC-SHA-256(secret, "latchkey-rt-v1" | sid | generation)
//! checksum = SHA-256(version | sid | generation | mac)[..4]
//! ```
//!
//! The session row keeps a counter, `generation`: the token of the newest
//! generation is the only one that rotates; rotating increments the counter
//! with one conditional `UPDATE`. Because token `n` is a pure function of the
//! secret, the session and `n`, the grace replay (the immediate predecessor
//! presented again within the grace period) hands back the *same* newest token
//! by recomputing it: the family never forks and no usable token is ever
//! stored. A dump of the database alone holds no token and no way to make one;
//! the 256-bit MAC is the token's secret.
//!
//! The prefix lets secret scanners spot a leaked token; the checksum rejects
//! typos and garbage without a MAC or a store query.

use aws_lc_rs::{digest, hmac};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use uuid::Uuid;

use crate::ids::SessionId;

/// The prefix of every refresh token.
pub const PREFIX: &str = "lk_rt_";
const VERSION: u8 = 1;
const BODY_LEN: usize = 1 + 16 + 8 + 32;
const RAW_LEN: usize = BODY_LEN + 4;
/// The exact length of a refresh token string.
pub const TOKEN_LEN: usize = PREFIX.len() + (RAW_LEN * 4).div_ceil(3);

/// The server secret refresh tokens are derived under.
pub struct RefreshSecret(hmac::Key);

impl std::fmt::Debug for RefreshSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshSecret([redacted])")
    }
}

impl RefreshSecret {
    /// Wraps 32 or more bytes of secret.
    pub fn new(bytes: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    /// A key for another purpose, derived from this secret under `label`
    /// (HMAC as a PRF), so one secret serves several MACs that can never be
    /// confused with one another or with refresh tokens.
    pub fn derive(&self, label: &str) -> hmac::Key {
        let tag = hmac::sign(&self.0, format!("latchkey-derive-v1:{label}").as_bytes());
        hmac::Key::new(hmac::HMAC_SHA256, tag.as_ref())
    }

    fn mac(&self, sid: SessionId, generation: i64) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(b"latchkey-rt-v1");
        ctx.update(sid.0.as_bytes());
        ctx.update(&generation.to_be_bytes());
        ctx.sign()
    }

    /// The refresh token of `sid` at `generation`.
    pub fn token(&self, sid: SessionId, generation: i64) -> String {
        let mut raw = Vec::with_capacity(RAW_LEN);
        raw.push(VERSION);
        raw.extend_from_slice(sid.0.as_bytes());
        raw.extend_from_slice(&generation.to_be_bytes());
        raw.extend_from_slice(self.mac(sid, generation).as_ref());
        let sum = digest::digest(&digest::SHA256, &raw);
        raw.extend_from_slice(&sum.as_ref()[..4]);
        let mut out = String::with_capacity(TOKEN_LEN);
        out.push_str(PREFIX);
        URL_SAFE_NO_PAD.encode_string(raw, &mut out);
        out
    }

    /// Parses a presented token and checks its MAC.
    ///
    /// # Errors
    /// `Malformed` for anything that is not a well-formed token (wrong
    /// prefix, length, encoding or checksum), `Forged` for a well-formed token
    /// this server never issued.
    pub fn parse(&self, token: &str) -> Result<ParsedRefresh, RefreshParseError> {
        let parsed = parse_unverified(token)?;
        let expected = self.mac(parsed.sid, parsed.generation);
        // Constant-time comparison: the MAC is the secret.
        aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_ref(), &parsed.mac)
            .map_err(|_| RefreshParseError::Forged)?;
        Ok(parsed)
    }
}

/// A refresh token taken apart. `Debug` omits the MAC, which is the token's
/// secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ParsedRefresh {
    /// The session it names; to be trusted only once `parse` has checked
    /// the MAC (`parse_unverified` does not).
    pub sid: SessionId,
    /// Its place in the session's chain.
    pub generation: i64,
    mac: [u8; 32],
}

impl std::fmt::Debug for ParsedRefresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedRefresh")
            .field("sid", &self.sid)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// Why a string is not a refresh token of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RefreshParseError {
    /// Not shaped like a latchkey refresh token.
    #[error("malformed refresh token")]
    Malformed,
    /// Shaped right, but the MAC is wrong.
    #[error("refresh token not issued by this server")]
    Forged,
}

/// Checks prefix, length, encoding, version and checksum, without the secret.
///
/// # Errors
/// `Malformed` for any deviation.
pub fn parse_unverified(token: &str) -> Result<ParsedRefresh, RefreshParseError> {
    let body = token
        .strip_prefix(PREFIX)
        .filter(|_| token.len() == TOKEN_LEN)
        .ok_or(RefreshParseError::Malformed)?;
    let raw = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| RefreshParseError::Malformed)?;
    if raw.len() != RAW_LEN || raw[0] != VERSION {
        return Err(RefreshParseError::Malformed);
    }
    let sum = digest::digest(&digest::SHA256, &raw[..BODY_LEN]);
    if sum.as_ref()[..4] != raw[BODY_LEN..] {
        return Err(RefreshParseError::Malformed);
    }
    let sid = Uuid::from_slice(&raw[1..17]).map_err(|_| RefreshParseError::Malformed)?;
    let mut generation = [0u8; 8];
    generation.copy_from_slice(&raw[17..25]);
    let mut mac = [0u8; 32];
    mac.copy_from_slice(&raw[25..BODY_LEN]);
    Ok(ParsedRefresh {
        sid: SessionId(sid),
        generation: i64::from_be_bytes(generation),
        mac,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secret() -> RefreshSecret {
        RefreshSecret::new(&[7u8; 32])
    }

    #[test]
    fn round_trips_and_is_deterministic() {
        let sid = SessionId::new_random();
        let t = secret().token(sid, 3);
        assert!(t.starts_with(PREFIX));
        assert_eq!(t.len(), TOKEN_LEN);
        assert_eq!(t, secret().token(sid, 3));
        assert_ne!(t, secret().token(sid, 4));
        let p = secret().parse(&t).expect("parses");
        assert_eq!((p.sid, p.generation), (sid, 3));
    }

    #[test]
    fn debug_omits_the_mac() {
        let p = secret()
            .parse(&secret().token(SessionId::new_random(), 2))
            .expect("parses");
        let shown = format!("{p:?}");
        assert!(!shown.contains("mac"), "{shown}");
    }

    #[test]
    fn another_secret_cannot_parse() {
        let t = secret().token(SessionId::new_random(), 0);
        assert_eq!(
            RefreshSecret::new(&[8u8; 32]).parse(&t),
            Err(RefreshParseError::Forged)
        );
    }

    #[test]
    fn a_flipped_character_fails_the_checksum() {
        let t = secret().token(SessionId::new_random(), 0);
        let mut chars: Vec<char> = t.chars().collect();
        let i = PREFIX.len() + 20;
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        let bad: String = chars.into_iter().collect();
        assert_eq!(secret().parse(&bad), Err(RefreshParseError::Malformed));
    }

    proptest! {
        #[test]
        fn arbitrary_input_never_panics(s in ".{0,120}") {
            let r = secret().parse(&s);
            prop_assert!(r.is_err());
        }

        #[test]
        fn prefixed_garbage_is_malformed(s in "[A-Za-z0-9_-]{82}") {
            let t = format!("{PREFIX}{s}");
            prop_assert_eq!(parse_unverified(&t), Err(RefreshParseError::Malformed));
        }

        #[test]
        fn every_token_round_trips(sid in any::<u128>(), generation in any::<i64>()) {
            let sid = SessionId(Uuid::from_u128(sid));
            let p = secret().parse(&secret().token(sid, generation)).expect("parses");
            prop_assert_eq!((p.sid, p.generation), (sid, generation));
        }

        #[test]
        fn any_changed_character_is_refused(
            sid in any::<u128>(),
            at in 0usize..TOKEN_LEN,
            with in proptest::char::range('!', '~'),
        ) {
            let good = secret().token(SessionId(Uuid::from_u128(sid)), 1);
            let mut chars: Vec<char> = good.chars().collect();
            prop_assume!(chars[at] != with);
            chars[at] = with;
            let bad: String = chars.into_iter().collect();
            prop_assert!(secret().parse(&bad).is_err());
        }

        #[test]
        fn truncated_or_extended_tokens_are_malformed(cut in 0usize..TOKEN_LEN, tail in "[A-Za-z0-9_-]{1,8}") {
            let good = secret().token(SessionId::new_random(), 0);
            prop_assert_eq!(parse_unverified(&good[..cut]), Err(RefreshParseError::Malformed));
            prop_assert_eq!(
                parse_unverified(&format!("{good}{tail}")),
                Err(RefreshParseError::Malformed)
            );
        }
    }
}
