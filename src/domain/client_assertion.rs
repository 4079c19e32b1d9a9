//! `private_key_jwt` client authentication (RFC 7523 §2.2 and §3, OIDC Core
//! §9, RFC 7521 §4.2): a confidential client proves who it is with a short
//! JWT signed by a key whose public half it registered. The JOSE pieces
//! (header, algorithm pinning, signature) are the ones DPoP proofs use
//! (`latchkey_verify::jose`); the claims and the replay check are here.
//!
//! Every failure is the same `invalid_client` on the wire; the reason goes
//! to the log, with the client id and never the assertion.

use std::sync::Arc;

use chrono::DateTime;
use latchkey_verify::jose::{self, JoseError};
use latchkey_verify::thumbprint::sha256_base64url;
use serde_json::{Map, Value};

use super::client_keys::Jwk;
use super::clients::ClientCredentials;
use super::error::DomainError;
use super::types::{ClientId, ClientKind};
use super::Services;
use crate::store::{ClientRecord, KeySource};

/// `client_assertion_type` of a JWT assertion (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Assertions longer than this are refused before parsing (one signed with
/// a 4096-bit RSA key is under 2 KiB).
pub const MAX_ASSERTION_BYTES: usize = 8192;

/// The longest an assertion may live, `exp` minus `iat` (or minus now
/// without `iat`): a stolen assertion is worth at most this long, and the
/// replay store keeps its `jti` at most this long.
pub const MAX_LIFETIME_SECS: i64 = 300;

/// Longest `jti` accepted (it is stored as a digest; the bound keeps a
/// huge one from costing anything).
const MAX_JTI_BYTES: usize = 256;

/// Which check an assertion failed; all are `invalid_client` (the variants
/// exist for logs and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AssertionError {
    /// Not a compact JWS with JSON header and claims, too long, or a `crit`.
    #[error("malformed assertion")]
    Malformed,
    /// `alg` absent, `none`, HMAC, unsupported, or not the key's.
    #[error("algorithm not allowed")]
    Algorithm,
    /// No registered key has the `kid` (or, without one, fits `alg`).
    #[error("unknown key")]
    UnknownKey,
    /// No registered key verifies the signature.
    #[error("bad signature")]
    Signature,
    /// `iss` or `sub` is not the client id.
    #[error("iss or sub is not the client")]
    Subject,
    /// `aud` names none of latchkey's identifiers.
    #[error("wrong audience")]
    Audience,
    /// `exp` missing or past.
    #[error("expired")]
    Expired,
    /// Valid for longer than `MAX_LIFETIME_SECS`.
    #[error("lifetime too long")]
    TooLong,
    /// `nbf` or `iat` in the future.
    #[error("not yet valid")]
    NotYetValid,
    /// `jti` missing, empty or too long.
    #[error("jti missing")]
    Jti,
    /// The `jti` was used before.
    #[error("replayed")]
    Replayed,
}

impl From<JoseError> for AssertionError {
    fn from(e: JoseError) -> Self {
        match e {
            JoseError::Malformed => Self::Malformed,
            JoseError::Algorithm | JoseError::Key => Self::Algorithm,
            JoseError::Signature => Self::Signature,
        }
    }
}

/// What an assertion is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The client id `iss` and `sub` must be.
    pub client_id: &'a str,
    /// Any of these in `aud` will do.
    pub audiences: &'a [String],
    /// Seconds since the epoch.
    pub now: i64,
    /// Clock skew allowed, seconds.
    pub leeway: i64,
}

/// An assertion that passed every check but the replay check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// SHA-256 of the `jti`, base64url: what the replay store keeps.
    pub jti_digest: String,
    /// Until when the `jti` must be remembered: after that, `exp` fails.
    pub remember_until: i64,
}

/// The `sub` of an assertion, read before anything is verified: only to
/// find whose keys must verify it.
pub fn unverified_subject(assertion: &str) -> Option<String> {
    if assertion.len() > MAX_ASSERTION_BYTES {
        return None;
    }
    jose::decode_claims_unverified(assertion)
        .ok()?
        .get("sub")?
        .as_str()
        .map(str::to_owned)
}

