//! Keys in the store: the signing keys and the refresh-token secret, sealed
//! under the key-encryption key, read into a `KeySet` all at once (a row that
//! does not open fails the whole read, so a ring is never partly loaded), and
//! the schedule operations (`generate`, `rotate`, `retire`, `rewrap`,
//! `import`) as compare-and-set writes on the store's key-ring version. The
//! schedule rules themselves are the manifest's, unchanged; only where they
//! are kept differs. What the folder mode does lives in `keys::admin`.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};

use super::error::DomainError;
use super::Services;
use crate::keys::admin::KeySpec;
use crate::keys::jwks::Jwk;
use crate::keys::manifest::{KeyState, Manifest, ManifestEntry, Retention};
use crate::keys::sealed::{key_aad, secret_aad, Keks};
use crate::keys::{files, KeyError, KeySet, KeySource};
use crate::store::{SealedSecret, SigningKeyRecord, Store, StoreError};
use crate::tokens::keypair::{Algorithm, KeyPair};

/// The name of the refresh-token secret's row.
pub const REFRESH: &str = "refresh";

/// How often a schedule change is recomputed when another change landed
/// between its read and its write.
const ATTEMPTS: usize = 8;

/// A fresh private key of `spec`: its PKCS#8 DER and kid.
///
/// # Errors
/// `Invalid` when the generator fails or its key does not parse back.
pub fn new_key(spec: KeySpec) -> Result<(Vec<u8>, String), KeyError> {
    let der = KeyPair::generate_pkcs8(spec.algorithm, spec.rsa_bits)
        .map_err(|e| KeyError::Invalid(e.into()))?;
    let kid = kid_of(&der)?;
    Ok((der, kid))
}

fn kid_of(der: &[u8]) -> Result<String, KeyError> {
    let pair = KeyPair::from_pkcs8(der).map_err(|e| KeyError::Invalid(e.to_string()))?;
    Ok(Jwk::from_public(&pair.public_key()).kid)
}

fn algorithm_of(der: &[u8]) -> Result<Algorithm, KeyError> {
    Ok(KeyPair::from_pkcs8(der)
        .map_err(|e| KeyError::Invalid(e.to_string()))?
        .algorithm())
}

fn seal_key(keks: &Keks, entry: &ManifestEntry, der: &[u8]) -> Result<SigningKeyRecord, KeyError> {
    let algorithm = algorithm_of(der)?.name().to_owned();
    let sealed = keks.seal(der, &key_aad(&entry.kid, &algorithm))?;
    Ok(SigningKeyRecord {
        kid: entry.kid.clone(),
        algorithm,
        sealed: sealed.bytes,
        kek_id: sealed.kek_id,
        published_at: entry.published_at,
        activates_at: entry.activates_at,
        retires_at: entry.retires_at,
        expires_at: entry.expires_at,
    })
}

fn seal_secret(keks: &Keks, secret: &[u8]) -> Result<SealedSecret, KeyError> {
    let sealed = keks.seal(secret, &secret_aad(REFRESH))?;
    Ok(SealedSecret {
        name: REFRESH.to_owned(),
        sealed: sealed.bytes,
        kek_id: sealed.kek_id,
    })
}

fn entry_of(r: &SigningKeyRecord) -> ManifestEntry {
    ManifestEntry {
        kid: r.kid.clone(),
        file: format!("store:{}", r.kid),
        published_at: r.published_at,
        activates_at: r.activates_at,
        retires_at: r.retires_at,
        expires_at: r.expires_at,
    }
}

fn manifest_of(rows: &[SigningKeyRecord]) -> Manifest {
    Manifest {
        keys: rows.iter().map(entry_of).collect(),
    }
}

/// Opens one row: its private key, checked to be of the algorithm the row
/// names (the associated data already binds kid and algorithm).
fn open_key(keks: &Keks, r: &SigningKeyRecord) -> Result<Vec<u8>, KeyError> {
    let der = keks.open(
        &r.sealed,
        &r.kek_id,
        &key_aad(&r.kid, &r.algorithm),
        &format!("signing key {}", r.kid),
    )?;
    if algorithm_of(&der)?.name() != r.algorithm {
        return Err(KeyError::Invalid(format!(
            "signing key {}: stored algorithm does not match the key",
            r.kid
        )));
    }
    Ok(der)
}

/// Whether the store's keys have been initialised (by a first start, `keys
/// generate` or `keys import`).
///
/// # Errors
/// Store failures.
pub async fn is_initialized(store: &dyn Store) -> Result<bool, DomainError> {
    Ok(store.find_key_secret(REFRESH).await?.is_some())
}

