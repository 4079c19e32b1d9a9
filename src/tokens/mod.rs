//! Token formats with no I/O: access-token and id_token claims, signing (RS256,
//! ES256 or EdDSA) and verification with the algorithm pinned to the key's,
//! and opaque refresh tokens.

pub mod claims;
pub mod csrf;
pub mod jwt;
pub mod keypair;
pub mod refresh;

/// What a successful grant hands back, before it is put on the wire. `Debug`
/// shows which tokens are present, never the tokens.
#[derive(Clone)]
pub struct TokenPair {
    /// The RFC 9068 JWT (`typ` `at+jwt`).
    pub access_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The opaque refresh token, when the grant issues one.
    pub refresh_token: Option<String>,
    /// Seconds until the refresh token can no longer be used (the session's
    /// remaining lifetime), when one is issued.
    pub refresh_expires_in: Option<i64>,
    /// The granted scope, exactly as the access token's `scope` claim
    /// carries it.
    pub scope: String,
    /// The OpenID Connect id_token, when the scope contains `openid`.
    pub id_token: Option<String>,
}

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPair")
            .field("access_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &redacted(&self.refresh_token))
            .field("refresh_expires_in", &self.refresh_expires_in)
            .field("scope", &self.scope)
            .field("id_token", &redacted(&self.id_token))
            .finish()
    }
}

/// `Some("[redacted]")` for a present secret, `None` for an absent one: what
/// `Debug` impls print in place of a token.
pub fn redacted<T>(secret: &Option<T>) -> Option<&'static str> {
    secret.as_ref().map(|_| "[redacted]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_tokens() {
        let pair = TokenPair {
            access_token: "eyJ.ACCESS.sig".into(),
            expires_in: 900,
            refresh_token: Some("lk_rt_REFRESH".into()),
            refresh_expires_in: Some(60),
            scope: "openid".into(),
            id_token: Some("eyJ.IDTOKEN.sig".into()),
        };
        let shown = format!("{pair:?}");
        for secret in ["ACCESS", "REFRESH", "IDTOKEN"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("openid"));
    }
}
