//! The PostgreSQL store's sealed signing keys and refresh-token secret.

use super::*;
use crate::store::{KeyStore, SealedSecret, SigningKeyRecord};

#[derive(FromRow)]
struct KeyRow {
    kid: String,
    algorithm: String,
    sealed: Vec<u8>,
    kek_id: String,
    published_at: DateTime<Utc>,
    activates_at: DateTime<Utc>,
    retires_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
}

impl From<KeyRow> for SigningKeyRecord {
    fn from(r: KeyRow) -> Self {
        Self {
            kid: r.kid,
            algorithm: r.algorithm,
            sealed: r.sealed,
            kek_id: r.kek_id,
            published_at: r.published_at,
            activates_at: r.activates_at,
            retires_at: r.retires_at,
            expires_at: r.expires_at,
        }
    }
}

const UPSERT_KEY: &str = "INSERT INTO signing_keys (kid, algorithm, sealed, kek_id, published_at, activates_at, retires_at, expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
     ON CONFLICT (kid) DO UPDATE SET algorithm = EXCLUDED.algorithm, sealed = EXCLUDED.sealed, kek_id = EXCLUDED.kek_id, \
     published_at = EXCLUDED.published_at, activates_at = EXCLUDED.activates_at, retires_at = EXCLUDED.retires_at, expires_at = EXCLUDED.expires_at";

async fn upsert_keys(
    tx: &mut Transaction<'_, Postgres>,
    keys: &[SigningKeyRecord],
) -> Result<(), StoreError> {
    for k in keys {
        sqlx::query(UPSERT_KEY)
            .bind(&k.kid)
            .bind(&k.algorithm)
            .bind(&k.sealed)
            .bind(&k.kek_id)
            .bind(k.published_at)
            .bind(k.activates_at)
            .bind(k.retires_at)
            .bind(k.expires_at)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

#[async_trait]
impl KeyStore for PgStore {
    async fn keys_version(&self) -> Result<i64, StoreError> {
        let (version,): (i64,) =
            sqlx::query_as("SELECT version FROM change_markers WHERE name = 'keys'")
                .fetch_one(&self.pool)
                .await?;
        Ok(version)
    }

    async fn list_signing_keys(&self) -> Result<(i64, Vec<SigningKeyRecord>), StoreError> {
        let version = self.keys_version().await?;
        let rows: Vec<KeyRow> = sqlx::query_as(
            "SELECT kid, algorithm, sealed, kek_id, published_at, activates_at, retires_at, expires_at \
             FROM signing_keys ORDER BY published_at, kid",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok((version, rows.into_iter().map(Into::into).collect()))
    }

    async fn find_key_secret(&self, name: &str) -> Result<Option<SealedSecret>, StoreError> {
        let row: Option<(String, Vec<u8>, String)> =
            sqlx::query_as("SELECT name, sealed, kek_id FROM key_secrets WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(name, sealed, kek_id)| SealedSecret {
            name,
            sealed,
            kek_id,
        }))
    }

    async fn initialize_keys(
        &self,
        secret: &SealedSecret,
        keys: &[SigningKeyRecord],
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        // A second initialiser waits here for the first one's commit, then
        // finds the row and does nothing.
        let inserted = sqlx::query(
            "INSERT INTO key_secrets (name, sealed, kek_id) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&secret.name)
        .bind(&secret.sealed)
        .bind(&secret.kek_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(false);
        }
        upsert_keys(&mut tx, keys).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn save_signing_keys(
        &self,
        expected: i64,
        keys: &[SigningKeyRecord],
        removed: &[String],
        secret: Option<&SealedSecret>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // Compare-and-set on the version row: its row lock orders concurrent
        // changes, and a change computed from a stale schedule is refused.
        let current = sqlx::query(
            "UPDATE change_markers SET version = version + 1 WHERE name = 'keys' AND version = $1",
        )
        .bind(expected)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if current == 0 {
            return Err(StoreError::Conflict);
        }
        upsert_keys(&mut tx, keys).await?;
        for kid in removed {
            sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
                .bind(kid)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(s) = secret {
            sqlx::query("UPDATE key_secrets SET sealed = $2, kek_id = $3 WHERE name = $1")
                .bind(&s.name)
                .bind(&s.sealed)
                .bind(&s.kek_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
