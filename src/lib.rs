//! latchkey: a JWT-issuing auth server with rotating refresh tokens
//! (OIDC-lite). This crate root only declares modules; `main.rs` and the tests
//! use the surface below.

pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod http;
pub mod ids;
pub mod keys;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tokens;
