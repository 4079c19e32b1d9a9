//! The key ring: every published key by `kid`, with its schedule, the key pair
//! parsed once for signing, and the JWK Set pre-rendered for every interval
//! between schedule changes. `reload` re-reads the keys folder and swaps the
//! whole ring atomically, so a request sees either the old ring or the new one.

pub mod admin;
pub mod files;
pub mod jwks;
pub mod manifest;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use aws_lc_rs::digest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::DecodingKey;

use self::jwks::Jwk;
use self::manifest::{KeyState, Manifest, ManifestEntry};
use crate::tokens::keypair::{Algorithm, KeyPair, PublicKey};

/// A problem with the keys folder.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A file could not be read or written. The I/O error is part of the
    /// message rather than a `source`, so an error chain names it once.
    #[error("{path}: {reason}", path = .0.display(), reason = .1)]
    Io(PathBuf, std::io::Error),
    /// A private key file is open to group or others.
    #[error("{} is readable by group or others (mode {mode:o}); run `chmod 600` on it", path.display())]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A file's content is not what it should be.
    #[error("{0}")]
    Invalid(String),
    /// No key signs at the moment.
    #[error("no active signing key")]
    NoActiveKey,
}

/// A key loaded for use.
pub struct LoadedKey {
    /// Its schedule.
    pub entry: ManifestEntry,
    /// The private key, parsed once; its kind fixes the key's algorithm.
    pub pair: KeyPair,
    /// The public JWK.
    pub jwk: Jwk,
    /// The verification key.
    pub decoding: DecodingKey,
}

impl LoadedKey {
    /// The one algorithm this key signs and verifies with.
    pub fn algorithm(&self) -> Algorithm {
        self.pair.algorithm()
    }
}

impl std::fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedKey")
            .field("kid", &self.entry.kid)
            .field("alg", &self.algorithm())
            .finish_non_exhaustive()
    }
}

/// The JWK Set as served during one interval of the schedule.
#[derive(Debug, Clone)]
pub struct JwksDocument {
    /// The rendered body.
    pub body: Bytes,
    /// Its strong ETag.
    pub etag: String,
    /// When this set stops being the published one (`None`: not scheduled).
    pub until: Option<DateTime<Utc>>,
}

/// One consistent view of the keys folder.
#[derive(Debug)]
pub struct KeySet {
    manifest: Manifest,
    keys: Vec<Arc<LoadedKey>>,
    windows: Vec<(DateTime<Utc>, JwksDocument)>,
    fingerprint: Vec<u8>,
}

impl KeySet {
    fn load(dir: &Path) -> Result<Self, KeyError> {
        let (manifest, manifest_bytes) = files::read_manifest(dir)?;
        let mut fp = digest::Context::new(&digest::SHA256);
        fp.update(&manifest_bytes);
        let mut keys = Vec::with_capacity(manifest.keys.len());
        for entry in &manifest.keys {
            let der = files::read_private_der(&dir.join(&entry.file))?;
            fp.update(&der);
            let pair = KeyPair::from_pkcs8(&der)
                .map_err(|e| KeyError::Invalid(format!("{}: {e}", entry.file)))?;
            if pair.rsa_modulus_len().is_some_and(|len| len < 256) {
                return Err(KeyError::Invalid(format!(
                    "{} is shorter than 2048 bits",
                    entry.file
                )));
            }
            let public = pair.public_key();
            let jwk = Jwk::from_public(&public);
            if jwk.kid != entry.kid {
                return Err(KeyError::Invalid(format!(
                    "{}: kid in keys.toml does not match the key's thumbprint",
                    entry.file
                )));
            }
            let decoding = decoding_key(&public)
                .ok_or_else(|| KeyError::Invalid(format!("{}: public key unusable", entry.file)))?;
            keys.push(Arc::new(LoadedKey {
                entry: entry.clone(),
                pair,
                jwk,
                decoding,
            }));
        }
        let windows = render_windows(&manifest, &keys);
        Ok(Self {
            manifest,
            keys,
            windows,
            fingerprint: fp.finish().as_ref().to_vec(),
        })
    }

    /// The manifest this set was loaded from.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
}

/// The verification key for a public key, of its own algorithm's family.
fn decoding_key(public: &PublicKey) -> Option<DecodingKey> {
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    match public {
        PublicKey::Rsa { modulus, exponent } => {
            Some(DecodingKey::from_rsa_raw_components(modulus, exponent))
        }
        PublicKey::P256 { x, y } => DecodingKey::from_ec_components(&b64(x), &b64(y)).ok(),
        PublicKey::Ed25519 { x } => DecodingKey::from_ed_components(&b64(x)).ok(),
    }
}

