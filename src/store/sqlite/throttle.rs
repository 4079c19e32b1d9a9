//! The SQLite store's failed-login counters.

use super::*;

#[async_trait]
impl ThrottleStore for SqliteStore {
    async fn reserve_login_attempt(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window_secs: i64,
    ) -> Result<FailureCount, StoreError> {
        let _turn = self.write_turn().await?;
        let row: FailureRow = sqlx::query_as(
            "INSERT INTO login_failures (key, failures, window_started_at) VALUES (?1, 1, ?2) \
             ON CONFLICT (key) DO UPDATE SET \
               failures = CASE WHEN locked_until > ?2 THEN failures \
                               WHEN window_started_at <= ?2 - ?3 THEN 1 ELSE failures + 1 END, \
               window_started_at = CASE WHEN locked_until > ?2 THEN window_started_at \
                               WHEN window_started_at <= ?2 - ?3 THEN ?2 ELSE window_started_at END \
             RETURNING failures, window_started_at, lockouts, locked_until",
        )
        .bind(key)
        .bind(ms(now))
        .bind(window_secs.saturating_mul(1000))
        .fetch_one(&self.pool)
        .await?;
        row.try_into()
    }

    async fn login_failures(&self, key: &str) -> Result<Option<FailureCount>, StoreError> {
        let row: Option<FailureRow> = sqlx::query_as(
            "SELECT failures, window_started_at, lockouts, locked_until FROM login_failures WHERE key = ?1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn lock_login_failures(&self, key: &str, lock: &Lockout) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await?;
        let done = sqlx::query(
            "UPDATE login_failures SET failures = 0, window_started_at = ?2, lockouts = ?3, locked_until = ?4 \
             WHERE key = ?1 AND failures >= ?5 AND lockouts = ?6",
        )
        .bind(key)
        .bind(ms(lock.now))
        .bind(lock.lockouts)
        .bind(ms(lock.until))
        .bind(lock.max_failures)
        .bind(lock.seen_lockouts)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_login_attempt(&self, key: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn().await?;
        sqlx::query(
            "UPDATE login_failures SET failures = failures - 1 WHERE key = ?1 AND failures > 0",
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
        let _turn = self.write_turn().await?;
        let n = sqlx::query(
            "DELETE FROM login_failures WHERE key IN ( \
               SELECT key FROM login_failures WHERE window_started_at <= ?1 \
                 AND (locked_until IS NULL OR locked_until <= ?2) LIMIT ?3)",
        )
        .bind(ms(window_before))
        .bind(ms(quiet_before))
        .bind(batch)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n)
    }

    async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn().await?;
        sqlx::query("DELETE FROM login_failures WHERE key = ?1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
