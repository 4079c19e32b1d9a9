//! The PostgreSQL store's audit log.

use super::*;

#[async_trait]
impl AuditStore for PgStore {
    async fn insert_audit(&self, ev: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        Self::audit_in(&mut tx, ev).await?;
        Ok(tx.commit().await?)
    }

    async fn list_audit(
        &self,
        user: Option<UserId>,
        since: Option<DateTime<Utc>>,
        limit: i64,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT at, kind, user_id, client_id, session_id, reason, address FROM audit_events \
             WHERE ($1::uuid IS NULL OR user_id = $1) AND ($2::timestamptz IS NULL OR at >= $2) \
             ORDER BY at DESC, id DESC LIMIT $3",
        )
        .bind(user.map(|u| u.0))
        .bind(since)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn purge_audit(&self, before: DateTime<Utc>, batch: i64) -> Result<u64, StoreError> {
        // Bounded, oldest first, and SKIP LOCKED so that instances purging at
        // the same moment share the work instead of queueing on each other.
        let n = sqlx::query(
            "DELETE FROM audit_events WHERE id IN ( \
               SELECT id FROM audit_events WHERE at < $1 \
               ORDER BY at LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )
        .bind(before)
        .bind(batch)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n)
    }
}
