//! `latchkey keys generate | rotate | list | retire | rewrap | import DIR`,
//! on the folder or the store (`keys.source`). Prints kids, states and
//! times; never key material.

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use clap::Subcommand;

use std::path::PathBuf;
use std::sync::Arc;

use super::print;
use crate::clock::{Clock, SystemClock};
use crate::config::{KeysFrom, Settings};
use crate::domain::Services;
use crate::keys::admin::KeySpec;
use crate::keys::manifest::{KeyState, ManifestEntry, Retention};
use crate::keys::{admin, files};
use crate::startup::{build_services, build_services_reporting};
use crate::store::AuditKind;
use crate::tokens::keypair::Algorithm;

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
    /// Store mode: re-seal every key and the refresh-token secret under the
    /// first configured KEK, so older KEKs can be removed.
    Rewrap,
    /// Store mode: move a keys folder (keys, kids, schedule and the
    /// refresh-token secret) into a store that has no keys yet. Every token
    /// the folder's keys signed, and every refresh token, stays valid.
    Import {
        /// A keys folder as folder mode keeps it: `keys.toml`, its PEM files
        /// and `refresh.secret`.
        dir: PathBuf,
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

/// A change to the keys, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyChange {
    /// `key_generated`, `key_rotated` or `key_retired`; in store mode also
    /// `keys_rewrapped` or `keys_imported`.
    pub kind: AuditKind,
    /// The kid and schedule (public facts).
    pub detail: String,
}

/// Runs a key command. In folder mode, returns the change made, if any,
/// for the caller to audit; in store mode it audits the change itself and
/// returns `None`.
///
/// # Errors
/// The keys cannot be read or written, or the operation is refused.
pub async fn run(
    cmd: KeysCommand,
    settings: &Settings,
    json: bool,
) -> anyhow::Result<Option<KeyChange>> {
    match settings.keys_from() {
        KeysFrom::Folder => run_on_folder(cmd, settings, json),
        KeysFrom::Store => run_on_store(cmd, settings, json).await,
    }
}

fn run_on_folder(
    cmd: KeysCommand,
    settings: &Settings,
    json: bool,
) -> anyhow::Result<Option<KeyChange>> {
    let dir = &settings.keys().dir;
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
                kind: AuditKind::KeyGenerated,
                detail: format!("{} key {kid} active now", spec.algorithm),
            }))
        }
        KeysCommand::Rotate {
            activate_in,
            algorithm,
        } => {
            let spec = spec(settings, algorithm);
            let delay = rotation_delay(settings, activate_in);
            let (kid, at) = admin::rotate(dir, spec, now, delay, retention(settings))?;
            print_rotated(json, spec, &kid, now, at);
            Ok(Some(KeyChange {
                kind: AuditKind::KeyRotated,
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
                print_table(keys.iter().map(|(k, s)| (k, *s)));
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
                kind: AuditKind::KeyRetired,
                detail: format!("key {kid} {how}"),
            }))
        }
        KeysCommand::Rewrap | KeysCommand::Import { .. } => anyhow::bail!(
            "this command works on the store: set keys.source = \"store\" (LATCHKEY__KEYS__SOURCE=store) and a KEK"
        ),
    }
}

fn print_rotated(json: bool, spec: KeySpec, kid: &str, now: DateTime<Utc>, at: DateTime<Utc>) {
    print(
        json,
        &serde_json::json!({ "kid": kid, "alg": spec.algorithm.name(), "published_at": now, "activates_at": at }),
        &format!("published {} key {kid}; it signs from {at}", spec.algorithm),
    );
}

/// The activation delay of a rotation, with the warning a short one earns.
fn rotation_delay(settings: &Settings, activate_in: Option<i64>) -> Duration {
    let delay = activate_in.map_or(settings.jwks_max_age() * 2, Duration::seconds);
    if delay < settings.jwks_max_age() * 2 {
        eprintln!("warning: activating sooner than twice the JWKS max-age; verifiers with a cached JWKS may reject new tokens");
    }
    delay
}

