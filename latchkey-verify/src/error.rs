//! Why a token was refused, and how that maps to RFC 6750: a malformed
//! `Authorization` header is `invalid_request` (400), a bad DPoP proof
//! `invalid_dpop_proof` (401), a missing scope `insufficient_scope` (403),
//! no obtainable key set `temporarily_unavailable` (503), and everything else
//! `invalid_token` (401). Messages are fixed sentences: they never echo the
//! token or any part of it.

use crate::rules::RuleError;

/// A refused token, or a verifier that cannot judge one right now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No `Authorization` header: answered with a bare `Bearer` challenge
    /// and no error code (RFC 6750 §3.1).
    #[error("no bearer token")]
    Missing,
    /// More than one `Authorization` header, or a scheme other than Bearer.
    #[error("malformed authorization header")]
    BadRequest,
    /// Empty, oversized, not a compact JWS, undecodable, or a `crit` header.
    #[error("malformed token")]
    Malformed,
    /// `typ` is not `at+jwt` (RFC 9068 §4): an id_token or another JWT.
    #[error("not an access token")]
    Type,
    /// The header's `alg` is not the algorithm the key is pinned to.
    #[error("algorithm not allowed for this key")]
    Algorithm,
    /// No usable `kid`, or one the issuer does not publish.
    #[error("unknown signing key")]
    UnknownKey,
    /// The signature does not verify with the published key.
    #[error("bad signature")]
    Signature,
    /// `iss` is not exactly the configured issuer.
    #[error("wrong issuer")]
    Issuer,
    /// `aud` does not contain the configured audience.
    #[error("wrong audience")]
    Audience,
    /// `exp` is past, beyond the leeway.
    #[error("token expired")]
    Expired,
    /// `nbf` or `iat` is in the future, beyond the leeway.
    #[error("token not yet valid")]
    NotYetValid,
    /// A required claim is missing or has the wrong type (`sub` not a UUID,
    /// no `client_id`, `scope` not a string, ...).
    #[error("missing or malformed claim")]
    Claims,
    /// Introspection says the token is not active (revoked, expired, or not
    /// meant for this caller).
    #[error("token not active")]
    Inactive,
    /// The token is valid but lacks the scope the route requires.
    #[error("insufficient scope")]
    InsufficientScope {
        /// Named in the challenge's `scope` attribute.
        required: &'static str,
    },
    /// No key set (or introspection answer) could be obtained and nothing
    /// usable is cached: the issuer is unreachable beyond the stale bound.
    #[error("issuer unavailable")]
    Unavailable,
    /// A DPoP-bound token (`cnf.jkt`) presented as a bearer token, or a
    /// token presented with the DPoP scheme that is not bound (RFC 9449
    /// §7.1, §7.2).
    #[error("token binding does not match the scheme")]
    DpopBinding,
    /// The DPoP proof is missing, malformed, replayed, for another request
    /// or made with another key than the token's (RFC 9449 §4.3, §7.1).
    #[error("invalid DPoP proof: {0}")]
    DpopProof(crate::dpop::ProofError),
}

impl Error {
    /// The RFC 6750 §3.1 error code (or `temporarily_unavailable`); `None`
    /// when no token was presented, where RFC 6750 §3.1 says the challenge
    /// carries no error code.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            Self::Missing => None,
            Self::BadRequest => Some("invalid_request"),
            Self::InsufficientScope { .. } => Some("insufficient_scope"),
            Self::Unavailable => Some("temporarily_unavailable"),
            Self::DpopProof(_) => Some("invalid_dpop_proof"),
            _ => Some("invalid_token"),
        }
    }

    /// The HTTP status RFC 6750 §3.1 gives this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::InsufficientScope { .. } => 403,
            Self::Unavailable => 503,
            _ => 401,
        }
    }

    /// A fixed sentence for `error_description`: what is wrong, never which
    /// part of the token or the key set made it so.
    pub fn description(&self) -> &'static str {
        match self {
            Self::Missing => "A bearer access token is required.",
            Self::BadRequest => "The Authorization header is malformed.",
            Self::InsufficientScope { .. } => "The access token lacks the required scope.",
            Self::Unavailable => "The token issuer cannot be reached; try again later.",
            Self::Expired => "The access token has expired.",
            Self::DpopBinding => {
                "The access token is DPoP-bound and needs the DPoP scheme with a proof, or is not DPoP-bound."
            }
            Self::DpopProof(_) => "The DPoP proof is invalid.",
            _ => "The access token is invalid.",
        }
    }

    /// The `WWW-Authenticate` challenge for this error (RFC 6750 §3; for
    /// DPoP refusals the `DPoP` scheme of RFC 9449 §7.1).
    pub fn challenge(&self) -> String {
        match (self, self.code()) {
            (Self::DpopBinding | Self::DpopProof(_), Some(code)) => format!(
                "DPoP algs=\"{}\", error=\"{code}\", error_description=\"{}\"",
                crate::dpop::SIGNING_ALGS.join(" "),
                self.description()
            ),
            (Self::InsufficientScope { required }, _) => format!(
                "Bearer error=\"insufficient_scope\", error_description=\"{}\", scope=\"{required}\"",
                self.description()
            ),
            (_, Some(code)) if self.status() != 503 => format!(
                "Bearer error=\"{code}\", error_description=\"{}\"",
                self.description()
            ),
            _ => "Bearer".to_owned(),
        }
    }

    /// The JSON body adapters answer with: `{"error", "error_description"}`,
    /// the shape latchkey itself uses (RFC 6749 §5.2).
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "error": self.code().unwrap_or("invalid_token"),
            "error_description": self.description(),
        })
    }
}

impl From<RuleError> for Error {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_rfc6750() {
        assert_eq!(Error::Missing.status(), 401);
        assert_eq!(Error::Missing.challenge(), "Bearer");
        assert_eq!(Error::Missing.body()["error"], "invalid_token");
        for e in [
            Error::Malformed,
            Error::Expired,
            Error::Algorithm,
            Error::Inactive,
        ] {
            assert_eq!(e.status(), 401);
            assert!(e.challenge().starts_with("Bearer error=\"invalid_token\""));
        }
        let scope = Error::InsufficientScope {
            required: "orders:read",
        };
        assert_eq!(scope.status(), 403);
        assert!(scope.challenge().contains("error=\"insufficient_scope\""));
        assert!(scope.challenge().contains("scope=\"orders:read\""));
        let proof = Error::DpopProof(crate::dpop::ProofError::Replayed);
        assert_eq!(proof.status(), 401);
        assert!(proof.challenge().starts_with("DPoP algs="));
        assert!(proof.challenge().contains("error=\"invalid_dpop_proof\""));
        assert!(Error::DpopBinding
            .challenge()
            .contains("error=\"invalid_token\""));
        assert_eq!(Error::BadRequest.status(), 400);
        assert_eq!(Error::Unavailable.status(), 503);
        assert_eq!(
            Error::Unavailable.body()["error"],
            "temporarily_unavailable"
        );
    }
}