/// Initialises an empty store with `keys` (a manifest and each entry's DER)
/// and the refresh-token `secret`. Returns whether this call did it: of
/// several instances starting together exactly one does, the others then
/// read what it wrote.
///
/// # Errors
/// A key does not parse or seal; store failures.
pub async fn initialize(
    store: &dyn Store,
    keks: &Keks,
    manifest: &Manifest,
    ders: &[Vec<u8>],
    secret: &[u8],
) -> Result<bool, DomainError> {
    // Refuse a set that would not load, before anything is written.
    KeySet::build(manifest.clone(), ders, 0)?;
    let rows = manifest
        .keys
        .iter()
        .zip(ders)
        .map(|(entry, der)| seal_key(keks, entry, der))
        .collect::<Result<Vec<_>, _>>()?;
    let secret = seal_secret(keks, secret)?;
    Ok(store.initialize_keys(&secret, &rows).await?)
}

/// A fresh store's first key, active at `now`, and a fresh refresh-token
/// secret. Returns the kid when this call created them.
///
/// # Errors
/// As `initialize`.
pub async fn initialize_fresh(
    store: &dyn Store,
    keks: &Keks,
    spec: KeySpec,
    now: DateTime<Utc>,
) -> Result<Option<String>, DomainError> {
    let (der, kid) = new_key(spec)?;
    let mut manifest = Manifest::default();
    manifest.add_first(kid.clone(), format!("store:{kid}"), now);
    let secret = files::new_refresh_secret()?;
    let created = initialize(store, keks, &manifest, &[der], &secret).await?;
    Ok(created.then_some(kid))
}

/// Reads and opens every key of the store into a set.
///
/// # Errors
/// A row does not open (wrong or missing KEK, altered row) or a key is
/// invalid: nothing is loaded then. Store failures.
pub async fn read_set(store: &dyn Store, keks: &Keks) -> Result<KeySet, DomainError> {
    let (version, rows) = store.list_signing_keys().await?;
    let ders = rows
        .iter()
        .map(|r| open_key(keks, r))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(KeySet::build(manifest_of(&rows), &ders, version)?)
}

/// Reads and opens the refresh-token secret.
///
/// # Errors
/// It is absent or does not open; store failures.
pub async fn read_refresh_secret(store: &dyn Store, keks: &Keks) -> Result<Vec<u8>, DomainError> {
    let s = store
        .find_key_secret(REFRESH)
        .await?
        .ok_or_else(|| KeyError::Invalid("the store holds no refresh-token secret".into()))?;
    Ok(keks.open(
        &s.sealed,
        &s.kek_id,
        &secret_aad(REFRESH),
        "the refresh-token secret",
    )?)
}

/// The rows of `manifest` whose schedule differs from `rows` (by kid), with
/// the sealed key of `new` added for a kid not stored yet.
fn changed_rows(
    rows: &[SigningKeyRecord],
    manifest: &Manifest,
    new: Option<&SigningKeyRecord>,
) -> Vec<SigningKeyRecord> {
    let by_kid: HashMap<&str, &SigningKeyRecord> =
        rows.iter().map(|r| (r.kid.as_str(), r)).collect();
    manifest
        .keys
        .iter()
        .filter_map(|e| {
            let base = by_kid
                .get(e.kid.as_str())
                .copied()
                .or(new.filter(|n| n.kid == e.kid))?;
            let mut r = base.clone();
            r.published_at = e.published_at;
            r.activates_at = e.activates_at;
            r.retires_at = e.retires_at;
            r.expires_at = e.expires_at;
            (Some(&&r) != by_kid.get(e.kid.as_str())).then_some(r)
        })
        .collect()
}

/// One key in the store's view, for `keys list`.
#[derive(Debug, Clone)]
pub struct StoredKey {
    /// Its kid and schedule; `file` is `store:<kid>`, as no file holds it.
    pub entry: ManifestEntry,
    /// Its algorithm's name.
    pub algorithm: String,
    /// Its state at the time asked.
    pub state: KeyState,
    /// The KEK it is sealed under.
    pub kek_id: String,
}

impl Services {
    fn keks(&self) -> Result<&Keks, DomainError> {
        self.keys.keks().ok_or_else(|| {
            DomainError::Keys(KeyError::Kek(
                "keys.source is \"store\" but no key-encryption key is configured: set keys.kek or keys.kek_file".into(),
            ))
        })
    }

