//! The SQLite store's sessions: insert, rotation, revocation, listing, purge.

use super::*;

#[async_trait]
impl SessionStore for SqliteStore {
    async fn start_session(
        &self,
        s: &SessionRecord,
        credentials_version: i64,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await?;
        // One statement: SQLite runs one writer at a time, so neither the
        // user row nor the client row can change between the check and the
        // insert (a client deleted or disabled meanwhile inserts nothing).
        let done = sqlx::query(
            "INSERT INTO sessions (id, user_id, client_id, scope, created_at, last_used_at, expires_at, generation, rotated_at, dpop_jkt) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?11 FROM users u, clients c \
             WHERE u.id = ?2 AND u.credentials_version = ?10 AND NOT u.disabled \
             AND c.id = ?3 AND c.disabled_at IS NULL",
        )
        .bind(s.id.to_string())
        .bind(s.user_id.to_string())
        .bind(s.client_id.to_string())
        .bind(s.scope.to_string())
        .bind(ms(s.created_at))
        .bind(ms(s.last_used_at))
        .bind(ms(s.expires_at))
        .bind(s.generation)
        .bind(ms(s.rotated_at))
        .bind(credentials_version)
        .bind(&s.dpop_jkt)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn find_session(&self, id: SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let row: Option<SessionRow> = sqlx::query_as(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(TryInto::try_into).transpose()
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
        let _turn = self.write_turn().await?;
        let row: Option<SessionRow> = sqlx::query_as(&format!(
            "UPDATE sessions SET generation = generation + 1, rotated_at = {DB_NOW_MS}, last_used_at = ?4 \
             WHERE id = ?1 AND client_id = ?2 AND generation = ?3 AND revoked_at IS NULL \
               AND expires_at > ?4 AND last_used_at > ?5 \
               AND (dpop_jkt IS NULL OR dpop_jkt = ?6) \
               AND EXISTS (SELECT 1 FROM users u WHERE u.id = sessions.user_id AND NOT u.disabled) \
             RETURNING {SESSION_COLUMNS}"
        ))
        .bind(id.to_string())
        .bind(client_id.to_string())
        .bind(generation)
        .bind(ms(now))
        .bind(ms(idle_cutoff))
        .bind(dpop_jkt)
        .fetch_optional(&self.pool)
        .await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn find_rotated_session(
        &self,
        id: SessionId,
    ) -> Result<Option<RotatedSession>, StoreError> {
        let row: Option<RotatedRow> = sqlx::query_as(&format!(
            "SELECT {SESSION_COLUMNS}, {DB_NOW_MS} - rotated_at AS since_rotation_ms \
             FROM sessions WHERE id = ?1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn revoke_session(
        &self,
        id: SessionId,
        reason: RevokeReason,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await?;
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE sessions SET revoked_at = ?2, revoked_reason = ?3 WHERE id = ?1 AND revoked_at IS NULL")
            .bind(id.to_string())
            .bind(ms(audit.at))
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
        let _turn = self.write_turn().await?;
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
             WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2 AND last_used_at > ?3 \
             ORDER BY created_at DESC LIMIT 100"
        ))
        .bind(user.to_string())
        .bind(ms(now))
        .bind(ms(idle_cutoff))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn session_status(&self, id: SessionId) -> Result<Option<SessionStatus>, StoreError> {
        let row: Option<(bool, bool)> = sqlx::query_as(
            "SELECT s.revoked_at IS NOT NULL, u.disabled FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?1",
        )
        .bind(id.to_string())
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
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((r.session.try_into()?, r.user_disabled)))
            .transpose()
    }

    async fn purge_sessions(
        &self,
        now: DateTime<Utc>,
        idle_cutoff: DateTime<Utc>,
        revoked_before: DateTime<Utc>,
        batch: i64,
    ) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await?;
        let n = sqlx::query(
            "DELETE FROM sessions WHERE id IN ( \
               SELECT id FROM sessions WHERE expires_at <= ?1 OR last_used_at <= ?2 OR revoked_at <= ?3 LIMIT ?4)",
        )
        .bind(ms(now))
        .bind(ms(idle_cutoff))
        .bind(ms(revoked_before))
        .bind(batch)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n)
    }
}
