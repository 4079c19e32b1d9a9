//! The keys folder on disk: PKCS#8 PEM private keys (mode 0600), the manifest,
//! and the refresh-token secret. Reads refuse key files that group or others
//! can read; writes go to a temporary file renamed into place, so a running
//! server never reads half a file.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use super::manifest::Manifest;
use super::KeyError;
use crate::tokens::keypair::{Algorithm, KeyPair};

/// The manifest's file name.
pub const MANIFEST: &str = "keys.toml";
/// The refresh-token secret's file name.
pub const REFRESH_SECRET: &str = "refresh.secret";

/// Generates a private key for `alg` (RSA of `rsa_bits` for RS256, P-256 for
/// ES256, Ed25519 for EdDSA) and returns it as PKCS#8 PEM.
///
/// # Errors
/// Unsupported RSA size, or the generator failed.
pub fn generate_pem(alg: Algorithm, rsa_bits: u32) -> Result<String, KeyError> {
    let der = KeyPair::generate_pkcs8(alg, rsa_bits).map_err(|e| KeyError::Invalid(e.into()))?;
    Ok(pem::encode(&pem::Pem::new("PRIVATE KEY", der)))
}

/// Refuses a private-key file that group or others may read or write.
///
/// # Errors
/// `InsecurePermissions` naming the file and its mode.
pub fn check_permissions(path: &Path) -> Result<(), KeyError> {
    let mode = fs::metadata(path)
        .map_err(|e| KeyError::Io(path.to_owned(), e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(KeyError::InsecurePermissions {
            path: path.to_owned(),
            mode: mode & 0o777,
        });
    }
    Ok(())
}

/// Reads a PKCS#8 PEM private key as DER, after the permission check.
///
/// # Errors
/// Unreadable, world-readable, or not a PKCS#8 PEM.
pub fn read_private_der(path: &Path) -> Result<Vec<u8>, KeyError> {
    check_permissions(path)?;
    let text = fs::read(path).map_err(|e| KeyError::Io(path.to_owned(), e))?;
    let pem = pem::parse(text)
        .map_err(|_| KeyError::Invalid(format!("{} is not a PEM file", path.display())))?;
    if pem.tag() != "PRIVATE KEY" {
        return Err(KeyError::Invalid(format!(
            "{} is not a PKCS#8 private key",
            path.display()
        )));
    }
    Ok(pem.into_contents())
}

/// Writes `contents` to `dir/name` with mode 0600, atomically.
///
/// # Errors
/// The folder cannot be written.
pub fn write_secret_file(dir: &Path, name: &str, contents: &[u8]) -> Result<PathBuf, KeyError> {
    write_atomically(dir, name, contents, 0o600)
}

fn write_atomically(
    dir: &Path,
    name: &str,
    contents: &[u8],
    mode: u32,
) -> Result<PathBuf, KeyError> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let io = |e| KeyError::Io(path.clone(), e);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(contents).map_err(io)?;
    f.sync_all().map_err(io)?;
    fs::rename(&tmp, &path).map_err(io)?;
    Ok(path)
}

/// Creates the keys folder (mode 0700) if it does not exist.
///
/// # Errors
/// It cannot be created.
pub fn ensure_dir(dir: &Path) -> Result<(), KeyError> {
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(|e| KeyError::Io(dir.to_owned(), e))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| KeyError::Io(dir.to_owned(), e))?;
    }
    Ok(())
}

