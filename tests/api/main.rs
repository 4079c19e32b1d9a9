//! Black-box tests: the real server on a random loopback port, over HTTP.

mod helpers;

mod audit;
mod bad_input;
mod cli;
mod discovery;
mod forged;
mod introspect;
mod jwks;
mod keys;
mod metrics;
mod multi_instance;
mod password_grant;
mod races;
mod refresh;
mod request_id;
mod sessions;
mod signup;
mod userinfo;
