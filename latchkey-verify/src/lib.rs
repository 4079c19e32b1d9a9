//! Verify latchkey access tokens in a Rust service:
//! discovery, a JWKS cache that follows latchkey's key schedule, the checks
//! of RFC 9068, and extractors for actix-web and axum.
//!
//! ```no_run
//! # async fn run() -> Result<(), latchkey_verify::SetupError> {
//! let verifier = latchkey_verify::Verifier::discover("https://auth.example", "orders").await?;
//! # let token = "";
//! match verifier.verify(token).await {
//!     Ok(claims) if claims.has_scope("orders:read") => { /* serve */ }
//!     Ok(_) => { /* 403 insufficient_scope */ }
//!     Err(e) => { /* e.status(), e.challenge(), e.body() */ }
//! }
//! # Ok(()) }
//! ```
//!
//! # What is shared with the server
//! [`rules`] holds what makes a JWS a valid latchkey access token as pure
//! functions: the size bound, the header's shape, `typ` `at+jwt`, `crit`
//! refusal, the `kid` bounds and the time checks with leeway. latchkey's own
//! verification path (introspection, userinfo, the account API) calls the
//! same functions, so the server and its services cannot disagree about
//! them. What differs is where keys come from: the server reads its key
//! ring, a service reads the JWKS through [`Verifier`].
//!
//! # Features
//! - `client` (default): [`Verifier`], discovery and the JWKS cache.
//! - `rustls-tls` (default): https to the issuer.
//! - `actix-web`, `axum`: extractors answering 401/403 per RFC 6750.
//! - `test-util`: [`test_util::TestIssuer`], a local issuer for a service's
//!   own tests.

mod claims;
pub mod dpop;
mod error;
pub mod jose;
pub mod keys;
pub mod rules;
pub mod thumbprint;
pub mod verify;

#[cfg(feature = "client")]
mod client;
pub mod clock;

#[cfg(feature = "actix-web")]
pub mod actix;
#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "test-util")]
pub mod test_util;

pub use claims::{Claims, Scopes};
#[cfg(feature = "client")]
pub use client::{SetupError, Stats, Verifier, VerifierBuilder};
pub use error::Error;

/// A scope a route requires, as a type, for `RequireScope<S>` extractors.
///
/// ```
/// latchkey_verify::scope!(OrdersRead = "orders:read");
/// ```
pub trait Scope {
    /// The scope's name as granted in the token's `scope` claim.
    const NAME: &'static str;
}

/// Declares a [`Scope`] type: `scope!(OrdersRead = "orders:read");`.
#[macro_export]
macro_rules! scope {
    ($vis:vis $name:ident = $scope:literal) => {
        #[doc = concat!("The `", $scope, "` scope.")]
        #[derive(Debug, Clone, Copy)]
        $vis struct $name;
        impl $crate::Scope for $name {
            const NAME: &'static str = $scope;
        }
    };
}

/// The bearer token of an `Authorization` header value list (RFC 6750
/// §2.1). The scheme is case-insensitive; exactly one header is allowed.
///
/// # Errors
/// [`Error::Missing`] without a header; [`Error::BadRequest`] for several
/// headers or another scheme; [`Error::Malformed`] for an empty token.
pub fn bearer_token<'a, I>(mut values: I) -> Result<&'a str, Error>
where
    I: Iterator<Item = &'a [u8]>,
{
    let Some(value) = values.next() else {
        return Err(Error::Missing);
    };
    if values.next().is_some() {
        return Err(Error::BadRequest);
    }
    let value = std::str::from_utf8(value).map_err(|_| Error::Malformed)?;
    let (scheme, token) = value.split_once(' ').ok_or(Error::BadRequest)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Error::BadRequest);
    }
    let token = token.trim_matches(' ');
    if token.is_empty() {
        return Err(Error::Malformed);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_token_rules() {
        let one = |v: &'static str| bearer_token(std::iter::once(v.as_bytes()));
        assert_eq!(one("Bearer abc"), Ok("abc"));
        assert_eq!(one("bearer  abc "), Ok("abc"));
        assert_eq!(one("Basic abc"), Err(Error::BadRequest));
        assert_eq!(one("Bearer"), Err(Error::BadRequest));
        assert_eq!(one("Bearer  "), Err(Error::Malformed));
        assert_eq!(bearer_token(std::iter::empty()), Err(Error::Missing));
        assert_eq!(
            bearer_token([b"Bearer a".as_slice(), b"Bearer b".as_slice()].into_iter()),
            Err(Error::BadRequest)
        );
    }
}