/// Checks `assertion` against the client's `keys` and `expected`: RFC 7523
/// §3 items 1 to 9 but the replay check, which needs the store.
///
/// # Errors
/// The first check that fails.
pub fn check_assertion(
    assertion: &str,
    keys: &[Jwk],
    expected: &Expected<'_>,
) -> Result<Checked, AssertionError> {
    if assertion.is_empty() || assertion.len() > MAX_ASSERTION_BYTES {
        return Err(AssertionError::Malformed);
    }
    let header = jose::decode_header(assertion)?;
    if header.contains_key("crit") {
        return Err(AssertionError::Malformed);
    }
    // The algorithm comes from the header but must be one of the four
    // asymmetric ones and fit the key it is checked with: `none`, HS256
    // keyed with the public key's bytes, or RS256 against an EC key never
    // get that far.
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(jose::signing_algorithm)
        .ok_or(AssertionError::Algorithm)?;
    let claims = verify_with_keys(assertion, &header, keys, alg)?;
    check_claims(&claims, expected)
}

/// The claims, once a registered key verifies the signature: the key named
/// by `kid`, or without one, every key that fits `alg`.
fn verify_with_keys(
    assertion: &str,
    header: &Map<String, Value>,
    keys: &[Jwk],
    alg: jsonwebtoken::Algorithm,
) -> Result<Map<String, Value>, AssertionError> {
    let candidates: Vec<&Jwk> = match header.get("kid") {
        Some(Value::String(kid)) => {
            let named: Vec<&Jwk> = keys
                .iter()
                .filter(|k| k.get("kid").and_then(Value::as_str) == Some(kid.as_str()))
                .collect();
            if named.is_empty() {
                return Err(AssertionError::UnknownKey);
            }
            let fitting: Vec<&Jwk> = named.into_iter().filter(|k| jose::fits(k, alg)).collect();
            if fitting.is_empty() {
                return Err(AssertionError::Algorithm);
            }
            fitting
        }
        Some(_) => return Err(AssertionError::Malformed),
        None => keys.iter().filter(|k| jose::fits(k, alg)).collect(),
    };
    if candidates.is_empty() {
        return Err(AssertionError::UnknownKey);
    }
    let mut last = AssertionError::Signature;
    for jwk in candidates {
        let outcome = jose::public_key(jwk, alg)
            .and_then(|(_, key)| jose::verify_signature(assertion, &key, alg));
        match outcome {
            Ok(claims) => return Ok(claims),
            Err(JoseError::Malformed) => return Err(AssertionError::Malformed),
            Err(e) => last = e.into(),
        }
    }
    Err(last)
}

fn check_claims(
    claims: &Map<String, Value>,
    expected: &Expected<'_>,
) -> Result<Checked, AssertionError> {
    let string = |name: &str| claims.get(name).and_then(Value::as_str);
    // RFC 7523 §3 items 1 and 2; OIDC Core §9: both are the client id.
    if string("iss") != Some(expected.client_id) || string("sub") != Some(expected.client_id) {
        return Err(AssertionError::Subject);
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => expected.audiences.contains(a),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .any(|a| expected.audiences.iter().any(|e| e == a)),
        _ => false,
    };
    if !aud_ok {
        return Err(AssertionError::Audience);
    }
    let (now, leeway) = (expected.now, expected.leeway);
    let exp = jose::numeric_date(claims, "exp").ok_or(AssertionError::Expired)?;
    if now >= exp.saturating_add(leeway) {
        return Err(AssertionError::Expired);
    }
    let future = |name: &str| {
        jose::numeric_date(claims, name).is_some_and(|t| t > now.saturating_add(leeway))
    };
    if future("nbf") || future("iat") {
        return Err(AssertionError::NotYetValid);
    }
    let start = jose::numeric_date(claims, "iat").unwrap_or(now);
    if exp.saturating_sub(start) > MAX_LIFETIME_SECS {
        return Err(AssertionError::TooLong);
    }
    let jti = match string("jti") {
        Some(j) if !j.is_empty() && j.len() <= MAX_JTI_BYTES => j,
        _ => return Err(AssertionError::Jti),
    };
    Ok(Checked {
        jti_digest: sha256_base64url(jti.as_bytes()),
        remember_until: exp.saturating_add(leeway).saturating_add(1),
    })
}

