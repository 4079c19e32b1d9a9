//! The identifiers every layer speaks of: users, clients, sessions, whether
//! a client can keep a secret, and scopes. The bottom module: it imports nothing
//! of latchkey's, so the store, the token code and the domain may all use it.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh random (v4) identifier.
            pub fn new_random() -> Self {
                Self(Uuid::new_v4())
            }

            /// Parses the hyphenated form; `None` for anything else.
            pub fn parse(s: &str) -> Option<Self> {
                Uuid::try_parse(s).ok().map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
    };
}

uuid_newtype!(
    /// A user's opaque identifier: the `sub` of their tokens.
    UserId
);
uuid_newtype!(
    /// A registered client's identifier (`client_id`).
    ClientId
);
uuid_newtype!(
    /// A session (`sid`): one login and every refresh token that follows it.
    SessionId
);

/// Whether a client can keep a secret (RFC 6749 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// Mobile and browser apps: identified, not authenticated.
    Public,
    /// Servers that authenticate with a client secret or a private key
    /// (`private_key_jwt`).
    Confidential,
}

impl ClientKind {
    /// The stored and printed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Confidential => "confidential",
        }
    }

    /// The inverse of `as_str`; `None` for any other name, which the store
    /// reads as a corrupt row.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "public" => Some(Self::Public),
            "confidential" => Some(Self::Confidential),
            _ => None,
        }
    }
}

/// A set of scope tokens (RFC 6749 §3.3), kept in the order first given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope(Vec<String>);

impl Scope {
    /// Parses a space-delimited scope string.
    ///
    /// # Errors
    /// `None` when a token holds a character outside RFC 6749's NQCHAR.
    pub fn parse(raw: &str) -> Option<Self> {
        let mut tokens: Vec<String> = Vec::new();
        for t in raw.split(' ').filter(|t| !t.is_empty()) {
            // NQCHAR = %x21 / %x23-5B / %x5D-7E
            let valid = t
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
            if !valid || t.len() > 128 {
                return None;
            }
            if !tokens.iter().any(|x| x == t) {
                tokens.push(t.to_owned());
            }
        }
        Some(Self(tokens))
    }

    /// A scope made of the given tokens (already validated).
    pub fn from_tokens(tokens: Vec<String>) -> Self {
        Self(tokens)
    }

    /// Whether `token` is in the set.
    pub fn has(&self, token: &str) -> bool {
        self.0.iter().any(|t| t == token)
    }

    /// Whether every token of `self` is in `other`.
    pub fn is_subset_of(&self, other: &Scope) -> bool {
        self.0.iter().all(|t| other.has(t))
    }

    /// Whether there is no token.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The tokens.
    pub fn tokens(&self) -> &[String] {
        &self.0
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_parses_dedupes_and_checks_subsets() {
        let s = Scope::parse("openid email openid").expect("valid");
        assert_eq!(s.to_string(), "openid email");
        let wide = Scope::parse("openid email profile").expect("valid");
        assert!(s.is_subset_of(&wide));
        assert!(!wide.is_subset_of(&s));
        assert!(Scope::parse("bad\"quote").is_none());
    }
}
