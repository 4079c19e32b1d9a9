//! The claims of a verified access token, typed: what a handler needs
//! without parsing JSON, plus the raw claims for anything custom.

use std::collections::BTreeSet;

use uuid::Uuid;

use crate::Error;

/// The granted scopes, as a set (RFC 6749 §3.3: space-delimited, order and
/// repetition carry no meaning).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(BTreeSet<String>);

impl Scopes {
    /// Parses a space-delimited `scope` value.
    pub fn parse(s: &str) -> Self {
        Self(
            s.split(' ')
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }

    /// Whether `scope` was granted. Exact, case-sensitive comparison
    /// (RFC 6749 §3.3).
    pub fn has(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }

    /// The scopes, in a stable order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

/// A verified latchkey access token (RFC 9068 §2.2).
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    /// The user's id, or the client's id for a client_credentials token.
    pub sub: Uuid,
    /// The client the token was issued to.
    pub client_id: String,
    /// The `scope` claim as a set; empty when the token carries none.
    pub scope: Scopes,
    /// The session, for tokens issued to a user; `None` for
    /// client_credentials tokens.
    pub sid: Option<String>,
    /// The token's unique id.
    pub jti: String,
    /// Expiry, in seconds since the epoch.
    pub exp: i64,
    /// Issue time, in seconds since the epoch.
    pub iat: i64,
    /// Every claim as it was signed, for custom claims.
    pub raw: serde_json::Map<String, serde_json::Value>,
}

impl Claims {
    /// Builds the typed view of a claims object whose signature, issuer and
    /// audience have already been checked.
    ///
    /// # Errors
    /// [`Error::Claims`] when a required claim is absent or mistyped.
    pub(crate) fn from_raw(raw: serde_json::Map<String, serde_json::Value>) -> Result<Self, Error> {
        let str_claim = |name: &str| raw.get(name).and_then(|v| v.as_str());
        let int_claim = |name: &str| raw.get(name).and_then(|v| v.as_i64());
        let sub = str_claim("sub")
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or(Error::Claims)?;
        let client_id = str_claim("client_id").ok_or(Error::Claims)?.to_owned();
        let scope = Scopes::parse(str_claim("scope").unwrap_or(""));
        let sid = match raw.get("sid") {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(v.as_str().ok_or(Error::Claims)?.to_owned()),
        };
        let jti = str_claim("jti").ok_or(Error::Claims)?.to_owned();
        let exp = int_claim("exp").ok_or(Error::Claims)?;
        let iat = int_claim("iat").ok_or(Error::Claims)?;
        Ok(Self {
            sub,
            client_id,
            scope,
            sid,
            jti,
            exp,
            iat,
            raw,
        })
    }

    /// The thumbprint of the DPoP key the token is bound to (`cnf.jkt`,
    /// RFC 9449 §6.1), if it is bound.
    pub fn dpop_jkt(&self) -> Option<&str> {
        self.raw.get("cnf")?.get("jkt")?.as_str()
    }

    /// Whether `scope` was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.has(scope)
    }

    /// Succeeds when `scope` was granted.
    ///
    /// # Errors
    /// [`Error::InsufficientScope`] otherwise (403, RFC 6750 §3.1).
    pub fn require_scope(&self, scope: &'static str) -> Result<(), Error> {
        if self.scope.has(scope) {
            Ok(())
        } else {
            Err(Error::InsufficientScope { required: scope })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_a_set_compared_exactly() {
        let s = Scopes::parse("orders:read  profile orders:read");
        assert!(s.has("orders:read"));
        assert!(s.has("profile"));
        assert!(!s.has("orders"));
        assert!(!s.has("Orders:read"));
        assert!(!s.has(""));
        assert_eq!(s.iter().collect::<Vec<_>>(), ["orders:read", "profile"]);
    }

    #[test]
    fn claims_need_a_uuid_sub_and_the_latchkey_members() {
        let good = serde_json::json!({
            "sub": "0b6e6a1e-6f0e-4f7a-9c1e-2a8f6f3f4f55", "client_id": "c",
            "scope": "a b", "jti": "j", "exp": 2, "iat": 1, "sid": "s", "tenant": "t"
        });
        let map = good.as_object().expect("object").clone();
        let claims = Claims::from_raw(map.clone()).expect("valid");
        assert_eq!(claims.sid.as_deref(), Some("s"));
        assert_eq!(claims.raw["tenant"], "t");
        assert!(claims.require_scope("a").is_ok());
        assert_eq!(
            claims.require_scope("c"),
            Err(Error::InsufficientScope { required: "c" })
        );
        for (name, bad) in [
            ("sub", serde_json::json!("ada@example.com")),
            ("client_id", serde_json::json!(7)),
            ("sid", serde_json::json!(1)),
            ("exp", serde_json::json!("soon")),
        ] {
            let mut m = map.clone();
            m.insert(name.into(), bad);
            assert_eq!(Claims::from_raw(m), Err(Error::Claims), "{name}");
        }
    }
}
