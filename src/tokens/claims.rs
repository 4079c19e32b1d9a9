//! The claims latchkey signs: RFC 9068 access tokens and OpenID Connect
//! id_tokens. Access tokens carry no personal data: `sub` is an opaque UUID.

use serde::{Deserialize, Serialize};

/// RFC 9068 access-token claims. Exactly these, so tokens stay small and free
/// of personal data.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    /// The configured issuer URL (`server.issuer`); verification accepts
    /// no other.
    pub iss: String,
    /// The user's UUID, or the client id for client_credentials.
    pub sub: String,
    /// The client's `audience`, or `tokens.default_audience` when it has
    /// none.
    pub aud: String,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Issue time (seconds since the epoch).
    pub iat: i64,
    /// A fresh random (v4) UUID per token.
    pub jti: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// Space-delimited scope.
    pub scope: String,
    /// Session id; absent for client_credentials.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sid: Option<String>,
    /// Not-before; latchkey never sets it, but verification honours it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub nbf: Option<i64>,
    /// RFC 9449 §6.1: the DPoP key the token is bound to; absent for bearer
    /// tokens.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cnf: Option<Confirmation>,
}

/// RFC 7800 `cnf` with RFC 9449's `jkt` member: the RFC 7638 thumbprint of
/// the key a DPoP-bound token must be presented with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Confirmation {
    /// The key's thumbprint, base64url.
    pub jkt: String,
}

/// OpenID Connect Core §2 id_token claims.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdClaims {
    /// The configured issuer URL, as in access tokens.
    pub iss: String,
    /// The user's UUID.
    pub sub: String,
    /// The client id.
    pub aud: String,
    /// Expiry (seconds since the epoch): an id_token lives as long as an
    /// access token.
    pub exp: i64,
    /// Issue time (seconds since the epoch).
    pub iat: i64,
    /// When the user entered their password.
    pub auth_time: i64,
    /// The session, as in the `sid` of the access token issued with it.
    pub sid: String,
    /// With scope `email`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub email: Option<String>,
    /// With scope `email`: whether the user proved they receive mail at
    /// `email` (`UserRecord::email_verified`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub email_verified: Option<bool>,
    /// The authorization request's `nonce` (OIDC Core §3.1.3.6), on the
    /// id_token of a code redemption.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub nonce: Option<String>,
    /// Left half of SHA-256 of the access token, base64url (OIDC Core
    /// §3.1.3.8), when issued with one from the authorization code flow.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub at_hash: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_claims_omit_absent_sid_and_carry_no_email() {
        let c = AccessClaims {
            iss: "https://auth.example".into(),
            sub: "0b6e6a1e-6f0e-4f7a-9c1e-2a8f6f3f4f55".into(),
            aud: "api".into(),
            exp: 1_000_900,
            iat: 1_000_000,
            jti: "7d0f7a4c-1d43-4a8e-8a4a-8b1f3c0b2c1d".into(),
            client_id: "c".into(),
            scope: "read".into(),
            sid: None,
            nbf: None,
            cnf: None,
        };
        let json = serde_json::to_value(&c).expect("serialises");
        let mut keys: Vec<&str> = json
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "aud",
                "client_id",
                "exp",
                "iat",
                "iss",
                "jti",
                "scope",
                "sub"
            ]
        );
    }
}
