//! The rules that make a JWS a valid latchkey access token, as pure functions
//! with no I/O and no key material. latchkey's own verification path (the
//! server's introspection, userinfo and account API) and this crate's
//! [`Verifier`](crate::Verifier) both call these, so the two cannot drift:
//! the size bound, the header's shape and `crit` refusal, the `typ` of
//! RFC 9068 §4, the `kid` bounds and the time checks with leeway.
//!
//! What is deliberately not here: key lookup and the algorithm each key is
//! pinned to (the server reads its key ring, a service reads the JWKS), and
//! the signature check itself (`jsonwebtoken` with that pinned algorithm).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Tokens longer than this are refused before any parsing: a latchkey access
/// token is under 1 KiB, and parsing attacker-sized input is work nobody
/// needs to do.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// Longest `kid` accepted. latchkey's `kid`s are RFC 7638 thumbprints (43
/// characters); the bound keeps a forged header from carrying a novel.
pub const MAX_KID_BYTES: usize = 128;

/// The JOSE `typ` of RFC 9068 access tokens.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Default clock-skew leeway for `exp`, `nbf` and `iat`, in seconds.
pub const DEFAULT_LEEWAY_SECS: i64 = 60;

/// A rule of this module that a token broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// Empty, too long, not three segments, a header that is not base64url
    /// JSON object, or a `crit` header.
    #[error("malformed token")]
    Malformed,
    /// The header's `typ` is not the one expected.
    #[error("wrong token type")]
    Type,
    /// No `kid`, or one outside the bounds.
    #[error("missing or unusable kid")]
    Kid,
    /// `exp` is past, beyond the leeway.
    #[error("token expired")]
    Expired,
    /// `nbf` or `iat` lies in the future, beyond the leeway.
    #[error("token not yet valid")]
    NotYetValid,
}

/// The members of a JOSE header that verification looks at.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct JoseHeader {
    /// The algorithm the token claims. Never used to choose how to verify:
    /// it must equal the algorithm the key is pinned to (RFC 8725 §3.1).
    #[serde(default)]
    pub alg: Option<String>,
    /// RFC 9068 §4: `at+jwt` for access tokens.
    #[serde(default)]
    pub typ: Option<String>,
    /// The key the token says signed it: untrusted until that key verifies
    /// the signature.
    #[serde(default)]
    pub kid: Option<String>,
    /// Present means extensions this verifier does not understand.
    #[serde(default)]
    pub crit: Option<serde::de::IgnoredAny>,
}

/// Checks the size and the three-segment shape, and decodes the header.
///
/// # Errors
/// [`RuleError::Malformed`] for anything that is not a compact JWS with a
/// JSON-object header within [`MAX_TOKEN_BYTES`].
pub fn decode_header(token: &str) -> Result<JoseHeader, RuleError> {
    if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
        return Err(RuleError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(RuleError::Malformed);
    };
    let raw = URL_SAFE_NO_PAD
        .decode(h)
        .map_err(|_| RuleError::Malformed)?;
    // Deserialising into the struct rejects arrays, strings and numbers, and
    // wrongly typed members, in one pass.
    serde_json::from_slice(&raw).map_err(|_| RuleError::Malformed)
}

/// RFC 9068 §4: `typ` must be `at+jwt`; the `application/` prefix is allowed
/// (RFC 7515 §4.1.9) and media types compare case-insensitively. Generalised
/// over `expected` so an id_token (`JWT`) is judged by the same rule.
pub fn is_typ(typ: Option<&str>, expected: &str) -> bool {
    let typ = typ.unwrap_or("");
    if typ.eq_ignore_ascii_case(expected) {
        return true;
    }
    typ.len() == expected.len() + 12
        && typ.is_char_boundary(12)
        && typ[..12].eq_ignore_ascii_case("application/")
        && typ[12..].eq_ignore_ascii_case(expected)
}

/// RFC 7515 §4.1.11: a `crit` header lists extensions the recipient must
/// understand; latchkey defines none, so any `crit` is refused.
///
/// # Errors
/// [`RuleError::Malformed`] when `crit` is present.
pub fn refuse_crit(header: &JoseHeader) -> Result<(), RuleError> {
    match header.crit {
        Some(_) => Err(RuleError::Malformed),
        None => Ok(()),
    }
}

/// The `kid`, if it is present and within bounds.
///
/// # Errors
/// [`RuleError::Kid`] when it is absent, empty or longer than
/// [`MAX_KID_BYTES`].
pub fn usable_kid(header: &JoseHeader) -> Result<&str, RuleError> {
    match header.kid.as_deref() {
        Some(kid) if !kid.is_empty() && kid.len() <= MAX_KID_BYTES => Ok(kid),
        _ => Err(RuleError::Kid),
    }
}

