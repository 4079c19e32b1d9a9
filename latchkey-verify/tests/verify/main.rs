//! The crate's black-box suite, one binary: the JWKS cache against a local
//! issuer that counts requests, the forged-token matrix, both adapters on
//! the wire, and key rotation under load with the real latchkey.

#![expect(
    clippy::expect_used,
    reason = "a test that cannot go on fails loudly, with a message"
)]

mod adapters;
mod cache;
mod dpop;
mod forged;
mod rotation;
