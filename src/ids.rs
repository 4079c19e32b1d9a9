//! The identifiers every layer speaks of: users, clients, sessions, and
//! whether a client can keep a secret. The bottom module: it imports nothing
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