async fn run_on_store(
    cmd: KeysCommand,
    settings: &Settings,
    json: bool,
) -> anyhow::Result<Option<KeyChange>> {
    if let KeysCommand::Generate { algorithm } = cmd {
        let s = settings
            .clone()
            .with_key_algorithm(spec(settings, algorithm).algorithm);
        let created = build_services_reporting(s, Arc::new(SystemClock), true)
            .await?
            .first_key;
        let kid = created.ok_or_else(|| {
            anyhow::anyhow!("keys already exist; use `latchkey keys rotate` to add one")
        })?;
        print(
            json,
            &serde_json::json!({ "kid": kid, "alg": spec(settings, algorithm).algorithm.name(), "state": "active" }),
            &format!(
                "generated {} key {kid} (active) in the store",
                spec(settings, algorithm).algorithm
            ),
        );
        // Startup recorded it in the audit log already.
        return Ok(None);
    }
    let services = build_services(settings.clone(), Arc::new(SystemClock), false).await?;
    let change = match cmd {
        KeysCommand::Generate { .. } => None,
        KeysCommand::Rotate {
            activate_in,
            algorithm,
        } => {
            let spec = spec(settings, algorithm);
            let delay = rotation_delay(settings, activate_in);
            let (kid, at) = services
                .rotate_stored_key(spec, delay, retention(settings))
                .await?;
            print_rotated(json, spec, &kid, services.now(), at);
            Some(KeyChange {
                kind: AuditKind::KeyRotated,
                detail: format!(
                    "{} key {kid} published, signs from {}",
                    spec.algorithm,
                    at.to_rfc3339()
                ),
            })
        }
        KeysCommand::List => {
            list_stored(&services, json).await?;
            None
        }
        KeysCommand::Retire {
            kid,
            now: immediately,
        } => {
            services
                .retire_stored_key(&kid, immediately, retention(settings))
                .await?;
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
            Some(KeyChange {
                kind: AuditKind::KeyRetired,
                detail: format!("key {kid} {how}"),
            })
        }
        KeysCommand::Rewrap => {
            let n = services.rewrap_keys().await?;
            print(
                json,
                &serde_json::json!({ "resealed": n }),
                &format!("re-sealed {n} value(s) under the first KEK"),
            );
            (n > 0).then(|| KeyChange {
                kind: AuditKind::KeysRewrapped,
                detail: format!("{n} value(s) re-sealed under the first KEK"),
            })
        }
        KeysCommand::Import { dir } => {
            let kids = services.import_keys(&dir).await?;
            print(
                json,
                &serde_json::json!({ "imported": kids }),
                &format!(
                    "imported {} key(s) and the refresh-token secret from {}",
                    kids.len(),
                    dir.display()
                ),
            );
            Some(KeyChange {
                kind: AuditKind::KeysImported,
                detail: format!("{} key(s) imported: {}", kids.len(), kids.join(", ")),
            })
        }
    };
    if let Some(c) = &change {
        services
            .record_key_change(c.kind, c.detail.clone(), "cli")
            .await
            .context("the change stands but was not audited")?;
    }
    Ok(None)
}

/// `keys list` on the store: the store's keys and version, and the version
/// of the ring this process loaded. Each running instance reports its own on
/// `/readyz` and as `latchkey_key_ring_version`; one whose version is below
/// the store's has not caught up yet.
async fn list_stored(services: &Services, json: bool) -> anyhow::Result<()> {
    let (version, keys) = services.list_stored_keys().await?;
    if json {
        let list: Vec<_> = keys
            .iter()
            .map(|k| serde_json::json!({ "kid": k.entry.kid, "alg": k.algorithm, "state": k.state, "kek_id": k.kek_id, "published_at": k.entry.published_at, "activates_at": k.entry.activates_at, "retires_at": k.entry.retires_at, "expires_at": k.entry.expires_at }))
            .collect();
        println!(
            "{}",
            serde_json::json!({ "source": "store", "store_version": version, "this_instance_version": services.key_ring_version(), "keys": list })
        );
        return Ok(());
    }
    println!("store key-ring version {version}");
    print_table(keys.iter().map(|k| (&k.entry, k.state)));
    Ok(())
}

fn print_table<'a>(keys: impl Iterator<Item = (&'a ManifestEntry, KeyState)>) {
    println!(
        "{:<44} {:<8} {:<26} {:<26} {:<26}",
        "KID", "STATE", "ACTIVATES", "RETIRES", "LEAVES JWKS"
    );
    for (k, s) in keys {
        let opt = |t: Option<DateTime<Utc>>| t.map_or("-".to_owned(), |t| t.to_rfc3339());
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
