//! `DomainError`: what went wrong, in the domain's words. `http/error.rs`
//! alone decides what each becomes on the wire.

use super::dpop::DpopFailure;
use crate::keys::KeyError;
pub use crate::store::StoreError;
use crate::tokens::jwt::JwtError;

/// Why a refresh token was refused; each has its own `error_description`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshFailure {
    /// Malformed, forged, or of a session that no longer exists.
    Unknown,
    /// The session reached its absolute lifetime or idle timeout.
    Expired,
    /// The session was revoked (logout, revocation, password change, ...).
    Revoked,
    /// A used token was presented again: the session is now revoked.
    Reused,
    /// The token was issued to another client.
    WrongClient,
    /// The session is bound to a DPoP key and the request carried no proof,
    /// or one made with another key (RFC 9449 §5). Nothing was rotated.
    DpopKeyMismatch,
}

/// A failure of a domain operation.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The request is malformed in a way the message names.
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// `grant_type` is missing or unknown.
    #[error("unsupported grant type")]
    UnsupportedGrantType,
    /// The requested scope is not allowed.
    #[error("invalid scope")]
    InvalidScope,
    /// Client authentication failed (unknown client, wrong or missing secret).
    #[error("client authentication failed")]
    ClientAuthFailed,
    /// The client may not use this grant.
    #[error("unauthorized client: {0}")]
    UnauthorizedClient(&'static str),
    /// Wrong email, wrong password or disabled user: one answer for all three.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// An authorization code (or its PKCE verifier or redirect URI) was
    /// refused (RFC 6749 §5.2 `invalid_grant`).
    #[error("invalid grant: {0}")]
    InvalidGrant(&'static str),
    /// A refresh token was refused (RFC 6749 §5.2 `invalid_grant`); the
    /// `RefreshFailure` picks the `error_description`.
    #[error("refresh token refused: {0:?}")]
    RefreshRefused(RefreshFailure),
    /// A bearer token's format, key, signature, claims or lifetime did not
    /// check out.
    #[error("invalid token: {0}")]
    InvalidToken(#[from] JwtError),
    /// The bearer token's session is revoked or its user disabled.
    #[error("token revoked")]
    TokenRevoked,
    /// No bearer token was presented, which RFC 6750 §3.1 answers with a
    /// challenge but no error code.
    #[error("missing token")]
    MissingToken,
    /// A valid access token without the scope the resource needs.
    #[error("insufficient scope")]
    InsufficientScope(&'static str),
    /// A new user named an email that already has an account; the store's
    /// unique constraint decides a race between two sign-ups.
    #[error("email taken")]
    EmailTaken,
    /// The password breaks `passwords::check_policy`; the message names
    /// the rule and is shown to the user as it is.
    #[error("weak password: {0}")]
    WeakPassword(&'static str),
    /// The email is not a plausible address.
    #[error("invalid email")]
    InvalidEmail,
    /// Sign-up is turned off.
    #[error("sign-up disabled")]
    SignupDisabled,
    /// The thing asked for does not exist (or is not the caller's).
    #[error("not found")]
    NotFound,
    /// A cookie-authenticated request came from an origin the client did not
    /// register.
    #[error("origin not allowed")]
    OriginRefused,
    /// Too many failed logins; try again after the given seconds.
    #[error("throttled for {retry_after_secs} s")]
    Throttled {
        /// Seconds until a login may be tried again.
        retry_after_secs: i64,
    },
    /// The password was right but the address is unverified, and
    /// `signup.require_verified_email` is on.
    #[error("email unverified")]
    EmailUnverified,
    /// A verification or reset link is malformed, unknown, used, expired or
    /// superseded.
    #[error("email token refused")]
    EmailTokenRefused,
    /// Every password-hashing slot stayed busy for the queue timeout.
    #[error("password hashing queue full")]
    HashQueueFull,
    /// The token endpoint refused the request's DPoP proof (RFC 9449 §4.3,
    /// §8), or the client requires one.
    #[error("DPoP refused: {0:?}")]
    DpopRefused(DpopFailure),
    /// A protected resource refused the request's DPoP proof or its use of
    /// a DPoP-bound token (RFC 9449 §7).
    #[error("DPoP access refused: {0:?}")]
    DpopAccessRefused(DpopFailure),
    /// The store failed; `is_unavailable` tells an unreachable store apart.
    #[error("the store failed")]
    Store(#[from] StoreError),
    /// A key file unreadable or open to others, a key malformed or not
    /// unsealing, or no key active.
    #[error("the key ring failed")]
    Keys(#[from] KeyError),
    /// An invariant broke (signing failed, a blocking task died, ...).
    #[error("internal: {0}")]
    Internal(&'static str),
}

impl From<super::signing::SignError> for DomainError {
    fn from(e: super::signing::SignError) -> Self {
        match e {
            super::signing::SignError::Key => Self::Internal("signing failed"),
            super::signing::SignError::Pool => Self::Internal("signing pool unavailable"),
        }
    }
}

impl DomainError {
    /// Whether the failure is passing overload, worth trying again shortly:
    /// the store unreachable, or every password-hashing slot busy past the
    /// queue timeout.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Store(StoreError::Unavailable(_)) | Self::HashQueueFull
        )
    }
}
