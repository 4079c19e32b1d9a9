//! Black-box tests: the real server on a random loopback port, over HTTP.

mod helpers;

mod bad_input;
mod cli;
mod cookies;
mod discovery;
mod forged;
mod introspect;
mod jwks;
mod keys;
mod password_grant;
mod races;
mod refresh;
mod sessions;
mod signup;
mod userinfo;
