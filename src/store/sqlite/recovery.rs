//! The SQLite store's email tokens and verified addresses.

use super::*;

/// A reset token works only while the password is the one it was issued
/// under; a verification token has no binding.
const STILL_BOUND: &str = "(bound_hash IS NULL OR bound_hash = \
     (SELECT password_hash FROM users WHERE users.id = email_tokens.user_id))";

#[async_trait]
impl RecoveryStore for SqliteStore {
    async fn insert_email_token(
        &self,
        token: &EmailTokenRecord,
        mail: &MailMessage,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await?;
        let mut tx = self.pool.begin().await?;
        Self::replace_token_in(&mut tx, token).await?;
        Self::enqueue_in(&mut tx, mail).await?;
        Ok(tx.commit().await?)
    }

    async fn find_email_token(
        &self,
        digest: &[u8],
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<Option<UserId>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as(&format!(
            "SELECT user_id FROM email_tokens WHERE digest = ?1 AND purpose = ?2 \
             AND used_at IS NULL AND expires_at > ?3 AND {STILL_BOUND}"
        ))
        .bind(digest)
        .bind(purpose.as_str())
        .bind(ms(now))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(id,)| uuid(&id).map(UserId)).transpose()
    }

    async fn consume_email_token(
        &self,
        digest: &[u8],
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<Option<UserId>, StoreError> {
        let _turn = self.write_turn().await?;
        let mut tx = self.pool.begin().await?;
        let user = Self::consume_in(&mut tx, digest, purpose, now).await?;
        tx.commit().await?;
        Ok(user)
    }

    async fn verify_email_with_token(
        &self,
        digest: &[u8],
        now: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<Option<UserId>, StoreError> {
        let _turn = self.write_turn().await?;
        let mut tx = self.pool.begin().await?;
        let Some(user) = Self::consume_in(&mut tx, digest, TokenPurpose::VerifyEmail, now).await?
        else {
            return Ok(None);
        };
        sqlx::query("UPDATE users SET email_verified = 1 WHERE id = ?1")
            .bind(user.to_string())
            .execute(&mut *tx)
            .await?;
        let mut ev = audit.clone();
        ev.user_id = Some(user);
        Self::audit_in(&mut tx, &ev).await?;
        tx.commit().await?;
        Ok(Some(user))
    }

    async fn set_email_verified(&self, id: UserId, audit: &AuditEvent) -> Result<(), StoreError> {
        let _turn = self.write_turn().await?;
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE users SET email_verified = 1 WHERE id = ?1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Self::audit_in(&mut tx, audit).await?;
        Ok(tx.commit().await?)
    }

    async fn purge_email_tokens(
        &self,
        before: DateTime<Utc>,
        batch: i64,
    ) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await?;
        let done = sqlx::query(
            "DELETE FROM email_tokens WHERE digest IN \
             (SELECT digest FROM email_tokens WHERE expires_at < ?1 LIMIT ?2)",
        )
        .bind(ms(before))
        .bind(batch)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

impl SqliteStore {
    async fn consume_in(
        tx: &mut Transaction<'_, Sqlite>,
        digest: &[u8],
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<Option<UserId>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as(&format!(
            "UPDATE email_tokens SET used_at = ?3 WHERE digest = ?1 AND purpose = ?2 \
             AND used_at IS NULL AND expires_at > ?3 AND {STILL_BOUND} RETURNING user_id"
        ))
        .bind(digest)
        .bind(purpose.as_str())
        .bind(ms(now))
        .fetch_optional(&mut **tx)
        .await?;
        row.map(|(id,)| uuid(&id).map(UserId)).transpose()
    }

    /// Voids the user's unused tokens of `token`'s purpose and stores it,
    /// inside `tx`: only the newest link works.
    pub(super) async fn replace_token_in(
        tx: &mut Transaction<'_, Sqlite>,
        token: &EmailTokenRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM email_tokens WHERE user_id = ?1 AND purpose = ?2 AND used_at IS NULL",
        )
        .bind(token.user_id.to_string())
        .bind(token.purpose.as_str())
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "INSERT INTO email_tokens (digest, user_id, purpose, bound_hash, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .bind(&token.digest)
        .bind(token.user_id.to_string())
        .bind(token.purpose.as_str())
        .bind(&token.bound_hash)
        .bind(ms(token.created_at))
        .bind(ms(token.expires_at))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    pub(super) async fn enqueue_in(
        tx: &mut Transaction<'_, Sqlite>,
        m: &MailMessage,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO outbox (id, recipient, subject, body_text, body_html, created_at, next_attempt_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        )
        .bind(m.id.to_string())
        .bind(&m.recipient)
        .bind(&m.subject)
        .bind(&m.body_text)
        .bind(&m.body_html)
        .bind(ms(m.created_at))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}
