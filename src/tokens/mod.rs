//! Token formats with no I/O: access-token and id_token claims, RS256 signing
//! and verification with the algorithm pinned, and opaque refresh tokens.

pub mod claims;
pub mod jwt;
pub mod refresh;

/// What a successful grant hands back, before it is put on the wire.
#[derive(Debug, Clone)]
pub struct TokenPair {
    /// The signed access token.
    pub access_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The opaque refresh token, when the grant issues one.
    pub refresh_token: Option<String>,
    /// Seconds until the refresh token can no longer be used (the session's
    /// remaining lifetime), when one is issued.
    pub refresh_expires_in: Option<i64>,
    /// The granted scope.
    pub scope: String,
    /// The OpenID Connect id_token, when the scope contains `openid`.
    pub id_token: Option<String>,
}
