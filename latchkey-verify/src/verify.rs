//! Verification of one token against a key set, with no I/O: the rules of
//! [`crate::rules`], the key's pinned algorithm, the signature, `iss`, `aud`
//! and the time claims. [`Verifier`](crate::Verifier) feeds it keys from the
//! JWKS cache; tests and benches can feed it a [`KeySet`] directly.

use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};

use crate::keys::{alg_name, KeySet, PinnedKey};
use crate::rules::{self, ACCESS_TOKEN_TYP};
use crate::{Claims, Error};

/// What a token must satisfy besides its signature: the issuer, the
/// audience and the clock-skew leeway. Built once; verifying allocates no
/// validation state per token.
#[derive(Debug, Clone)]
pub struct Expectations {
    leeway_secs: i64,
    rs256: Validation,
    es256: Validation,
    eddsa: Validation,
}

impl Expectations {
    /// Tokens must carry `iss` exactly `issuer` and an `aud` containing
    /// `audience`, and pass the time checks with `leeway`.
    pub fn new(issuer: &str, audience: &str, leeway: Duration) -> Self {
        let validation = |alg: Algorithm| {
            let mut v = Validation::new(alg);
            v.algorithms = vec![alg];
            v.set_issuer(&[issuer]);
            v.set_audience(&[audience]);
            // Times are checked by the shared rules with our own clock.
            v.validate_exp = false;
            v.validate_nbf = false;
            v.leeway = 0;
            v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            v
        };
        Self {
            leeway_secs: i64::try_from(leeway.as_secs()).unwrap_or(i64::MAX),
            rs256: validation(Algorithm::RS256),
            es256: validation(Algorithm::ES256),
            eddsa: validation(Algorithm::EdDSA),
        }
    }

    /// The clock-skew leeway, in seconds.
    pub fn leeway_secs(&self) -> i64 {
        self.leeway_secs
    }

    fn validation(&self, alg: Algorithm) -> &Validation {
        match alg {
            Algorithm::ES256 => &self.es256,
            Algorithm::EdDSA => &self.eddsa,
            _ => &self.rs256,
        }
    }
}

/// The header checks that need no key: size, shape, `typ`, `crit` and a
/// usable `kid`. Returns the `kid` and the algorithm the header names.
///
/// # Errors
/// The first rule the token breaks.
pub fn precheck(token: &str) -> Result<(String, Option<String>), Error> {
    let header = rules::decode_header(token)?;
    if !rules::is_typ(header.typ.as_deref(), ACCESS_TOKEN_TYP) {
        return Err(Error::Type);
    }
    rules::refuse_crit(&header)?;
    let kid = rules::usable_kid(&header)?.to_owned();
    Ok((kid, header.alg))
}

/// Verifies `token` with `key`, whose `kid` the token named: the header's
/// `alg` must be the key's pinned algorithm, then signature, `iss`, `aud`,
/// times against `now` (seconds since the epoch), and the typed claims.
///
/// # Errors
/// The first check that fails.
pub fn verify_with_key(
    token: &str,
    header_alg: Option<&str>,
    key: &PinnedKey,
    expect: &Expectations,
    now: i64,
) -> Result<Claims, Error> {
    if header_alg != Some(alg_name(key.alg)) {
        return Err(Error::Algorithm);
    }
    let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
        token,
        &key.decoding,
        expect.validation(key.alg),
    )
    .map_err(|e| match e.kind() {
        ErrorKind::InvalidSignature => Error::Signature,
        ErrorKind::InvalidIssuer => Error::Issuer,
        ErrorKind::InvalidAudience => Error::Audience,
        ErrorKind::MissingRequiredClaim(_) => Error::Claims,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => Error::Algorithm,
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => Error::Malformed,
        _ => Error::Signature,
    })?;
    let claims = Claims::from_raw(data.claims)?;
    let nbf = match claims.raw.get("nbf") {
        None => None,
        Some(v) => Some(v.as_i64().ok_or(Error::Claims)?),
    };
    rules::check_times(claims.exp, nbf, claims.iat, now, expect.leeway_secs)?;
    Ok(claims)
}

/// Verifies `token` against a key set held in memory.
///
/// # Errors
/// [`Error::UnknownKey`] when the set has no key for its `kid`, otherwise
/// the first check that fails.
pub fn verify_with_set(
    token: &str,
    keys: &KeySet,
    expect: &Expectations,
    now: i64,
) -> Result<Claims, Error> {
    let (kid, alg) = precheck(token)?;
    let key = keys.get(&kid).ok_or(Error::UnknownKey)?;
    verify_with_key(token, alg.as_deref(), key, expect, now)
}
