//! `PgStore`: the production store. Native `uuid` and `timestamptz`; races are
//! settled by conditional `UPDATE`s under READ COMMITTED, where a second
//! writer waits for the first one's row lock and then re-checks its `WHERE`
//! against the committed row, so no serialization failure can surface.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{FromRow, PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::{
    split_list, AuditEvent, ClientRecord, FailureCount, Lockout, PoolStats, SessionRecord,
    SessionStatus, Store, StoreError, UserRecord,
};
use crate::domain::types::{ClientId, ClientKind, SessionId, UserId};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// PostgreSQL-backed store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

fn e(err: sqlx::Error) -> StoreError {
    StoreError::from_sqlx(err)
}

#[derive(FromRow)]
struct UserRow {
    id: Uuid,
    email: String,
    password_hash: String,
    disabled: bool,
    created_at: DateTime<Utc>,
}

impl From<UserRow> for UserRecord {
    fn from(r: UserRow) -> Self {
        Self {
            id: UserId(r.id),
            email: r.email,
            password_hash: r.password_hash,
            disabled: r.disabled,
            created_at: r.created_at,
        }
    }
}

#[derive(FromRow)]
struct ClientRow {
    id: Uuid,
    name: String,
    kind: String,
    secret_hash: Option<Vec<u8>>,
    grants: String,
    scopes: String,
    audience: Option<String>,
    cookie_mode: bool,
    origins: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<ClientRow> for ClientRecord {
    type Error = StoreError;
    fn try_from(r: ClientRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: ClientId(r.id),
            name: r.name,
            kind: ClientKind::parse(&r.kind).ok_or(StoreError::Corrupt("clients.kind"))?,
            secret_hash: r.secret_hash,
            grants: split_list(&r.grants),
            scopes: split_list(&r.scopes),
            audience: r.audience,
            cookie_mode: r.cookie_mode,
            origins: split_list(&r.origins),
            created_at: r.created_at,
        })
    }
}

#[derive(FromRow)]
struct SessionRow {
    id: Uuid,
    user_id: Uuid,
    client_id: Uuid,
    scope: String,
    created_at: DateTime<Utc>,
    last_used_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    generation: i64,
    rotated_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    revoked_reason: Option<String>,
}

impl From<SessionRow> for SessionRecord {
    fn from(r: SessionRow) -> Self {
        Self {
            id: SessionId(r.id),
            user_id: UserId(r.user_id),
            client_id: ClientId(r.client_id),
            scope: r.scope,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            expires_at: r.expires_at,
            generation: r.generation,
            rotated_at: r.rotated_at,
            revoked_at: r.revoked_at,
            revoked_reason: r.revoked_reason,
        }
    }
}

#[derive(FromRow)]
struct AuditRow {
    at: DateTime<Utc>,
    kind: String,
    user_id: Option<Uuid>,
    client_id: Option<Uuid>,
    session_id: Option<Uuid>,
    reason: Option<String>,
    address: Option<String>,
}

impl From<AuditRow> for AuditEvent {
    fn from(r: AuditRow) -> Self {
        Self {
            at: r.at,
            kind: r.kind,
            user_id: r.user_id.map(UserId),
            client_id: r.client_id.map(ClientId),
            session_id: r.session_id.map(SessionId),
            reason: r.reason,
            address: r.address,
        }
    }
}

#[derive(FromRow)]
struct FailureRow {
    failures: i64,
    window_started_at: DateTime<Utc>,
    lockouts: i64,
    locked_until: Option<DateTime<Utc>>,
}

impl From<FailureRow> for FailureCount {
    fn from(r: FailureRow) -> Self {
        Self {
            failures: r.failures,
            window_started_at: r.window_started_at,
            lockouts: r.lockouts,
            locked_until: r.locked_until,
        }
    }
}

const SESSION_COLUMNS: &str =
    "id, user_id, client_id, scope, created_at, last_used_at, expires_at, generation, rotated_at, revoked_at, revoked_reason";

impl PgStore {
    /// Connects a pool. Connections are opened lazily, so start-up and a
    /// database that comes back later both work without a restart.
    ///
    /// # Errors
    /// The URL is invalid.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url.parse().map_err(e)?;
        // No ping before each acquire: it costs a round trip per request,
        // and sqlx already pings every connection as it is released, dropping
        // broken ones. A connection that dies while idle (a database restart)
        // fails its next request once with 503 and is then discarded.
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(acquire_timeout)
            .test_before_acquire(false)
            .connect_lazy_with(options);
        Ok(Self { pool })
    }

    /// The pool, for tests and metrics.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn audit_in(
        tx: &mut Transaction<'_, Postgres>,
        ev: &AuditEvent,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_events (at, kind, user_id, client_id, session_id, reason, address) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(ev.at)
        .bind(&ev.kind)
        .bind(ev.user_id.map(|u| u.0))
        .bind(ev.client_id.map(|c| c.0))
        .bind(ev.session_id.map(|s| s.0))
        .bind(&ev.reason)
        .bind(&ev.address)
        .execute(&mut **tx)
        .await
        .map_err(e)?;
        Ok(())
    }
}

