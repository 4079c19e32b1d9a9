//! The PostgreSQL store's sessions: insert, rotation, revocation, listing, purge.

use super::*;

#[async_trait]
impl SessionStore for PgStore {
    async fn start_session(
        &self,
        s: &SessionRecord,
        credentials_version: i64,
    ) -> Result<bool, StoreError> {
        // FOR SHARE waits for a credential change in flight (it holds the
        // user row) and then re-reads the row, so this insert either commits
        // before the change's revocation runs (and is revoked by it) or sees
        // the bumped version and inserts nothing. The client row is locked
        // the same way against a delete or a disable in flight: the insert
        // lands first and is ended by it, or finds the client gone and
        // inserts nothing (instead of failing the foreign key).
        let done = sqlx::query(
            "INSERT INTO sessions (id, user_id, client_id, scope, created_at, last_used_at, expires_at, generation, rotated_at, dpop_jkt) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $11 FROM users u, clients c \
             WHERE u.id = $2 AND u.credentials_version = $10 AND NOT u.disabled \
             AND c.id = $3 AND c.disabled_at IS NULL FOR SHARE",
        )
        .bind(s.id.0)
        .bind(s.user_id.0)
        .bind(s.client_id.0)
        .bind(s.scope.to_string())
        .bind(s.created_at)
        .bind(s.last_used_at)
        .bind(s.expires_at)
        .bind(s.generation)
        .bind(s.rotated_at)
        .bind(credentials_version)
        .bind(&s.dpop_jkt)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn find_session(&self, id: SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let row: Option<SessionRow> = sqlx::query_as(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Into::into))
    }

    async fn rotate_session(
        &self,
        id: SessionId,
        client_id: ClientId,
        generation: i64,
        dpop_jkt: Option<&str>,
        now: DateTime<Utc>,
        idle_cutoff: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let row: Option<SessionRow> = sqlx::query_as(&format!(
            "UPDATE sessions SET generation = generation + 1, rotated_at = {DB_NOW}, last_used_at = $4 \
             WHERE id = $1 AND client_id = $2 AND generation = $3 AND revoked_at IS NULL \
               AND expires_at > $4 AND last_used_at > $5 \
               AND (dpop_jkt IS NULL OR dpop_jkt = $6) \
               AND EXISTS (SELECT 1 FROM users u WHERE u.id = sessions.user_id AND NOT u.disabled) \
             RETURNING {SESSION_COLUMNS}"
        ))
        .bind(id.0)
        .bind(client_id.0)
        .bind(generation)
        .bind(now)
        .bind(idle_cutoff)
        .bind(dpop_jkt)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Into::into))
    }

    async fn find_rotated_session(
        &self,
        id: SessionId,
    ) -> Result<Option<RotatedSession>, StoreError> {
        let row: Option<RotatedRow> = sqlx::query_as(&format!(
            "SELECT {SESSION_COLUMNS}, \
               (EXTRACT(EPOCH FROM {DB_NOW} - rotated_at) * 1000)::bigint AS since_rotation_ms \
             FROM sessions WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Into::into))
    }

    async fn revoke_session(
        &self,
        id: SessionId,
        reason: RevokeReason,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE sessions SET revoked_at = $2, revoked_reason = $3 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id.0)
            .bind(audit.at)
            .bind(reason.as_str())
            .execute(&mut *tx)
            .await?;
        let revoked = done.rows_affected() == 1;
        if revoked {
            Self::audit_in(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(revoked)
    }

    async fn revoke_user_sessions(
        &self,
        user: UserId,
        except: Option<SessionId>,
        reason: RevokeReason,
        audit: &AuditEvent,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        Self::bump_credentials_version(&mut tx, user).await?;
        let n = Self::end_user_sessions(&mut tx, user, except, audit.at, reason).await?;
        Self::audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn list_user_sessions(
        &self,
        user: UserId,
        now: DateTime<Utc>,
        idle_cutoff: DateTime<Utc>,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let rows: Vec<SessionRow> = sqlx::query_as(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions \
             WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 AND last_used_at > $3 \
             ORDER BY created_at DESC LIMIT 100"
        ))
        .bind(user.0)
        .bind(now)
        .bind(idle_cutoff)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn session_status(&self, id: SessionId) -> Result<Option<SessionStatus>, StoreError> {
        let row: Option<(bool, bool)> = sqlx::query_as(
            "SELECT s.revoked_at IS NOT NULL, u.disabled FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(revoked, user_disabled)| SessionStatus {
            revoked,
            user_disabled,
        }))
    }

    async fn find_session_with_user_status(
        &self,
        id: SessionId,
    ) -> Result<Option<(SessionRecord, bool)>, StoreError> {
        let row: Option<SessionWithUserRow> = sqlx::query_as(&format!(
            "SELECT {SESSION_COLUMNS_OF_S}, u.disabled AS user_disabled \
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| (r.session.into(), r.user_disabled)))
    }

    async fn purge_sessions(
        &self,
        now: DateTime<Utc>,
        idle_cutoff: DateTime<Utc>,
        revoked_before: DateTime<Utc>,
        batch: i64,
    ) -> Result<u64, StoreError> {
        // Bounded batches with SKIP LOCKED: the purge never waits on, or
        // blocks, a refresh holding a session row.
        let n = sqlx::query(
            "DELETE FROM sessions WHERE id IN ( \
               SELECT id FROM sessions \
               WHERE expires_at <= $1 OR last_used_at <= $2 OR revoked_at <= $3 \
               LIMIT $4 FOR UPDATE SKIP LOCKED)",
        )
        .bind(now)
        .bind(idle_cutoff)
        .bind(revoked_before)
        .bind(batch)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n)
    }
}
