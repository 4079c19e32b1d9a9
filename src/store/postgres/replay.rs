//! The PostgreSQL store's single-use JWT ids.

use super::*;

#[async_trait]
impl ReplayStore for PgStore {
    async fn remember_jti(
        &self,
        namespace: &str,
        jti_digest: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        // A racing second insert waits for the first one's commit, then sees
        // the conflict and re-checks the `WHERE` against the committed row:
        // exactly one caller gets a row back. A row that already expired (by
        // the database's clock) may be taken over instead of waiting for the
        // purge.
        let row: Option<(i32,)> = sqlx::query_as(&format!(
            "INSERT INTO used_jtis (namespace, jti, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (namespace, jti) DO UPDATE SET expires_at = EXCLUDED.expires_at \
               WHERE used_jtis.expires_at <= {DB_NOW} \
             RETURNING 1"
        ))
        .bind(namespace)
        .bind(jti_digest)
        .bind(expires_at)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    async fn purge_used_jtis(&self, before: DateTime<Utc>, batch: i64) -> Result<u64, StoreError> {
        let n = sqlx::query(
            "DELETE FROM used_jtis WHERE (namespace, jti) IN ( \
               SELECT namespace, jti FROM used_jtis WHERE expires_at <= $1 \
                 LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )
        .bind(before)
        .bind(batch)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n)
    }
}