impl Services {
    /// The identifiers an assertion's `aud` may name: the issuer (what
    /// current drafts recommend, since it names the server rather than one
    /// of its URLs) and the token endpoint (RFC 7523 §3, OIDC Core §9), at
    /// every endpoint that authenticates clients. The introspection and
    /// revocation URLs count too: all four name this server, and some
    /// libraries address an assertion to the endpoint it is sent to.
    pub fn assertion_audiences(&self) -> Vec<String> {
        let iss = &self.policy.issuer;
        vec![
            iss.clone(),
            format!("{iss}/oauth/token"),
            format!("{iss}/oauth/introspect"),
            format!("{iss}/oauth/revoke"),
        ]
    }

    /// Authenticates a client by its assertion: the client named by `sub`
    /// (and by `client_id`, if sent: the two must agree) must be registered
    /// for `private_key_jwt` and not disabled; the assertion must pass
    /// `check_assertion` with its keys, and its `jti` must be new. Used up
    /// only after the signature verified, so a forgery burns no `jti`.
    ///
    /// # Errors
    /// `ClientAuthFailed`; store failures.
    pub(crate) async fn authenticate_by_assertion(
        &self,
        creds: &ClientCredentials,
        assertion: &str,
    ) -> Result<Arc<ClientRecord>, DomainError> {
        let sub = unverified_subject(assertion).ok_or(DomainError::ClientAuthFailed)?;
        if creds.client_id.as_deref().is_some_and(|id| id != sub) {
            return Err(DomainError::ClientAuthFailed);
        }
        let id = ClientId::parse(&sub).ok_or(DomainError::ClientAuthFailed)?;
        let client = self
            .find_client(id)
            .await?
            .ok_or(DomainError::ClientAuthFailed)?;
        let (ClientKind::Confidential, Some(source)) = (client.kind, &client.key_source) else {
            return Err(DomainError::ClientAuthFailed);
        };
        let refuse = |e: AssertionError| {
            tracing::info!(client.id = %id, reason = %e, "client assertion refused");
            DomainError::ClientAuthFailed
        };
        let checked = self
            .check_client_assertion(&client, source, assertion)
            .await
            .map_err(refuse)?;
        let until = DateTime::from_timestamp(checked.remember_until, 0)
            .ok_or_else(|| refuse(AssertionError::Expired))?;
        let namespace = format!("client_assertion:{id}");
        if !self
            .store
            .remember_jti(&namespace, &checked.jti_digest, until)
            .await?
        {
            return Err(refuse(AssertionError::Replayed));
        }
        Ok(client)
    }

    /// `check_assertion` with the client's keys; an unknown `kid` at a
    /// `jwks_uri` fetches it once more (the client may have rotated).
    async fn check_client_assertion(
        &self,
        client: &ClientRecord,
        source: &KeySource,
        assertion: &str,
    ) -> Result<Checked, AssertionError> {
        let audiences = self.assertion_audiences();
        let client_id = client.id.to_string();
        let expected = Expected {
            client_id: &client_id,
            audiences: &audiences,
            now: self.now().timestamp(),
            leeway: self.policy.tokens.leeway.num_seconds(),
        };
        let keys = self.client_public_keys(source, false).await;
        match check_assertion(assertion, &keys, &expected) {
            Err(AssertionError::UnknownKey) if matches!(source, KeySource::JwksUri(_)) => {
                let keys = self.client_public_keys(source, true).await;
                check_assertion(assertion, &keys, &expected)
            }
            other => other,
        }
    }
}