/// Reads the manifest; an absent one is empty.
///
/// # Errors
/// Unreadable or invalid.
pub fn read_manifest(dir: &Path) -> Result<(Manifest, Vec<u8>), KeyError> {
    let path = dir.join(MANIFEST);
    match fs::read(&path) {
        Ok(bytes) => {
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| KeyError::Invalid(format!("{} is not UTF-8", path.display())))?;
            let m = Manifest::parse(text)
                .map_err(|e| KeyError::Invalid(format!("{}: {e}", path.display())))?;
            Ok((m, bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((Manifest::default(), Vec::new())),
        Err(e) => Err(KeyError::Io(path, e)),
    }
}

/// Writes the manifest atomically (temp file, then rename).
///
/// # Errors
/// The folder cannot be written.
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), KeyError> {
    write_atomically(dir, MANIFEST, manifest.render().as_bytes(), 0o600).map(|_| ())
}

/// Writes the manifest only if none exists yet, atomically: the complete file
/// is hard-linked into place, which fails when another process got there
/// first. Returns whether this call created it. Several instances starting
/// together on an empty folder thus agree on one first key.
///
/// # Errors
/// The folder cannot be written.
pub fn create_manifest_if_absent(dir: &Path, manifest: &Manifest) -> Result<bool, KeyError> {
    create_secret_file_if_absent(dir, MANIFEST, manifest.render().as_bytes())
}

/// Writes `dir/name` (mode 0600) only if it does not exist yet, atomically:
/// the complete file is hard-linked into place, which fails when another
/// process got there first. Returns whether this call created it.
///
/// # Errors
/// The folder cannot be written.
pub fn create_secret_file_if_absent(
    dir: &Path,
    name: &str,
    contents: &[u8],
) -> Result<bool, KeyError> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.new-{}", std::process::id()));
    let io = |e| KeyError::Io(path.clone(), e);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(contents).map_err(io)?;
    f.sync_all().map_err(io)?;
    let created = match fs::hard_link(&tmp, &path) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(io(e));
        }
    };
    fs::remove_file(&tmp).map_err(io)?;
    Ok(created)
}

/// Reads the refresh-token secret when the file exists.
///
/// # Errors
/// As for `load_or_create_refresh_secret`, except that an absent file is `None`.
pub fn load_refresh_secret(dir: &Path) -> Result<Option<Vec<u8>>, KeyError> {
    if dir.join(REFRESH_SECRET).exists() {
        load_or_create_refresh_secret(dir).map(Some)
    } else {
        Ok(None)
    }
}

/// 32 fresh random bytes: a refresh-token secret.
///
/// # Errors
/// The system has no randomness to give.
pub fn new_refresh_secret() -> Result<[u8; 32], KeyError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| KeyError::Invalid("no randomness".into()))?;
    Ok(bytes)
}

/// Reads the refresh-token secret, creating 32 random bytes when absent.
///
/// # Errors
/// Unreadable, too short, readable by others, or the folder is not writable.
pub fn load_or_create_refresh_secret(dir: &Path) -> Result<Vec<u8>, KeyError> {
    let path = dir.join(REFRESH_SECRET);
    if !path.exists() {
        let bytes = new_refresh_secret()?;
        // Create-if-absent, so instances starting together share one secret.
        let tmp_name = format!(".{REFRESH_SECRET}.new-{}", std::process::id());
        let tmp = write_secret_file(dir, &tmp_name, hex::encode(bytes).as_bytes())?;
        let linked = fs::hard_link(&tmp, &path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(KeyError::Io(path.clone(), e)),
        }
    }
    check_permissions(&path)?;
    let text = fs::read_to_string(&path).map_err(|e| KeyError::Io(path.clone(), e))?;
    let bytes = hex::decode(text.trim())
        .map_err(|_| KeyError::Invalid(format!("{} is not hex", path.display())))?;
    if bytes.len() < 32 {
        return Err(KeyError::Invalid(format!(
            "{} holds fewer than 32 bytes",
            path.display()
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_files_are_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = write_secret_file(dir.path(), "x.pem", b"data").expect("writes");
        assert_eq!(
            fs::metadata(&p).expect("meta").permissions().mode() & 0o777,
            0o600
        );
        check_permissions(&p).expect("private file accepted");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(
            check_permissions(&p),
            Err(KeyError::InsecurePermissions { .. })
        ));
    }

    #[test]
    fn only_the_first_manifest_is_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("time");
        let mut a = Manifest::default();
        a.add_first("a".into(), "a.pem".into(), now);
        let mut b = Manifest::default();
        b.add_first("b".into(), "b.pem".into(), now);
        assert!(create_manifest_if_absent(dir.path(), &a).expect("creates"));
        assert!(!create_manifest_if_absent(dir.path(), &b).expect("no error"));
        assert_eq!(read_manifest(dir.path()).expect("reads").0, a);
    }

    #[test]
    fn refresh_secret_is_created_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = load_or_create_refresh_secret(dir.path()).expect("creates");
        let b = load_or_create_refresh_secret(dir.path()).expect("reads");
        assert_eq!(a, b);
        assert_eq!(a.len(), 32);
    }
}
