//! Newtypes for identifiers and validated values. Raw input becomes one of
//! these at the edge (parse, don't validate), so the rules below hold wherever
//! the value travels.

use std::fmt;

use serde::{Deserialize, Serialize};

pub use crate::ids::{ClientId, ClientKind, Scope, SessionId, UserId};

/// The longest email accepted (RFC 5321's path limit).
pub const MAX_EMAIL_BYTES: usize = 254;

/// A normalised email address: trimmed and lower-cased, so that sign-up and
/// login agree on what "the same address" means.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Parses and normalises an address.
    ///
    /// # Errors
    /// Returns `None` for anything that is not a plausible address.
    pub fn parse(raw: &str) -> Option<Self> {
        let s = raw.trim().to_lowercase();
        if s.is_empty() || s.len() > MAX_EMAIL_BYTES {
            return None;
        }
        let (local, domain) = s.rsplit_once('@')?;
        let bad_char = |c: char| c.is_whitespace() || c.is_control();
        if local.is_empty()
            || local.len() > 64
            || local.contains('@')
            || s.chars().any(bad_char)
            || domain.len() < 3
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
            || !domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '.')
        {
            return None;
        }
        Some(Self(s))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The grants a client may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrantType {
    /// `password` (RFC 6749 §4.3).
    Password,
    /// `refresh_token` (RFC 6749 §6).
    RefreshToken,
    /// `client_credentials` (RFC 6749 §4.4).
    ClientCredentials,
    /// `authorization_code` (RFC 6749 §4.1, with PKCE).
    AuthorizationCode,
}

impl GrantType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
            Self::AuthorizationCode => "authorization_code",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "password" => Some(Self::Password),
            "refresh_token" => Some(Self::RefreshToken),
            "client_credentials" => Some(Self::ClientCredentials),
            "authorization_code" => Some(Self::AuthorizationCode),
            _ => None,
        }
    }
}

/// A password as received; `Debug` never prints it.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Password(pub String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// `bytes` bytes from the system's CSPRNG, base64url without padding: for
/// opaque one-time secrets (authorization codes, browser sessions, CSRF
/// bindings).
///
/// # Errors
/// `Internal` when the system has no randomness to give.
pub fn random_token(bytes: usize) -> Result<String, super::error::DomainError> {
    use aws_lc_rs::rand::{SecureRandom, SystemRandom};
    use base64::Engine;
    let mut buf = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| super::error::DomainError::Internal("no randomness"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_normalised() {
        let e = Email::parse("  Alice@Example.COM ").expect("valid");
        assert_eq!(e.as_str(), "alice@example.com");
    }

    #[test]
    fn bad_emails_are_rejected() {
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "alice@example",
            "a b@example.com",
            "alice@exa mple.com",
            "alice@@example.com",
            "alice@.com",
            "alice@example..com",
        ] {
            assert!(Email::parse(bad).is_none(), "{bad:?} accepted");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_none());
    }

    #[test]
    fn password_debug_is_redacted() {
        assert!(!format!("{:?}", Password("hunter22".into())).contains("hunter22"));
    }
}