/// Pre-renders the JWK Set for every interval between changes of the
/// published set, so serving it is a lookup, never a render.
fn render_windows(
    manifest: &Manifest,
    keys: &[Arc<LoadedKey>],
) -> Vec<(DateTime<Utc>, JwksDocument)> {
    let mut starts: Vec<DateTime<Utc>> = manifest
        .keys
        .iter()
        .flat_map(|k| [Some(k.published_at), k.expires_at])
        .flatten()
        .collect();
    starts.push(DateTime::<Utc>::MIN_UTC);
    starts.sort_unstable();
    starts.dedup();
    starts
        .iter()
        .enumerate()
        .map(|(i, &from)| {
            let published: Vec<&Jwk> = keys
                .iter()
                .enumerate()
                .filter(|(idx, _)| manifest.state_of(*idx, from).is_published())
                .map(|(_, k)| &k.jwk)
                .collect();
            let (body, etag) = jwks::render(&published);
            (
                from,
                JwksDocument {
                    body: Bytes::from(body),
                    etag,
                    until: starts.get(i + 1).copied(),
                },
            )
        })
        .collect()
}

/// The key ring shared by every request.
#[derive(Debug)]
pub struct KeyRing {
    dir: PathBuf,
    current: ArcSwap<KeySet>,
}

impl KeyRing {
    /// Loads the keys folder.
    ///
    /// # Errors
    /// A key or the manifest cannot be read, or a key file is insecure.
    pub fn load(dir: &Path) -> Result<Self, KeyError> {
        let set = KeySet::load(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
            current: ArcSwap::from_pointee(set),
        })
    }

    /// Re-reads the folder and swaps the ring when anything changed.
    /// Returns whether it changed.
    ///
    /// # Errors
    /// The folder is unreadable or invalid; the ring in use is kept.
    pub fn reload(&self) -> Result<bool, KeyError> {
        let set = KeySet::load(&self.dir)?;
        if set.fingerprint == self.current.load().fingerprint {
            return Ok(false);
        }
        self.current.store(Arc::new(set));
        Ok(true)
    }

    /// A consistent snapshot of the ring.
    pub fn snapshot(&self) -> Arc<KeySet> {
        self.current.load_full()
    }

    /// The key that signs at `now`.
    ///
    /// # Errors
    /// `NoActiveKey` when the schedule names none.
    pub fn signing_key(&self, now: DateTime<Utc>) -> Result<Arc<LoadedKey>, KeyError> {
        let set = self.current.load();
        set.manifest
            .signing_index(now)
            .and_then(|i| set.keys.get(i).cloned())
            .ok_or(KeyError::NoActiveKey)
    }

    /// The published key named `kid` at `now`, if any, and only if its
    /// algorithm is `alg`: a token's header can never make a key verify
    /// under another algorithm (RFC 8725 §2.1, §3.1).
    pub fn verification_key(
        &self,
        kid: &str,
        alg: Algorithm,
        now: DateTime<Utc>,
    ) -> Option<Arc<LoadedKey>> {
        let set = self.current.load();
        let i = set
            .keys
            .iter()
            .position(|k| k.entry.kid == kid && k.algorithm() == alg)?;
        set.manifest
            .state_of(i, now)
            .is_published()
            .then(|| set.keys[i].clone())
    }

    /// The JWK Set published at `now`, with how long it may be cached: the
    /// configured max-age, never past the next change of the published set.
    pub fn jwks(&self, now: DateTime<Utc>, max_age: Duration) -> (JwksDocument, i64) {
        let set = self.current.load();
        let i = set
            .windows
            .partition_point(|(from, _)| *from <= now)
            .saturating_sub(1);
        let doc = set
            .windows
            .get(i)
            .map(|(_, d)| d.clone())
            .unwrap_or_else(|| {
                let (body, etag) = jwks::render(&[]);
                JwksDocument {
                    body: Bytes::from(body),
                    etag,
                    until: None,
                }
            });
        let cap = doc.until.map_or(max_age, |u| (u - now).min(max_age));
        (doc, cap.num_seconds().max(0))
    }

    /// Every key with its state at `now`, for `keys list` and metrics.
    pub fn states(&self, now: DateTime<Utc>) -> Vec<(ManifestEntry, KeyState)> {
        let set = self.current.load();
        set.manifest
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), set.manifest.state_of(i, now)))
            .collect()
    }
}
