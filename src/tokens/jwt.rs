//! JWS: signing with a key pair parsed once and cached (the hot path of every
//! grant), and verification with the algorithm pinned to the verifying key's
//! own (RS256, ES256 or EdDSA) whatever the token's header claims. Time checks
//! take `now` from the caller, so the injected clock governs them. The rules that do not depend on our keys
//! (size, header shape, `typ`, `crit`, `kid`, times) come from
//! `latchkey_verify::rules`, the same code services verify our tokens with.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{DecodingKey, Validation};
use latchkey_verify::rules::{self, RuleError};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use super::keypair::{Algorithm, KeyPair};

/// Tokens longer than this are refused before any parsing (the rule lives in
/// `latchkey_verify::rules`, shared with the services that verify our tokens).
pub const MAX_TOKEN_BYTES: usize = rules::MAX_TOKEN_BYTES;

/// The JOSE `typ` of RFC 9068 access tokens.
pub const ACCESS_TOKEN_TYP: &str = rules::ACCESS_TOKEN_TYP;
/// The JOSE `typ` of id_tokens.
pub const ID_TOKEN_TYP: &str = "JWT";

/// Why a token failed verification. Callers collapse these into one wire
/// answer; the variants exist for logs, metrics and tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Empty, too long, not three segments, or not base64url/JSON.
    #[error("malformed token")]
    Malformed,
    /// The header names no algorithm, or one latchkey does not sign with
    /// (RS256, ES256 and EdDSA are the only ones).
    #[error("algorithm not allowed")]
    Algorithm,
    /// The header's `typ` is not the one expected.
    #[error("wrong token type")]
    Type,
    /// No `kid`, or a `kid` that names no published key.
    #[error("unknown key")]
    UnknownKey,
    /// The signature, issuer or audience did not check out.
    #[error("invalid token")]
    Invalid,
    /// `exp` is past, beyond the leeway.
    #[error("token expired")]
    Expired,
    /// `nbf` or `iat` lies in the future, beyond the leeway.
    #[error("token not yet valid")]
    NotYetValid,
}

impl From<RuleError> for JwtError {
    fn from(e: RuleError) -> Self {
        match e {
            RuleError::Malformed => Self::Malformed,
            RuleError::Type => Self::Type,
            RuleError::Kid => Self::UnknownKey,
            RuleError::Expired => Self::Expired,
            RuleError::NotYetValid => Self::NotYetValid,
        }
    }
}

/// Signs `claims` as a compact JWS with the key's own `alg`, the given `typ`
/// and `kid`.
///
/// # Errors
/// Only if the key pair cannot sign, which a loaded key never fails to do.
pub fn sign<T: Serialize>(
    pair: &KeyPair,
    kid: &str,
    typ: &str,
    claims: &T,
) -> Result<String, aws_lc_rs::error::Unspecified> {
    #[derive(Serialize)]
    struct Header<'a> {
        alg: &'a str,
        typ: &'a str,
        kid: &'a str,
    }
    let header = Header {
        alg: pair.algorithm().name(),
        typ,
        kid,
    };
    let header = serde_json::to_vec(&header).map_err(|_| aws_lc_rs::error::Unspecified)?;
    let payload = serde_json::to_vec(claims).map_err(|_| aws_lc_rs::error::Unspecified)?;
    let mut out = String::with_capacity(1024);
    URL_SAFE_NO_PAD.encode_string(header, &mut out);
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut out);
    let sig = pair.sign(out.as_bytes())?;
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(sig, &mut out);
    Ok(out)
}

/// The parts of a token's header that verification needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeekedHeader {
    /// The `alg`: one latchkey signs with. The key `kid` names must have
    /// this very algorithm, or the token is refused.
    pub alg: Algorithm,
    /// The `kid`, which must name a published key.
    pub kid: String,
}

