//! The SQLite store's outbox. SQLite admits one writer at a time, so the
//! claiming `UPDATE … WHERE id IN (SELECT … LIMIT n)` runs whole before any
//! other sender's: the equivalent of PostgreSQL's `FOR UPDATE SKIP LOCKED`.

use super::*;

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn enqueue_mail(&self, mail: &MailMessage) -> Result<(), StoreError> {
        let _turn = self.write_turn().await?;
        let mut tx = self.pool.begin().await?;
        Self::enqueue_in(&mut tx, mail).await?;
        Ok(tx.commit().await?)
    }

    async fn enqueue_mail_request(
        &self,
        id: Uuid,
        email: &str,
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await?;
        sqlx::query(
            "INSERT INTO outbox (id, recipient, subject, body_text, body_html, created_at, next_attempt_at, request) \
             VALUES (?1, ?2, '', '', '', ?3, ?3, ?4)",
        )
        .bind(id.to_string())
        .bind(email)
        .bind(ms(now))
        .bind(purpose.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn resolve_mail_request(
        &self,
        claim: Uuid,
        token: &EmailTokenRecord,
        mail: &MailMessage,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await?;
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE outbox SET subject = ?3, body_text = ?4, body_html = ?5, request = NULL \
             WHERE id = ?1 AND claim = ?2 AND request IS NOT NULL",
        )
        .bind(mail.id.to_string())
        .bind(claim.to_string())
        .bind(&mail.subject)
        .bind(&mail.body_text)
        .bind(&mail.body_html)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        // A request resolved late (another instance had the newer one) must
        // not bring back a link the newer request voided: it is dropped.
        let newer: Option<(i32,)> = sqlx::query_as(
            "SELECT 1 FROM email_tokens WHERE user_id = ?1 AND purpose = ?2 AND created_at > ?3 LIMIT 1",
        )
        .bind(token.user_id.to_string())
        .bind(token.purpose.as_str())
        .bind(ms(token.created_at))
        .fetch_optional(&mut *tx)
        .await?;
        if newer.is_some() {
            sqlx::query("DELETE FROM outbox WHERE id = ?1")
                .bind(mail.id.to_string())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(false);
        }
        Self::replace_token_in(&mut tx, token).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn drop_mail_request(&self, id: Uuid, claim: Uuid) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await?;
        let done =
            sqlx::query("DELETE FROM outbox WHERE id = ?1 AND claim = ?2 AND request IS NOT NULL")
                .bind(id.to_string())
                .bind(claim.to_string())
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn claim_mail(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        batch: i64,
    ) -> Result<Vec<ClaimedMail>, StoreError> {
        let _turn = self.write_turn().await?;
        let claim = Uuid::new_v4();
        let rows: Vec<OutboxRow> = sqlx::query_as(
            "UPDATE outbox SET claim = ?3, claimed_until = ?2, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL \
                AND next_attempt_at <= ?1 AND (claimed_until IS NULL OR claimed_until <= ?1) \
                ORDER BY next_attempt_at LIMIT ?4) \
             RETURNING id, recipient, subject, body_text, body_html, created_at, attempts, claim, request",
        )
        .bind(ms(now))
        .bind(ms(lease_until))
        .bind(claim.to_string())
        .bind(batch)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn mark_mail_sent(
        &self,
        id: Uuid,
        claim: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await?;
        let done = sqlx::query(
            "UPDATE outbox SET sent_at = ?3, claim = NULL, claimed_until = NULL, \
             body_text = '', body_html = '' WHERE id = ?1 AND claim = ?2",
        )
        .bind(id.to_string())
        .bind(claim.to_string())
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn mark_mail_failed(
        &self,
        id: Uuid,
        claim: Uuid,
        now: DateTime<Utc>,
        retry_at: Option<DateTime<Utc>>,
        error: &str,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await?;
        let done = sqlx::query(
            "UPDATE outbox SET claim = NULL, claimed_until = NULL, last_error = ?4, \
               next_attempt_at = COALESCE(?5, next_attempt_at), \
               failed_at = CASE WHEN ?5 IS NULL THEN ?3 ELSE NULL END, \
               body_text = CASE WHEN ?5 IS NULL THEN '' ELSE body_text END, \
               body_html = CASE WHEN ?5 IS NULL THEN '' ELSE body_html END \
             WHERE id = ?1 AND claim = ?2",
        )
        .bind(id.to_string())
        .bind(claim.to_string())
        .bind(ms(now))
        .bind(error)
        .bind(retry_at.map(ms))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        let (pending, sent, failed): (i64, i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE sent_at IS NULL AND failed_at IS NULL), \
                    count(*) FILTER (WHERE sent_at IS NOT NULL), \
                    count(*) FILTER (WHERE failed_at IS NOT NULL) FROM outbox",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(OutboxCounts {
            pending,
            sent,
            failed,
        })
    }

    async fn purge_outbox(&self, before: DateTime<Utc>, batch: i64) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await?;
        let done = sqlx::query(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox \
             WHERE COALESCE(sent_at, failed_at) < ?1 LIMIT ?2)",
        )
        .bind(ms(before))
        .bind(batch)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
