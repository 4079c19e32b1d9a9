//! The PostgreSQL store's email tokens and verified addresses.

use super::*;

/// A reset token works only while the password is the one it was issued
/// under; a verification token has no binding.
const STILL_BOUND: &str = "(bound_hash IS NULL OR bound_hash = \
     (SELECT password_hash FROM users WHERE users.id = email_tokens.user_id))";

#[async_trait]
impl RecoveryStore for PgStore {
    async fn insert_email_token(
        &self,
        token: &EmailTokenRecord,
        mail: &MailMessage,
    ) -> Result<(), StoreError> {
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
        let row: Option<(Uuid,)> = sqlx::query_as(&format!(
            "SELECT user_id FROM email_tokens WHERE digest = $1 AND purpose = $2 \
             AND used_at IS NULL AND expires_at > $3 AND {STILL_BOUND}"
        ))
        .bind(digest)
        .bind(purpose.as_str())
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(id,)| UserId(id)))
    }

    async fn consume_email_token(
        &self,
        digest: &[u8],
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<Option<UserId>, StoreError> {
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
        let mut tx = self.pool.begin().await?;
        let Some(user) = Self::consume_in(&mut tx, digest, TokenPurpose::VerifyEmail, now).await?
        else {
            return Ok(None);
        };
        sqlx::query("UPDATE users SET email_verified = true WHERE id = $1")
            .bind(user.0)
            .execute(&mut *tx)
            .await?;
        let mut ev = audit.clone();
        ev.user_id = Some(user);
        Self::audit_in(&mut tx, &ev).await?;
        tx.commit().await?;
        Ok(Some(user))
    }

    async fn set_email_verified(&self, id: UserId, audit: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE users SET email_verified = true WHERE id = $1")
            .bind(id.0)
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
        let done = sqlx::query(
            "DELETE FROM email_tokens WHERE digest IN \
             (SELECT digest FROM email_tokens WHERE expires_at < $1 LIMIT $2)",
        )
        .bind(before)
        .bind(batch)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

impl PgStore {
    /// Under READ COMMITTED, a second concurrent use waits for the first
    /// one's row lock, then re-checks `used_at IS NULL` against the
    /// committed row and matches nothing: exactly one use wins.
    async fn consume_in(
        tx: &mut Transaction<'_, Postgres>,
        digest: &[u8],
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<Option<UserId>, StoreError> {
        let row: Option<(Uuid,)> = sqlx::query_as(&format!(
            "UPDATE email_tokens SET used_at = $3 WHERE digest = $1 AND purpose = $2 \
             AND used_at IS NULL AND expires_at > $3 AND {STILL_BOUND} RETURNING user_id"
        ))
        .bind(digest)
        .bind(purpose.as_str())
        .bind(now)
        .fetch_optional(&mut **tx)
        .await?;
        Ok(row.map(|(id,)| UserId(id)))
    }

    /// Voids the user's unused tokens of `token`'s purpose and stores it,
    /// inside `tx`: only the newest link works.
    pub(super) async fn replace_token_in(
        tx: &mut Transaction<'_, Postgres>,
        token: &EmailTokenRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM email_tokens WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
        )
        .bind(token.user_id.0)
        .bind(token.purpose.as_str())
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "INSERT INTO email_tokens (digest, user_id, purpose, bound_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&token.digest)
        .bind(token.user_id.0)
        .bind(token.purpose.as_str())
        .bind(&token.bound_hash)
        .bind(token.created_at)
        .bind(token.expires_at)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    pub(super) async fn enqueue_in(
        tx: &mut Transaction<'_, Postgres>,
        m: &MailMessage,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO outbox (id, recipient, subject, body_text, body_html, created_at, next_attempt_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(m.id)
        .bind(&m.recipient)
        .bind(&m.subject)
        .bind(&m.body_text)
        .bind(&m.body_html)
        .bind(m.created_at)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}
