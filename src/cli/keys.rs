//! `latchkey keys generate | rotate | list | retire`. Prints kids, states and
//! times; never key material.

use chrono::Duration;
use clap::Subcommand;

use super::print;
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::keys::admin::KeySpec;
use crate::keys::manifest::Retention;
use crate::keys::{admin, files};
use crate::tokens::keypair::Algorithm;

/// Key commands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create the first signing key, active at once, and the refresh-token
    /// secret.
    Generate {
        /// Algorithm of the key (default: `keys.algorithm`).
        #[arg(long, value_parser = parse_algorithm)]
        algorithm: Option<Algorithm>,
    },
    /// Publish a new key now; it starts signing after twice the JWKS max-age
    /// (or --activate-in seconds), and the current key retires then.
    Rotate {
        /// Seconds until the new key signs.
        #[arg(long)]
        activate_in: Option<i64>,
        /// Algorithm of the new key (default: `keys.algorithm`); moving to
        /// another algorithm follows the same schedule.
        #[arg(long, value_parser = parse_algorithm)]
        algorithm: Option<Algorithm>,
    },
    /// List keys with their states and times.
    List,
    /// Stop signing with a key now (the next scheduled key takes over); it
    /// leaves the JWKS once its tokens have expired.
    Retire {
        /// The key's kid.
        kid: String,
        /// Drop it from the JWKS at once (for a compromised key): tokens it
        /// signed stop verifying immediately.
        #[arg(long)]
        now: bool,
    },
}

fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    Algorithm::from_name(name).ok_or_else(|| "must be RS256, ES256 or EdDSA".to_owned())
}

/// The kind of key to create: `--algorithm` when given, else the settings'.
fn spec(settings: &Settings, algorithm: Option<Algorithm>) -> KeySpec {
    let mut spec = settings.key_spec();
    if let Some(alg) = algorithm {
        spec.algorithm = alg;
    }
    spec
}

/// The retention window keys get under `settings`.
pub fn retention(settings: &Settings) -> Retention {
    Retention {
        token_ttl: settings.access_token_ttl(),
        max_age: settings.jwks_max_age(),
        leeway: settings.leeway(),
    }
}

/// A change to the keys folder, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyChange {
    /// `key_generated`, `key_rotated` or `key_retired`.
    pub kind: &'static str,
    /// The kid and schedule (public facts).
    pub detail: String,
}

/// Runs a key command; returns the change made, if any, for the audit log.
///
/// # Errors
/// The keys folder cannot be read or written, or the operation is refused.
pub fn run(cmd: KeysCommand, settings: &Settings, json: bool) -> anyhow::Result<Option<KeyChange>> {
    let dir = &settings.raw.keys.dir;
    let now = SystemClock.now();
    match cmd {
        KeysCommand::Generate { algorithm } => {
            let spec = spec(settings, algorithm);
            let kid = admin::generate(dir, spec, now)?;
            // The refresh-token secret too, so that instances started on a
            // read-only copy of this folder all share it: one created by
            // each instance at start-up would make every instance refuse
            // the others' refresh tokens.
            files::load_or_create_refresh_secret(dir)?;
            print(
                json,
                &serde_json::json!({ "kid": kid, "alg": spec.algorithm.name(), "state": "active" }),
                &format!("generated {} key {kid} (active)", spec.algorithm),
            );
            Ok(Some(KeyChange {
                kind: "key_generated",
                detail: format!("{} key {kid} active now", spec.algorithm),
            }))
        }
        KeysCommand::Rotate {
            activate_in,
            algorithm,
        } => {
            let spec = spec(settings, algorithm);
            let delay = activate_in.map_or(settings.jwks_max_age() * 2, Duration::seconds);
            if delay < settings.jwks_max_age() * 2 {
                eprintln!("warning: activating sooner than twice the JWKS max-age; verifiers with a cached JWKS may reject new tokens");
            }
            let (kid, at) = admin::rotate(dir, spec, now, delay, retention(settings))?;
            print(
                json,
                &serde_json::json!({ "kid": kid, "alg": spec.algorithm.name(), "published_at": now, "activates_at": at }),
                &format!("published {} key {kid}; it signs from {at}", spec.algorithm),
            );
            Ok(Some(KeyChange {
                kind: "key_rotated",
                detail: format!(
                    "{} key {kid} published, signs from {}",
                    spec.algorithm,
                    at.to_rfc3339()
                ),
            }))
        }
        KeysCommand::List => {
            let keys = admin::list(dir, now)?;
            if json {
                let list: Vec<_> = keys
                    .iter()
                    .map(|(k, s)| serde_json::json!({ "kid": k.kid, "state": s, "file": k.file, "published_at": k.published_at, "activates_at": k.activates_at, "retires_at": k.retires_at, "expires_at": k.expires_at }))
                    .collect();
                println!("{}", serde_json::json!({ "keys": list }));
            } else {
                println!(
                    "{:<44} {:<8} {:<26} {:<26} {:<26}",
                    "KID", "STATE", "ACTIVATES", "RETIRES", "LEAVES JWKS"
                );
                for (k, s) in keys {
                    let opt = |t: Option<chrono::DateTime<chrono::Utc>>| {
                        t.map_or("-".to_owned(), |t| t.to_rfc3339())
                    };
                    println!(
                        "{:<44} {:<8} {:<26} {:<26} {:<26}",
                        k.kid,
                        format!("{s:?}").to_lowercase(),
                        k.activates_at.to_rfc3339(),
                        opt(k.retires_at),
                        opt(k.expires_at)
                    );
                }
            }
            Ok(None)
        }
        KeysCommand::Retire {
            kid,
            now: immediately,
        } => {
            admin::retire(dir, &kid, now, immediately, retention(settings))?;
            print(
                json,
                &serde_json::json!({ "kid": kid, "retired": true, "dropped": immediately }),
                &format!("retired key {kid}"),
            );
            let how = if immediately {
                "retired and dropped from the JWKS now"
            } else {
                "retired now"
            };
            Ok(Some(KeyChange {
                kind: "key_retired",
                detail: format!("key {kid} {how}"),
            }))
        }
    }
}
