//! The key ring: every published key by `kid`, with its schedule, the key pair
//! parsed once for signing, and the JWK Set pre-rendered for every interval
//! between schedule changes. The ring comes from the keys folder (`reload`
//! re-reads it) or from the store (the domain reads and opens the rows and
//! `install`s them); either way the whole ring is swapped atomically, so a
//! request sees either the old ring or the new one.

pub mod admin;
pub mod files;
pub mod jwks;
pub mod manifest;
pub mod sealed;

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
        path: PathBuf,
        /// Its permission bits (`mode & 0o777`), shown in octal.
        mode: u32,
    },
    /// A file's content is not what it should be.
    #[error("{0}")]
    Invalid(String),
    /// A key-encryption key is missing, malformed, or does not open a
    /// sealed value.
    #[error("{0}")]
    Kek(String),
    /// No key signs at the moment.
    #[error("no active signing key")]
    NoActiveKey,
}

/// A scheduled key with everything signing and verification need, parsed
/// and derived once when the set is built.
pub struct LoadedKey {
    /// Its manifest entry: kid, file name and schedule.
    pub entry: ManifestEntry,
    /// The private key, parsed once; its kind fixes the key's algorithm.
    pub pair: KeyPair,
    /// The public JWK.
    pub jwk: Jwk,
    /// The public key in the form `jsonwebtoken` verifies with.
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
    /// The JSON body, rendered when the set is built, so serving it renders
    /// nothing.
    pub body: Bytes,
    /// Its strong ETag.
    pub etag: String,
    /// When this set stops being the published one (`None`: not scheduled).
    pub until: Option<DateTime<Utc>>,
}

/// One consistent view of the keys.
#[derive(Debug)]
pub struct KeySet {
    manifest: Manifest,
    keys: Vec<Arc<LoadedKey>>,
    windows: Vec<(DateTime<Utc>, JwksDocument)>,
    fingerprint: Vec<u8>,
    version: i64,
}

impl KeySet {
    fn load(dir: &Path) -> Result<Self, KeyError> {
        let (manifest, _) = files::read_manifest(dir)?;
        let ders = manifest
            .keys
            .iter()
            .map(|entry| files::read_private_der(&dir.join(&entry.file)))
            .collect::<Result<Vec<_>, _>>()?;
        Self::build(manifest, &ders, 0)
    }

    /// A set from a schedule and each entry's PKCS#8 DER (in the same
    /// order), as the store holds them; `version` is the store's key-ring
    /// version they were read at.
    ///
    /// # Errors
    /// A key does not parse, is too short, or its kid is not its thumbprint.
    pub fn build(manifest: Manifest, ders: &[Vec<u8>], version: i64) -> Result<Self, KeyError> {
        if ders.len() != manifest.keys.len() {
            return Err(KeyError::Invalid(
                "one private key per scheduled key".into(),
            ));
        }
        let mut fp = digest::Context::new(&digest::SHA256);
        fp.update(manifest.render().as_bytes());
        let mut keys = Vec::with_capacity(manifest.keys.len());
        for (entry, der) in manifest.keys.iter().zip(ders) {
            fp.update(der);
            let pair = KeyPair::from_pkcs8(der)
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
            version,
        })
    }

    /// A set with no keys, at version 0: nothing signs (`NoActiveKey`) and
    /// the JWKS is empty.
    pub fn empty() -> Self {
        Self {
            manifest: Manifest::default(),
            keys: Vec::new(),
            windows: Vec::new(),
            fingerprint: Vec::new(),
            version: 0,
        }
    }

    /// The manifest this set was loaded from.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The key-ring version it was read at (the store's; in folder mode, how
    /// many times this process has loaded a changed folder).
    pub fn version(&self) -> i64 {
        self.version
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

/// Where a ring's keys come from.
#[derive(Debug)]
pub enum KeySource {
    /// The keys folder, re-read by `reload`.
    Folder(PathBuf),
    /// The store, sealed under these KEKs; the domain reads and `install`s.
    Store(sealed::Keks),
    /// None: a command that never signs, run without the KEK.
    Nothing,
}

/// The key ring shared by every request.
#[derive(Debug)]
pub struct KeyRing {
    source: KeySource,
    current: ArcSwap<KeySet>,
}

impl KeyRing {
    /// Loads the keys folder as version 1 of a ring that `reload` re-reads.
    ///
    /// # Errors
    /// A key or the manifest cannot be read, or a key file is insecure.
    pub fn load(dir: &Path) -> Result<Self, KeyError> {
        let mut set = KeySet::load(dir)?;
        set.version = 1;
        Ok(Self {
            source: KeySource::Folder(dir.to_owned()),
            current: ArcSwap::from_pointee(set),
        })
    }

    /// A ring whose keys live in the store, starting with `set`.
    pub fn from_store(keks: sealed::Keks, set: KeySet) -> Self {
        Self {
            source: KeySource::Store(keks),
            current: ArcSwap::from_pointee(set),
        }
    }

    /// A ring with no keys and nowhere to load them from.
    pub fn without_keys() -> Self {
        Self {
            source: KeySource::Nothing,
            current: ArcSwap::from_pointee(KeySet::empty()),
        }
    }

    pub fn source(&self) -> &KeySource {
        &self.source
    }

    /// The KEKs, in store mode.
    pub fn keks(&self) -> Option<&sealed::Keks> {
        match &self.source {
            KeySource::Store(keks) => Some(keks),
            KeySource::Folder(_) | KeySource::Nothing => None,
        }
    }

    /// The version of the ring in use.
    pub fn version(&self) -> i64 {
        self.current.load().version
    }

    /// Re-reads the folder and swaps the ring when anything changed.
    /// Returns whether it changed. In store mode, does nothing (the domain
    /// polls the store and calls `install`).
    ///
    /// # Errors
    /// The folder is unreadable or invalid; the ring in use is kept.
    pub fn reload(&self) -> Result<bool, KeyError> {
        let KeySource::Folder(dir) = &self.source else {
            return Ok(false);
        };
        let mut set = KeySet::load(dir)?;
        let current = self.current.load();
        if set.fingerprint == current.fingerprint {
            return Ok(false);
        }
        set.version = current.version + 1;
        self.current.store(Arc::new(set));
        Ok(true)
    }

    /// Swaps in a set read from the store. Returns whether the keys or their
    /// schedule changed (a new version alone, as after a no-op write, only
    /// moves the version).
    pub fn install(&self, set: KeySet) -> bool {
        let changed = set.fingerprint != self.current.load().fingerprint;
        self.current.store(Arc::new(set));
        changed
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
