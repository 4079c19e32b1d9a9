//! Black-box tests: the real server on a random loopback port, over HTTP.

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "a test that cannot go on fails loudly, with a message"
)]

mod helpers;
mod process;

mod admin;
mod algorithms;
mod audience;
mod audit;
mod authorize;
mod bad_input;
mod bursts;
mod cli;
mod client_assertion;
mod client_changes;
mod client_lifecycle;
mod cookies;
mod credentials;
mod discovery;
mod dpop;
mod forged;
mod hashing;
mod hygiene;
mod introspect;
mod jwks;
mod keys;
mod keystore;
mod load_driver;
mod metrics;
mod multi_instance;
mod outage;
mod password_grant;
mod proxies;
mod races;
mod recovery;
mod refresh;
mod request_id;
mod sessions;
mod shutdown;
mod signing;
mod signup;
mod skew;
mod throttle;
mod userinfo;
