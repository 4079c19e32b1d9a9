//! The PostgreSQL store's authorization-code flow: browser sessions, codes and
//! consents.

use super::*;

const BROWSER_COLUMNS: &str =
    "id_hash, user_id, auth_time, credentials_version, last_seen_at, expires_at, revoked_at";
const CODE_COLUMNS: &str = "code_hash, client_id, user_id, redirect_uri, code_challenge, nonce, \
                            scope, auth_time, credentials_version, expires_at, used_at, session_id, \
                            dpop_jkt";

#[async_trait]
impl AuthorizationStore for PgStore {
    async fn insert_browser_session(&self, s: &BrowserSessionRecord) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO browser_sessions ({BROWSER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(&s.id_hash)
        .bind(s.user_id.0)
        .bind(s.auth_time)
        .bind(s.credentials_version)
        .bind(s.last_seen_at)
        .bind(s.expires_at)
        .bind(s.revoked_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn touch_browser_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
        idle_cutoff: DateTime<Utc>,
    ) -> Result<Option<BrowserSessionRecord>, StoreError> {
        let row: Option<BrowserSessionRow> = sqlx::query_as(&format!(
            "UPDATE browser_sessions SET last_seen_at = $2 \
             WHERE id_hash = $1 AND revoked_at IS NULL AND expires_at > $2 AND last_seen_at > $3 \
               AND user_id IN (SELECT id FROM users WHERE NOT disabled \
                 AND credentials_version = browser_sessions.credentials_version) \
             RETURNING {BROWSER_COLUMNS}"
        ))
        .bind(id_hash)
        .bind(now)
        .bind(idle_cutoff)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Into::into))
    }

    async fn end_browser_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE browser_sessions SET revoked_at = $2 WHERE id_hash = $1 AND revoked_at IS NULL",
        )
        .bind(id_hash)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_authorization_code(
        &self,
        c: &AuthorizationCodeRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO authorization_codes ({CODE_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(&c.code_hash)
        .bind(c.client_id.0)
        .bind(c.user_id.0)
        .bind(&c.redirect_uri)
        .bind(&c.code_challenge)
        .bind(&c.nonce)
        .bind(&c.scope)
        .bind(c.auth_time)
        .bind(c.credentials_version)
        .bind(c.expires_at)
        .bind(c.used_at)
        .bind(c.session_id.map(|s| s.0))
        .bind(&c.dpop_jkt)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn find_authorization_code(
        &self,
        code_hash: &str,
    ) -> Result<Option<AuthorizationCodeRecord>, StoreError> {
        let row: Option<CodeRow> = sqlx::query_as(&format!(
            "SELECT {CODE_COLUMNS} FROM authorization_codes WHERE code_hash = $1"
        ))
        .bind(code_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Into::into))
    }

    async fn consume_authorization_code(
        &self,
        code_hash: &str,
        session: SessionId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE authorization_codes SET used_at = $3, session_id = $2 \
             WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $3",
        )
        .bind(code_hash)
        .bind(session.0)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn upsert_consent(&self, c: &ConsentRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO consents (user_id, client_id, scope, granted_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
        )
        .bind(c.user_id.0)
        .bind(c.client_id.0)
        .bind(&c.scope)
        .bind(c.granted_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn find_consent(
        &self,
        user: UserId,
        client: ClientId,
    ) -> Result<Option<ConsentRecord>, StoreError> {
        let row: Option<ConsentRow> = sqlx::query_as(
            "SELECT user_id, client_id, scope, granted_at FROM consents WHERE user_id = $1 AND client_id = $2",
        )
        .bind(user.0)
        .bind(client.0)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Into::into))
    }

    async fn list_consents(&self, user: UserId) -> Result<Vec<ConsentRecord>, StoreError> {
        let rows: Vec<ConsentRow> = sqlx::query_as(
            "SELECT user_id, client_id, scope, granted_at FROM consents WHERE user_id = $1 \
             ORDER BY granted_at DESC LIMIT 100",
        )
        .bind(user.0)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn delete_consent(
        &self,
        user: UserId,
        client: ClientId,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM consents WHERE user_id = $1 AND client_id = $2")
            .bind(user.0)
            .bind(client.0)
            .execute(&mut *tx)
            .await?;
        let deleted = done.rows_affected() == 1;
        if deleted {
            sqlx::query(
                "UPDATE sessions SET revoked_at = $3, revoked_reason = $4 \
                 WHERE user_id = $1 AND client_id = $2 AND revoked_at IS NULL",
            )
            .bind(user.0)
            .bind(client.0)
            .bind(audit.at)
            .bind(RevokeReason::ConsentWithdrawn.as_str())
            .execute(&mut *tx)
            .await?;
            Self::audit_in(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }
}