/// `exp` must not be past and `nbf`/`iat` not in the future, each with
/// `leeway_secs` of clock skew (RFC 7519 §4.1.4, §4.1.5; RFC 9068 §4 requires
/// `iat`). All values are seconds since the epoch; arithmetic saturates so a
/// forged `i64::MAX` cannot overflow.
///
/// # Errors
/// [`RuleError::Expired`] or [`RuleError::NotYetValid`].
pub fn check_times(
    exp: i64,
    nbf: Option<i64>,
    iat: i64,
    now: i64,
    leeway_secs: i64,
) -> Result<(), RuleError> {
    if exp.saturating_add(leeway_secs) < now {
        return Err(RuleError::Expired);
    }
    if nbf.is_some_and(|nbf| nbf.saturating_sub(leeway_secs) > now)
        || iat.saturating_sub(leeway_secs) > now
    {
        return Err(RuleError::NotYetValid);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(header: serde_json::Value) -> String {
        format!(
            "{}.e30.sig",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).expect("json"))
        )
    }

    #[test]
    fn typ_accepts_both_spellings_in_any_case() {
        for typ in [
            "at+jwt",
            "AT+JWT",
            "application/at+jwt",
            "Application/At+Jwt",
        ] {
            assert!(is_typ(Some(typ), ACCESS_TOKEN_TYP), "{typ}");
        }
        for typ in [
            "JWT",
            "",
            "application/jwt",
            "xapplication/at+jwt",
            "at+jwtx",
        ] {
            assert!(!is_typ(Some(typ), ACCESS_TOKEN_TYP), "{typ}");
        }
        assert!(!is_typ(None, ACCESS_TOKEN_TYP));
        // A multi-byte character where the prefix would end must not panic.
        assert!(!is_typ(Some("applicationé+jwt"), ACCESS_TOKEN_TYP));
    }

    #[test]
    fn header_shapes_are_checked_before_anything_else() {
        assert_eq!(decode_header("").err(), Some(RuleError::Malformed));
        assert_eq!(decode_header("a.b").err(), Some(RuleError::Malformed));
        assert_eq!(decode_header("a.b.c.d").err(), Some(RuleError::Malformed));
        assert_eq!(
            decode_header("!!!.e30.sig").err(),
            Some(RuleError::Malformed)
        );
        let array = format!("{}.e30.sig", URL_SAFE_NO_PAD.encode("[1]"));
        assert_eq!(decode_header(&array).err(), Some(RuleError::Malformed));
        let wrong_type = token(serde_json::json!({"alg": 1}));
        assert_eq!(decode_header(&wrong_type).err(), Some(RuleError::Malformed));
        assert_eq!(
            decode_header(&"x".repeat(MAX_TOKEN_BYTES + 1)).err(),
            Some(RuleError::Malformed)
        );
    }

    #[test]
    fn crit_and_kid_rules() {
        let h = decode_header(&token(serde_json::json!({"alg": "RS256", "crit": ["b64"]})))
            .expect("decodes");
        assert_eq!(refuse_crit(&h), Err(RuleError::Malformed));
        assert_eq!(usable_kid(&h), Err(RuleError::Kid));
        let h =
            decode_header(&token(serde_json::json!({"kid": "k".repeat(129)}))).expect("decodes");
        assert_eq!(usable_kid(&h), Err(RuleError::Kid));
        let h = decode_header(&token(serde_json::json!({"kid": "k1"}))).expect("decodes");
        assert_eq!(usable_kid(&h), Ok("k1"));
        assert_eq!(refuse_crit(&h), Ok(()));
    }

    #[test]
    fn times_honour_the_leeway_and_never_overflow() {
        let now = 1_000_000;
        assert_eq!(check_times(now - 60, None, now - 100, now, 60), Ok(()));
        assert_eq!(
            check_times(now - 61, None, now - 100, now, 60),
            Err(RuleError::Expired)
        );
        assert_eq!(
            check_times(now + 10, Some(now + 61), now, now, 60),
            Err(RuleError::NotYetValid)
        );
        assert_eq!(
            check_times(now + 10, None, now + 61, now, 60),
            Err(RuleError::NotYetValid)
        );
        assert_eq!(
            check_times(i64::MAX, Some(i64::MIN), i64::MIN, now, i64::MAX),
            Ok(())
        );
        assert_eq!(
            check_times(i64::MIN, None, 0, now, 60),
            Err(RuleError::Expired)
        );
    }
}
