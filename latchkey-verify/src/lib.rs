//! Verify latchkey access tokens in a Rust service.
//!
//! [`rules`] holds what makes a JWS a valid latchkey access token as pure
//! functions; latchkey's own verification path calls the same functions, so
//! the server and its services cannot disagree about the size bound, the
//! header, `typ`, `crit`, `kid` or the time checks.

pub mod rules;
