//! Black-box tests: the real server on a random loopback port, over HTTP.

mod helpers;
mod process;

mod bad_input;
mod cli;
mod cookies;
mod discovery;
mod forged;
mod hashing;
mod hygiene;
mod introspect;
mod jwks;
mod keys;
mod outage;
mod password_grant;
mod races;
mod refresh;
mod sessions;
mod shutdown;
mod signup;
mod throttle;
mod userinfo;