#[async_trait]
impl Store for PgStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(e)?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    fn pool_stats(&self) -> PoolStats {
        PoolStats {
            size: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            max: self.pool.options().get_max_connections(),
        }
    }

    async fn insert_user(&self, u: &UserRecord) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO users (id, email, password_hash, disabled, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(u.id.0)
            .bind(&u.email)
            .bind(&u.password_hash)
            .bind(u.disabled)
            .bind(u.created_at)
            .execute(&self.pool)
            .await
            .map_err(e)?;
        Ok(())
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        let row: Option<UserRow> = sqlx::query_as(
            "SELECT id, email, password_hash, disabled, created_at FROM users WHERE email = $1",
        )
        .bind(email)
        .fetch_optional(&self.pool)
        .await
        .map_err(e)?;
        Ok(row.map(Into::into))
    }

    async fn find_user(&self, id: UserId) -> Result<Option<UserRecord>, StoreError> {
        let row: Option<UserRow> = sqlx::query_as(
            "SELECT id, email, password_hash, disabled, created_at FROM users WHERE id = $1",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(e)?;
        Ok(row.map(Into::into))
    }

    async fn set_user_disabled(
        &self,
        id: UserId,
        disabled: bool,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(e)?;
        let done = sqlx::query("UPDATE users SET disabled = $2 WHERE id = $1")
            .bind(id.0)
            .bind(disabled)
            .execute(&mut *tx)
            .await
            .map_err(e)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        if disabled {
            sqlx::query("UPDATE sessions SET revoked_at = $2, revoked_reason = 'user_disabled' WHERE user_id = $1 AND revoked_at IS NULL")
                .bind(id.0)
                .bind(audit.at)
                .execute(&mut *tx)
                .await
                .map_err(e)?;
        }
        Self::audit_in(&mut tx, audit).await?;
        tx.commit().await.map_err(e)
    }

    async fn update_password(
        &self,
        id: UserId,
        password_hash: &str,
        keep: Option<SessionId>,
        audit: &AuditEvent,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(e)?;
        let done = sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
            .bind(id.0)
            .bind(password_hash)
            .execute(&mut *tx)
            .await
            .map_err(e)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let revoked = sqlx::query(
            "UPDATE sessions SET revoked_at = $3, revoked_reason = 'password_changed' \
             WHERE user_id = $1 AND revoked_at IS NULL AND ($2::uuid IS NULL OR id <> $2)",
        )
        .bind(id.0)
        .bind(keep.map(|s| s.0))
        .bind(audit.at)
        .execute(&mut *tx)
        .await
        .map_err(e)?
        .rows_affected();
        Self::audit_in(&mut tx, audit).await?;
        tx.commit().await.map_err(e)?;
        Ok(revoked)
    }

    async fn insert_client(&self, c: &ClientRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO clients (id, name, kind, secret_hash, grants, scopes, audience, cookie_mode, origins, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(c.id.0)
        .bind(&c.name)
        .bind(c.kind.as_str())
        .bind(&c.secret_hash)
        .bind(c.grants.join(" "))
        .bind(c.scopes.join(" "))
        .bind(&c.audience)
        .bind(c.cookie_mode)
        .bind(c.origins.join(" "))
        .bind(c.created_at)
        .execute(&self.pool)
        .await
        .map_err(e)?;
        Ok(())
    }

    async fn find_client(&self, id: ClientId) -> Result<Option<ClientRecord>, StoreError> {
        let row: Option<ClientRow> = sqlx::query_as(
            "SELECT id, name, kind, secret_hash, grants, scopes, audience, cookie_mode, origins, created_at FROM clients WHERE id = $1",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(e)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn list_browser_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let rows: Vec<ClientRow> = sqlx::query_as(
            "SELECT id, name, kind, secret_hash, grants, scopes, audience, cookie_mode, origins, created_at FROM clients WHERE origins <> ''",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(e)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn insert_session(&self, s: &SessionRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id, user_id, client_id, scope, created_at, last_used_at, expires_at, generation, rotated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(s.id.0)
        .bind(s.user_id.0)
        .bind(s.client_id.0)
        .bind(&s.scope)
        .bind(s.created_at)
        .bind(s.last_used_at)
        .bind(s.expires_at)
        .bind(s.generation)
        .bind(s.rotated_at)
        .execute(&self.pool)
        .await
        .map_err(e)?;
        Ok(())
    }

    async fn find_session(&self, id: SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let row: Option<SessionRow> = sqlx::query_as(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(e)?;
        Ok(row.map(Into::into))
    }

    async fn rotate_session(
        &self,
        id: SessionId,
        client_id: ClientId,
        generation: i64,
        now: DateTime<Utc>,
        idle_cutoff: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let row: Option<SessionRow> = sqlx::query_as(&format!(
            "UPDATE sessions SET generation = generation + 1, rotated_at = $4, last_used_at = $4 \
             WHERE id = $1 AND client_id = $2 AND generation = $3 AND revoked_at IS NULL \
               AND expires_at > $4 AND last_used_at > $5 \
             RETURNING {SESSION_COLUMNS}"
        ))
        .bind(id.0)
        .bind(client_id.0)
        .bind(generation)
        .bind(now)
        .bind(idle_cutoff)
        .fetch_optional(&self.pool)
        .await
        .map_err(e)?;
        Ok(row.map(Into::into))
    }

    async fn revoke_session(
        &self,
        id: SessionId,
        reason: &str,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(e)?;
        let done = sqlx::query("UPDATE sessions SET revoked_at = $2, revoked_reason = $3 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id.0)
            .bind(audit.at)
            .bind(reason)
            .execute(&mut *tx)
            .await
            .map_err(e)?;
        let revoked = done.rows_affected() == 1;
        if revoked {
            Self::audit_in(&mut tx, audit).await?;
        }
        tx.commit().await.map_err(e)?;
        Ok(revoked)
    }

    async fn revoke_user_sessions(
        &self,
        user: UserId,
        except: Option<SessionId>,
        reason: &str,
        audit: &AuditEvent,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(e)?;
        let n = sqlx::query(
            "UPDATE sessions SET revoked_at = $3, revoked_reason = $4 \
             WHERE user_id = $1 AND revoked_at IS NULL AND ($2::uuid IS NULL OR id <> $2)",
        )
        .bind(user.0)
        .bind(except.map(|s| s.0))
        .bind(audit.at)
        .bind(reason)
        .execute(&mut *tx)
        .await
        .map_err(e)?
        .rows_affected();
        Self::audit_in(&mut tx, audit).await?;
        tx.commit().await.map_err(e)?;
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
        .await
        .map_err(e)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn session_status(&self, id: SessionId) -> Result<Option<SessionStatus>, StoreError> {
        let row: Option<(bool, bool)> = sqlx::query_as(
            "SELECT s.revoked_at IS NOT NULL, u.disabled FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(e)?;
        Ok(row.map(|(revoked, user_disabled)| SessionStatus {
            revoked,
            user_disabled,
        }))
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
        .await
        .map_err(e)?
        .rows_affected();
        Ok(n)
    }

    async fn insert_audit(&self, ev: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(e)?;
        Self::audit_in(&mut tx, ev).await?;
        tx.commit().await.map_err(e)
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
        .await
        .map_err(e)?;
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
        .await
        .map_err(e)?
        .rows_affected();
        Ok(n)
    }

    async fn record_login_failure(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window_secs: i64,
    ) -> Result<FailureCount, StoreError> {
        let row: FailureRow = sqlx::query_as(
            "INSERT INTO login_failures (key, failures, window_started_at) VALUES ($1, 1, $2) \
             ON CONFLICT (key) DO UPDATE SET \
               failures = CASE WHEN login_failures.window_started_at <= $2 - make_interval(secs => $3) \
                               THEN 1 ELSE login_failures.failures + 1 END, \
               window_started_at = CASE WHEN login_failures.window_started_at <= $2 - make_interval(secs => $3) \
                               THEN $2 ELSE login_failures.window_started_at END \
             RETURNING failures, window_started_at, lockouts, locked_until",
        )
        .bind(key)
        .bind(now)
        .bind(window_secs as f64)
        .fetch_one(&self.pool)
        .await
        .map_err(e)?;
        Ok(row.into())
    }

    async fn login_failures(&self, key: &str) -> Result<Option<FailureCount>, StoreError> {
        let row: Option<FailureRow> = sqlx::query_as(
            "SELECT failures, window_started_at, lockouts, locked_until FROM login_failures WHERE key = $1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(e)?;
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
        .await
        .map_err(e)?;
        Ok(done.rows_affected() == 1)
    }

    async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_failures WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(e)?;
        Ok(())
    }
}
