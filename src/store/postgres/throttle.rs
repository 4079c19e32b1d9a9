//! The PostgreSQL store's failed-login counters.

use super::*;

#[async_trait]
impl ThrottleStore for PgStore {
    async fn reserve_login_attempt(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window_secs: i64,
    ) -> Result<FailureCount, StoreError> {
        let row: FailureRow = sqlx::query_as(
            "INSERT INTO login_failures (key, failures, window_started_at) VALUES ($1, 1, $2) \
             ON CONFLICT (key) DO UPDATE SET \
               failures = CASE WHEN login_failures.locked_until > $2 THEN login_failures.failures \
                               WHEN login_failures.window_started_at <= $2 - make_interval(secs => $3) \
                               THEN 1 ELSE login_failures.failures + 1 END, \
               window_started_at = CASE WHEN login_failures.locked_until > $2 THEN login_failures.window_started_at \
                               WHEN login_failures.window_started_at <= $2 - make_interval(secs => $3) \
                               THEN $2 ELSE login_failures.window_started_at END \
             RETURNING failures, window_started_at, lockouts, locked_until",
        )
        .bind(key)
        .bind(now)
        .bind(window_secs as f64)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.into())
    }

    async fn login_failures(&self, key: &str) -> Result<Option<FailureCount>, StoreError> {
        let row: Option<FailureRow> = sqlx::query_as(
            "SELECT failures, window_started_at, lockouts, locked_until FROM login_failures WHERE key = $1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Into::into))
    }

    async fn lock_login_failures(&self, key: &str, lock: &Lockout) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE login_failures SET failures = 0, window_started_at = $2, lockouts = $3, locked_until = $4 \
             WHERE key = $1 AND failures >= $5 AND lockouts = $6",
        )
        .bind(key)
        .bind(lock.now)
        .bind(lock.lockouts)
        .bind(lock.until)
        .bind(lock.max_failures)
        .bind(lock.seen_lockouts)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_login_attempt(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE login_failures SET failures = failures - 1 WHERE key = $1 AND failures > 0",
        )
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn purge_login_failures(
        &self,
        window_before: DateTime<Utc>,
        quiet_before: DateTime<Utc>,
        batch: i64,
    ) -> Result<u64, StoreError> {
        let n = sqlx::query(
            "DELETE FROM login_failures WHERE key IN ( \
               SELECT key FROM login_failures WHERE window_started_at <= $1 \
                 AND (locked_until IS NULL OR locked_until <= $2) LIMIT $3 FOR UPDATE SKIP LOCKED)",
        )
        .bind(window_before)
        .bind(quiet_before)
        .bind(batch)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n)
    }

    async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_failures WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