    /// Brings this instance's ring up to date: in folder mode re-reads the
    /// folder; in store mode reads one version row and, only when it moved,
    /// every key. Returns whether the keys or their schedule changed. On any
    /// failure the ring in use is kept, so JWKS and verification go on.
    ///
    /// # Errors
    /// The folder or the store cannot be read, or a key does not open.
    pub async fn reload_keys(&self) -> Result<bool, DomainError> {
        let keks = match self.keys.source() {
            KeySource::Folder(_) | KeySource::Nothing => return Ok(self.keys.reload()?),
            KeySource::Store(keks) => keks,
        };
        let version = self.store.keys_version().await?;
        if version == self.keys.version() {
            return Ok(false);
        }
        let set = read_set(self.store.as_ref(), keks).await?;
        Ok(self.keys.install(set))
    }

    /// The store's key-ring version.
    ///
    /// # Errors
    /// Store failures.
    pub async fn store_keys_version(&self) -> Result<i64, DomainError> {
        Ok(self.store.keys_version().await?)
    }

    /// Applies `change` to the stored schedule and writes the rows it
    /// changed, recomputing when another change landed first.
    async fn change_schedule<T>(
        &self,
        new: Option<&SigningKeyRecord>,
        change: impl Fn(&mut Manifest) -> Result<T, DomainError>,
    ) -> Result<T, DomainError> {
        for _ in 0..ATTEMPTS {
            let (version, rows) = self.store.list_signing_keys().await?;
            let mut manifest = manifest_of(&rows);
            let out = change(&mut manifest)?;
            let removed: Vec<String> = manifest
                .prune(self.now(), Duration::days(7))
                .into_iter()
                .filter_map(|f| f.strip_prefix("store:").map(str::to_owned))
                .collect();
            let changed = changed_rows(&rows, &manifest, new);
            match self
                .store
                .save_signing_keys(version, &changed, &removed, None)
                .await
            {
                Ok(()) => return Ok(out),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(DomainError::Internal("key schedule kept changing under us"))
    }

    /// `keys rotate` in store mode: a new key, published now, signing from
    /// `now + activate_in`; the current key retires then. Returns its kid
    /// and activation time.
    ///
    /// # Errors
    /// No KEK; store failures.
    pub async fn rotate_stored_key(
        &self,
        spec: KeySpec,
        activate_in: Duration,
        retention: Retention,
    ) -> Result<(String, DateTime<Utc>), DomainError> {
        let keks = self.keks()?;
        if !is_initialized(self.store.as_ref()).await? {
            return Err(KeyError::Invalid(
                "the store has no keys yet: run `latchkey keys generate` or `latchkey keys import DIR`".into(),
            )
            .into());
        }
        let (der, kid) = new_key(spec)?;
        let now = self.now();
        let placeholder = ManifestEntry {
            kid: kid.clone(),
            file: format!("store:{kid}"),
            published_at: now,
            activates_at: now,
            retires_at: None,
            expires_at: None,
        };
        let sealed = seal_key(keks, &placeholder, &der)?;
        let at = self
            .change_schedule(Some(&sealed), |m| {
                if m.keys.is_empty() {
                    m.add_first(kid.clone(), placeholder.file.clone(), now);
                    return Ok(now);
                }
                m.rotate(
                    kid.clone(),
                    placeholder.file.clone(),
                    now,
                    activate_in,
                    retention,
                )
                .map_err(|e| KeyError::Invalid(e.to_string()).into())
            })
            .await?;
        Ok((kid, at))
    }

    /// `keys retire` in store mode.
    ///
    /// # Errors
    /// Unknown kid, or no other key could sign; store failures.
    pub async fn retire_stored_key(
        &self,
        kid: &str,
        immediately: bool,
        retention: Retention,
    ) -> Result<(), DomainError> {
        let now = self.now();
        self.change_schedule(None, |m| {
            m.retire(kid, now, immediately, retention)
                .map_err(|e| KeyError::Invalid(e.to_string()).into())
        })
        .await
    }

    /// `keys generate` in store mode: the first key and the refresh-token
    /// secret, on a store that has none.
    ///
    /// # Errors
    /// The store already has keys; no KEK; store failures.
    pub async fn generate_stored_key(&self, spec: KeySpec) -> Result<String, DomainError> {
        let keks = self.keks()?;
        initialize_fresh(self.store.as_ref(), keks, spec, self.now())
            .await?
            .ok_or_else(|| {
                KeyError::Invalid(
                    "keys already exist; use `latchkey keys rotate` to add one".into(),
                )
                .into()
            })
    }

    /// `keys list` in store mode: the store's keys with their states at now,
    /// and the store's version.
    ///
    /// # Errors
    /// Store failures.
    pub async fn list_stored_keys(&self) -> Result<(i64, Vec<StoredKey>), DomainError> {
        let (version, rows) = self.store.list_signing_keys().await?;
        let manifest = manifest_of(&rows);
        let now = self.now();
        let keys = rows
            .iter()
            .enumerate()
            .map(|(i, r)| StoredKey {
                entry: entry_of(r),
                algorithm: r.algorithm.clone(),
                state: manifest.state_of(i, now),
                kek_id: r.kek_id.clone(),
            })
            .collect();
        Ok((version, keys))
    }

    /// `keys rewrap`: re-seals every key and the refresh-token secret under
    /// the first configured KEK, so the others can be removed. Returns how
    /// many values it re-sealed.
    ///
    /// # Errors
    /// A value does not open under any configured KEK (nothing is written);
    /// store failures.
    pub async fn rewrap_keys(&self) -> Result<usize, DomainError> {
        let keks = self.keks()?;
        for _ in 0..ATTEMPTS {
            let (version, rows) = self.store.list_signing_keys().await?;
            let mut changed = Vec::new();
            for r in rows.iter().filter(|r| r.kek_id != keks.sealing_id()) {
                let der = open_key(keks, r)?;
                let sealed = keks.seal(&der, &key_aad(&r.kid, &r.algorithm))?;
                let mut r = r.clone();
                r.sealed = sealed.bytes;
                r.kek_id = sealed.kek_id;
                changed.push(r);
            }
            let secret = match self.store.find_key_secret(REFRESH).await? {
                Some(s) if s.kek_id != keks.sealing_id() => Some(seal_secret(
                    keks,
                    &read_refresh_secret(self.store.as_ref(), keks).await?,
                )?),
                _ => None,
            };
            let count = changed.len() + usize::from(secret.is_some());
            if count == 0 {
                return Ok(0);
            }
            match self
                .store
                .save_signing_keys(version, &changed, &[], secret.as_ref())
                .await
            {
                Ok(()) => return Ok(count),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(DomainError::Internal("key schedule kept changing under us"))
    }

    /// `keys import DIR`: moves a keys folder (its keys with their kids and
    /// schedule, and its refresh-token secret) into a store that has no keys
    /// yet, so every token the folder's keys signed and every refresh token
    /// derived under its secret stay valid. Returns the kids imported.
    ///
    /// # Errors
    /// The folder is invalid or has no refresh-token secret; the store
    /// already has keys; store failures.
    pub async fn import_keys(&self, dir: &Path) -> Result<Vec<String>, DomainError> {
        let keks = self.keks()?;
        let (manifest, _) = files::read_manifest(dir)?;
        if manifest.keys.is_empty() {
            return Err(KeyError::Invalid(format!(
                "{} has no keys (no keys.toml, or an empty one)",
                dir.display()
            ))
            .into());
        }
        let ders = manifest
            .keys
            .iter()
            .map(|e| files::read_private_der(&dir.join(&e.file)))
            .collect::<Result<Vec<_>, _>>()?;
        let secret = files::load_refresh_secret(dir)?.ok_or_else(|| {
            KeyError::Invalid(format!(
                "{} has no refresh.secret: importing without it would end every session",
                dir.display()
            ))
        })?;
        if !initialize(self.store.as_ref(), keks, &manifest, &ders, &secret).await? {
            return Err(KeyError::Invalid(
                "the store already holds keys; import only into a store that has none".into(),
            )
            .into());
        }
        Ok(manifest.keys.into_iter().map(|k| k.kid).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).expect("time")
    }

    fn row(kid: &str, at: i64) -> SigningKeyRecord {
        SigningKeyRecord {
            kid: kid.into(),
            algorithm: "ES256".into(),
            sealed: vec![1, 2, 3],
            kek_id: "k".into(),
            published_at: t(at),
            activates_at: t(at),
            retires_at: None,
            expires_at: None,
        }
    }

    #[test]
    fn only_rows_whose_schedule_moved_are_written() {
        let rows = vec![row("a", 0), row("b", 10)];
        let mut m = manifest_of(&rows);
        assert!(changed_rows(&rows, &m, None).is_empty());
        m.keys[0].retires_at = Some(t(50));
        let changed = changed_rows(&rows, &m, None);
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].kid, "a");
        assert_eq!(changed[0].sealed, vec![1, 2, 3]);
    }

    #[test]
    fn a_new_key_is_written_with_its_sealed_bytes() {
        let rows = vec![row("a", 0)];
        let mut m = manifest_of(&rows);
        let new = row("n", 100);
        m.keys.push(entry_of(&new));
        let changed = changed_rows(&rows, &m, Some(&new));
        assert_eq!(changed, vec![new]);
    }
}
