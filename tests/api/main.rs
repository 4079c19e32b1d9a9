//! Black-box tests: the real server on a random loopback port, over HTTP.

mod helpers;
mod process;

mod algorithms;
mod audit;
mod authorize;
mod bad_input;
mod bursts;
mod cli;
mod client_changes;
mod cookies;
mod credentials;
mod discovery;
mod forged;
mod hashing;
mod hygiene;
mod introspect;
mod jwks;
mod keys;
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
mod signup;
mod skew;
mod throttle;
mod userinfo;
