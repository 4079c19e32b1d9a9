//! Operations on the keys folder, shared by `serve` (first key on a fresh
//! machine) and `latchkey keys …`. Every change is a new PEM file written
//! with mode 0600 plus a manifest replaced atomically.

use std::path::Path;

use chrono::{DateTime, Duration, Utc};

use super::files;
use super::jwks::Jwk;
use super::manifest::{KeyState, ManifestEntry, ManifestError, Retention};
use super::KeyError;
use crate::tokens::keypair::{Algorithm, KeyPair};

fn kid_of_der(der: &[u8]) -> Result<String, KeyError> {
    let pair = KeyPair::from_pkcs8(der).map_err(|e| KeyError::Invalid(e.to_string()))?;
    Ok(Jwk::from_public(&pair.public_key()).kid)
}

/// What kind of key to generate: the algorithm, and the RSA size for RS256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    /// The algorithm the new key signs with.
    pub algorithm: Algorithm,
    /// RSA modulus size in bits (RS256 only).
    pub rsa_bits: u32,
}

/// Generates a key and writes it as `<kid>.pem`; returns `(kid, file name)`.
fn new_key_file(dir: &Path, spec: KeySpec) -> Result<(String, String), KeyError> {
    let pem = files::generate_pem(spec.algorithm, spec.rsa_bits)?;
    let der = pem::parse(&pem)
        .map_err(|_| KeyError::Invalid("generated key does not parse".into()))?
        .into_contents();
    let kid = kid_of_der(&der)?;
    let file = format!("{kid}.pem");
    files::write_secret_file(dir, &file, pem.as_bytes())?;
    Ok((kid, file))
}

fn manifest_error(e: ManifestError) -> KeyError {
    KeyError::Invalid(e.to_string())
}

/// On a fresh machine: creates the folder, and, when the manifest names no
/// key, adopts a PEM already in the folder or generates one, active at once.
/// Returns the kid when it created or adopted one.
///
/// # Errors
/// The folder cannot be written or a key is invalid.
pub fn ensure_initial_key(
    dir: &Path,
    spec: KeySpec,
    now: DateTime<Utc>,
) -> Result<Option<String>, KeyError> {
    files::ensure_dir(dir)?;
    let (mut manifest, _) = files::read_manifest(dir)?;
    if !manifest.keys.is_empty() {
        return Ok(None);
    }
    let mut pems: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| KeyError::Io(dir.to_owned(), e))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".pem"))
        .collect();
    pems.sort();
    let (kid, file, generated) = match pems.first() {
        Some(file) => (
            kid_of_der(&files::read_private_der(&dir.join(file))?)?,
            file.clone(),
            false,
        ),
        None => {
            let (kid, file) = new_key_file(dir, spec)?;
            (kid, file, true)
        }
    };
    manifest.add_first(kid.clone(), file.clone(), now);
    if files::create_manifest_if_absent(dir, &manifest)? {
        return Ok(Some(kid));
    }
    // Another instance created the first key at the same moment: use theirs.
    if generated {
        let _ = std::fs::remove_file(dir.join(file));
    }
    Ok(None)
}

/// `keys generate`: the first key, active at once.
///
/// # Errors
/// `Invalid` when the folder already has keys (use `rotate`).
pub fn generate(dir: &Path, spec: KeySpec, now: DateTime<Utc>) -> Result<String, KeyError> {
    files::ensure_dir(dir)?;
    let (manifest, _) = files::read_manifest(dir)?;
    if !manifest.keys.is_empty() {
        return Err(KeyError::Invalid(
            "keys already exist; use `latchkey keys rotate` to add one".into(),
        ));
    }
    let (kid, file) = new_key_file(dir, spec)?;
    let mut manifest = manifest;
    manifest.add_first(kid.clone(), file, now);
    files::write_manifest(dir, &manifest)?;
    Ok(kid)
}

/// `keys rotate`: a new key, published now, signing from `now + activate_in`.
/// Returns its kid and activation time. The new key may have another
/// algorithm than the current one: that is how a deployment moves between
/// algorithms, on the same schedule as any rotation.
///
/// # Errors
/// The folder cannot be written, the key cannot be generated, or
/// `activate_in` is negative.
pub fn rotate(
    dir: &Path,
    spec: KeySpec,
    now: DateTime<Utc>,
    activate_in: Duration,
    retention: Retention,
) -> Result<(String, DateTime<Utc>), KeyError> {
    files::ensure_dir(dir)?;
    let (mut manifest, _) = files::read_manifest(dir)?;
    let (kid, file) = new_key_file(dir, spec)?;
    let activates_at = if manifest.keys.is_empty() {
        manifest.add_first(kid.clone(), file, now);
        now
    } else {
        manifest
            .rotate(kid.clone(), file, now, activate_in, retention)
            .map_err(manifest_error)?
    };
    // Keys long gone from the JWKS leave the manifest and the folder.
    for gone in manifest.prune(now, Duration::days(7)) {
        let _ = std::fs::remove_file(dir.join(gone));
    }
    files::write_manifest(dir, &manifest)?;
    Ok((kid, activates_at))
}

/// `keys retire`: stop signing with `kid` now; drop it from the JWKS after
/// the retention window, or at once with `immediately`.
///
/// # Errors
/// Unknown kid, or no other key to sign with.
pub fn retire(
    dir: &Path,
    kid: &str,
    now: DateTime<Utc>,
    immediately: bool,
    retention: Retention,
) -> Result<(), KeyError> {
    let (mut manifest, _) = files::read_manifest(dir)?;
    manifest
        .retire(kid, now, immediately, retention)
        .map_err(manifest_error)?;
    files::write_manifest(dir, &manifest)
}

/// `keys list`: every key with its state at `now`.
///
/// # Errors
/// The manifest cannot be read.
pub fn list(dir: &Path, now: DateTime<Utc>) -> Result<Vec<(ManifestEntry, KeyState)>, KeyError> {
    let (manifest, _) = files::read_manifest(dir)?;
    Ok(manifest
        .keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.clone(), manifest.state_of(i, now)))
        .collect())
}
