//! The SQLite store's user accounts.

use super::*;

#[async_trait]
impl UserStore for SqliteStore {
    async fn insert_user(&self, u: &UserRecord) -> Result<(), StoreError> {
        let _turn = self.write_turn().await?;
        sqlx::query("INSERT INTO users (id, email, password_hash, disabled, credentials_version, email_verified, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
            .bind(u.id.to_string())
            .bind(&u.email)
            .bind(&u.password_hash)
            .bind(u.disabled)
            .bind(u.credentials_version)
            .bind(u.email_verified)
            .bind(ms(u.created_at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        let row: Option<UserRow> = sqlx::query_as(
            "SELECT id, email, password_hash, disabled, credentials_version, email_verified, created_at FROM users WHERE email = ?1",
        )
        .bind(email)
        .fetch_optional(&self.pool)
        .await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn find_user(&self, id: UserId) -> Result<Option<UserRecord>, StoreError> {
        let row: Option<UserRow> = sqlx::query_as(
            "SELECT id, email, password_hash, disabled, credentials_version, email_verified, created_at FROM users WHERE id = ?1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn page_users(
        &self,
        after: Option<PageAfter<UserId>>,
        email_prefix: Option<&str>,
        limit: i64,
    ) -> Result<Vec<UserRecord>, StoreError> {
        // `substr` compares the prefix literally, where LIKE would read `%`
        // and `_` in it as wildcards.
        let rows: Vec<UserRow> = sqlx::query_as(
            "SELECT id, email, password_hash, disabled, credentials_version, email_verified, created_at FROM users \
             WHERE (?1 IS NULL OR (created_at, id) > (?1, ?2)) \
             AND (?3 IS NULL OR substr(email, 1, length(?3)) = ?3) \
             ORDER BY created_at, id LIMIT ?4",
        )
        .bind(after.map(|a| ms(a.created_at)))
        .bind(after.map(|a| a.id.to_string()))
        .bind(email_prefix)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn set_user_disabled(
        &self,
        id: UserId,
        disabled: bool,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await?;
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE users SET disabled = ?2, \
             credentials_version = credentials_version + CASE WHEN ?2 THEN 1 ELSE 0 END \
             WHERE id = ?1",
        )
        .bind(id.to_string())
        .bind(disabled)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        if disabled {
            Self::end_user_sessions(&mut tx, id, None, audit.at, RevokeReason::UserDisabled)
                .await?;
        }
        Self::audit_in(&mut tx, audit).await?;
        Ok(tx.commit().await?)
    }

    async fn update_password(
        &self,
        id: UserId,
        password_hash: &str,
        expected_version: Option<i64>,
        keep: Option<SessionId>,
        audit: &AuditEvent,
    ) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await?;
        let mut tx = self.pool.begin().await?;
        // The user row first: on PostgreSQL its lock orders this change
        // against every login's `start_session`, which locks it too.
        let done = sqlx::query(
            "UPDATE users SET password_hash = ?2, credentials_version = credentials_version + 1 \
             WHERE id = ?1 AND (?3 IS NULL OR credentials_version = ?3)",
        )
        .bind(id.to_string())
        .bind(password_hash)
        .bind(expected_version)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            let exists: Option<(i64,)> =
                sqlx::query_as("SELECT credentials_version FROM users WHERE id = ?1")
                    .bind(id.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
            return Err(match exists {
                Some(_) => StoreError::Conflict,
                None => StoreError::NotFound,
            });
        }
        let revoked =
            Self::end_user_sessions(&mut tx, id, keep, audit.at, RevokeReason::PasswordChanged)
                .await?;
        Self::audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    async fn upgrade_password_hash(
        &self,
        id: UserId,
        old_hash: &str,
        new_hash: &str,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await?;
        let done =
            sqlx::query("UPDATE users SET password_hash = ?3 WHERE id = ?1 AND password_hash = ?2")
                .bind(id.to_string())
                .bind(old_hash)
                .bind(new_hash)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }
}