/// Checks the shape and header of a token before any key lookup: size, three
/// segments, `alg` one that latchkey signs with (the caller then requires it
/// to be the algorithm of the key `kid` names: RFC 8725 §3.1, never trust the
/// header's choice), the expected `typ` (RFC 9068 §4: an id_token is not an
/// access token), and a `kid`.
///
/// # Errors
/// The first rule the token breaks.
pub fn peek_header(token: &str, expected_typ: &str) -> Result<PeekedHeader, JwtError> {
    let header = rules::decode_header(token)?;
    let Some(alg) = header.alg.as_deref().and_then(Algorithm::from_name) else {
        return Err(JwtError::Algorithm);
    };
    if !rules::is_typ(header.typ.as_deref(), expected_typ) {
        return Err(JwtError::Type);
    }
    rules::refuse_crit(&header)?;
    let kid = rules::usable_kid(&header)?;
    Ok(PeekedHeader {
        alg,
        kid: kid.to_owned(),
    })
}

/// Time claims every verified token is checked against.
pub trait TimeClaims {
    /// `exp`.
    fn exp(&self) -> i64;
    /// `iat`.
    fn iat(&self) -> i64;
    /// `nbf`, if present.
    fn nbf(&self) -> Option<i64>;
}

impl TimeClaims for super::claims::AccessClaims {
    fn exp(&self) -> i64 {
        self.exp
    }
    fn iat(&self) -> i64 {
        self.iat
    }
    fn nbf(&self) -> Option<i64> {
        self.nbf
    }
}

impl TimeClaims for super::claims::IdClaims {
    fn exp(&self) -> i64 {
        self.exp
    }
    fn iat(&self) -> i64 {
        self.iat
    }
    fn nbf(&self) -> Option<i64> {
        None
    }
}

