//! The SQLite store's single-use JWT ids.

use super::*;

#[async_trait]
impl ReplayStore for SqliteStore {
    async fn remember_jti(
        &self,
        namespace: &str,
        jti_digest: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await?;
        // One writer at a time: the conflict decides, and a row that already
        // expired (by the host's clock) may be taken over.
        let row: Option<(i64,)> = sqlx::query_as(&format!(
            "INSERT INTO used_jtis (namespace, jti, expires_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (namespace, jti) DO UPDATE SET expires_at = excluded.expires_at \
               WHERE used_jtis.expires_at <= {DB_NOW_MS} \
             RETURNING 1"
        ))
        .bind(namespace)
        .bind(jti_digest)
        .bind(ms(expires_at))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    async fn purge_used_jtis(&self, before: DateTime<Utc>, batch: i64) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await?;
        let n = sqlx::query(
            "DELETE FROM used_jtis WHERE rowid IN ( \
               SELECT rowid FROM used_jtis WHERE expires_at <= ?1 LIMIT ?2)",
        )
        .bind(ms(before))
        .bind(batch)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n)
    }
}