/// Verifies signature (with `alg` only: the verifying key's own algorithm),
/// `iss`, and `aud` when `audiences` is given (otherwise the caller checks
/// it), then `exp`, `nbf` and `iat` against `now` with `leeway_secs`.
///
/// # Errors
/// `Invalid` for a bad signature, issuer or audience; `Expired`,
/// `NotYetValid` for time failures; `Malformed` for undecodable claims.
pub fn verify<T: DeserializeOwned + TimeClaims>(
    token: &str,
    key: &DecodingKey,
    alg: Algorithm,
    issuer: &str,
    audiences: Option<&[&str]>,
    now: i64,
    leeway_secs: i64,
) -> Result<T, JwtError> {
    let mut v = Validation::new(alg.to_jsonwebtoken());
    v.algorithms = vec![alg.to_jsonwebtoken()];
    v.set_issuer(&[issuer]);
    match audiences {
        Some(a) => v.set_audience(a),
        None => v.validate_aud = false,
    }
    // Time is checked below against the injected clock, not the library's.
    v.validate_exp = false;
    v.validate_nbf = false;
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<T>(token, key, &v).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::InvalidToken | K::Base64(_) | K::Json(_) | K::Utf8(_) => JwtError::Malformed,
            _ => JwtError::Invalid,
        }
    })?;
    let claims = data.claims;
    rules::check_times(claims.exp(), claims.nbf(), claims.iat(), now, leeway_secs)?;
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(v: serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&v).expect("json"))
    }

    #[test]
    fn peek_rejects_other_algorithms() {
        for alg in ["none", "HS256", "RS512", "ES384", "PS256", "es256", "EDDSA"] {
            let t = format!(
                "{}.e30.sig",
                encode(serde_json::json!({"alg": alg, "typ": "at+jwt", "kid": "k"}))
            );
            assert_eq!(
                peek_header(&t, ACCESS_TOKEN_TYP),
                Err(JwtError::Algorithm),
                "{alg}"
            );
        }
    }

    #[test]
    fn peek_requires_typ_and_kid() {
        let id = format!(
            "{}.e30.sig",
            encode(serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "k"}))
        );
        assert_eq!(peek_header(&id, ACCESS_TOKEN_TYP), Err(JwtError::Type));
        let nokid = format!(
            "{}.e30.sig",
            encode(serde_json::json!({"alg": "RS256", "typ": "at+jwt"}))
        );
        assert_eq!(
            peek_header(&nokid, ACCESS_TOKEN_TYP),
            Err(JwtError::UnknownKey)
        );
        let ok = format!(
            "{}.e30.sig",
            encode(serde_json::json!({"alg": "RS256", "typ": "at+jwt", "kid": "k"}))
        );
        assert_eq!(
            peek_header(&ok, ACCESS_TOKEN_TYP),
            Ok(PeekedHeader {
                alg: Algorithm::Rs256,
                kid: "k".into()
            })
        );
    }

    /// What `peek_header` must answer for a well-formed header object, in
    /// the order of its rules.
    fn expected(
        alg: &Option<String>,
        typ: &Option<String>,
        kid: &Option<String>,
        crit: bool,
    ) -> Result<PeekedHeader, JwtError> {
        let Some(alg) = alg.as_deref().and_then(Algorithm::from_name) else {
            return Err(JwtError::Algorithm);
        };
        let typ = typ.as_deref().unwrap_or("");
        if !typ.eq_ignore_ascii_case("at+jwt") && !typ.eq_ignore_ascii_case("application/at+jwt") {
            return Err(JwtError::Type);
        }
        if crit {
            return Err(JwtError::Malformed);
        }
        match kid {
            Some(k) if !k.is_empty() && k.len() <= 128 => Ok(PeekedHeader {
                alg,
                kid: k.clone(),
            }),
            _ => Err(JwtError::UnknownKey),
        }
    }

    fn maybe(values: &'static [&'static str]) -> impl Strategy<Value = Option<String>> {
        proptest::option::of(prop_oneof![
            proptest::sample::select(values).prop_map(str::to_owned),
            ".{0,12}",
        ])
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_strings_never_panic(s in ".{0,300}", typ in "(at\\+jwt|JWT|)") {
            let r = peek_header(&s, &typ);
            // Anything accepted has a kid and at least three segments.
            if let Ok(h) = r {
                prop_assert!(!h.kid.is_empty());
                prop_assert_eq!(s.split('.').count(), 3);
            }
        }

        #[test]
        fn arbitrary_header_bytes_never_panic(header in proptest::collection::vec(any::<u8>(), 0..200)) {
            let token = format!("{}.e30.sig", URL_SAFE_NO_PAD.encode(&header));
            let _ = peek_header(&token, ACCESS_TOKEN_TYP);
        }

        #[test]
        fn header_objects_are_judged_by_the_rules(
            alg in maybe(&["RS256", "ES256", "EdDSA", "none", "HS256", "rs256", "RS512", "PS256"]),
            typ in maybe(&["at+jwt", "AT+JWT", "application/at+jwt", "JWT", "jwt"]),
            kid in maybe(&["k1", ""]),
            crit in any::<bool>(),
            payload in "[A-Za-z0-9_-]{0,40}",
            signature in "[A-Za-z0-9_-]{0,40}",
        ) {
            let mut header = serde_json::Map::new();
            for (name, value) in [("alg", &alg), ("typ", &typ), ("kid", &kid)] {
                if let Some(v) = value {
                    header.insert(name.into(), v.clone().into());
                }
            }
            if crit {
                header.insert("crit".into(), serde_json::json!(["exp"]));
            }
            let token = format!(
                "{}.{payload}.{signature}",
                encode(serde_json::Value::Object(header))
            );
            prop_assert_eq!(
                peek_header(&token, ACCESS_TOKEN_TYP),
                expected(&alg, &typ, &kid, crit)
            );
        }

        #[test]
        fn oversized_tokens_are_malformed(extra in 1usize..2000) {
            let h = encode(serde_json::json!({"alg": "RS256", "typ": "at+jwt", "kid": "k"}));
            let padding = "A".repeat(MAX_TOKEN_BYTES + extra - h.len() - 6);
            let token = format!("{h}.{padding}.sig1");
            prop_assert!(token.len() > MAX_TOKEN_BYTES);
            prop_assert_eq!(peek_header(&token, ACCESS_TOKEN_TYP), Err(JwtError::Malformed));
        }
    }

    #[test]
    fn peek_rejects_bad_shapes() {
        let h = encode(serde_json::json!({"alg": "RS256", "typ": "at+jwt", "kid": "k"}));
        for t in [
            String::new(),
            "a.b".into(),
            format!("{h}.e30.s.x"),
            "!!!.e30.sig".into(),
            format!("{}.e30.sig", URL_SAFE_NO_PAD.encode("not json")),
            "x".repeat(MAX_TOKEN_BYTES + 1),
        ] {
            assert_eq!(
                peek_header(&t, ACCESS_TOKEN_TYP),
                Err(JwtError::Malformed),
                "{t:.40}"
            );
        }
    }
}
