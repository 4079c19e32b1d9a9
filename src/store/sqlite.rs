//! `SqliteStore`: the embedded default, so `cargo run` works on a fresh
//! machine. One file under `data/`, WAL mode, a busy timeout so concurrent
//! writers queue instead of failing. SQLite admits one writer at a time, so
//! each conditional `UPDATE` is atomic against every other writer.
//!
//! Writers of this process also take turns at an in-process gate before they
//! touch the file. Left to SQLite, writers that find the file locked sleep in
//! its busy handler for up to 100 ms at a time, so throughput collapsed as
//! concurrency grew; queued at the gate, the next writer starts the moment
//! the last one commits. Readers never wait at the gate (WAL lets them read
//! while one writer writes), and other processes (CLI commands) still meet
//! the busy timeout.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, FromRow, Sqlite, SqliteConnection, SqlitePool, Transaction};
use tokio::sync::{Mutex, MutexGuard};
use uuid::Uuid;

use super::{
    split_list, AuditEvent, ClientRecord, FailureCount, Lockout, PoolStats, SessionRecord,
    SessionStatus, Store, StoreError, UserRecord,
};
use crate::domain::types::{ClientId, ClientKind, SessionId, UserId};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// SQLite-backed store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// One writer at a time from this process; see the module docs.
    writes: Arc<Mutex<()>>,
    /// How long a writer waits for its turn before the store counts as
    /// unavailable: the pool's acquire timeout.
    write_wait: Duration,
}

fn e(err: sqlx::Error) -> StoreError {
    StoreError::from_sqlx(err)
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn at(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms).ok_or(StoreError::Corrupt("timestamp"))
}

fn uuid(s: &str) -> Result<Uuid, StoreError> {
    Uuid::try_parse(s).map_err(|_| StoreError::Corrupt("uuid"))
}

#[derive(FromRow)]
struct UserRow {
    id: String,
    email: String,
    password_hash: String,
    disabled: bool,
    created_at: i64,
}

impl TryFrom<UserRow> for UserRecord {
    type Error = StoreError;
    fn try_from(r: UserRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: UserId(uuid(&r.id)?),
            email: r.email,
            password_hash: r.password_hash,
            disabled: r.disabled,
            created_at: at(r.created_at)?,
        })
    }
}

#[derive(FromRow)]
struct ClientRow {
    id: String,
    name: String,
    kind: String,
    secret_hash: Option<Vec<u8>>,
    grants: String,
    scopes: String,
    audience: Option<String>,
    cookie_mode: bool,
    origins: String,
    created_at: i64,
}

impl TryFrom<ClientRow> for ClientRecord {
    type Error = StoreError;
    fn try_from(r: ClientRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: ClientId(uuid(&r.id)?),
            name: r.name,
            kind: ClientKind::parse(&r.kind).ok_or(StoreError::Corrupt("clients.kind"))?,
            secret_hash: r.secret_hash,
            grants: split_list(&r.grants),
            scopes: split_list(&r.scopes),
            audience: r.audience,
            cookie_mode: r.cookie_mode,
            origins: split_list(&r.origins),
            created_at: at(r.created_at)?,
        })
    }
}

#[derive(FromRow)]
struct SessionRow {
    id: String,
    user_id: String,
    client_id: String,
    scope: String,
    created_at: i64,
    last_used_at: i64,
    expires_at: i64,
    generation: i64,
    rotated_at: i64,
    revoked_at: Option<i64>,
    revoked_reason: Option<String>,
}

impl TryFrom<SessionRow> for SessionRecord {
    type Error = StoreError;
    fn try_from(r: SessionRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: SessionId(uuid(&r.id)?),
            user_id: UserId(uuid(&r.user_id)?),
            client_id: ClientId(uuid(&r.client_id)?),
            scope: r.scope,
            created_at: at(r.created_at)?,
            last_used_at: at(r.last_used_at)?,
            expires_at: at(r.expires_at)?,
            generation: r.generation,
            rotated_at: at(r.rotated_at)?,
            revoked_at: r.revoked_at.map(at).transpose()?,
            revoked_reason: r.revoked_reason,
        })
    }
}

#[derive(FromRow)]
struct AuditRow {
    at: i64,
    kind: String,
    user_id: Option<String>,
    client_id: Option<String>,
    session_id: Option<String>,
    reason: Option<String>,
    address: Option<String>,
}

impl TryFrom<AuditRow> for AuditEvent {
    type Error = StoreError;
    fn try_from(r: AuditRow) -> Result<Self, StoreError> {
        Ok(Self {
            at: at(r.at)?,
            kind: r.kind,
            user_id: r.user_id.as_deref().map(uuid).transpose()?.map(UserId),
            client_id: r.client_id.as_deref().map(uuid).transpose()?.map(ClientId),
            session_id: r
                .session_id
                .as_deref()
                .map(uuid)
                .transpose()?
                .map(SessionId),
            reason: r.reason,
            address: r.address,
        })
    }
}

#[derive(FromRow)]
struct FailureRow {
    failures: i64,
    window_started_at: i64,
    lockouts: i64,
    locked_until: Option<i64>,
}

impl TryFrom<FailureRow> for FailureCount {
    type Error = StoreError;

    fn try_from(r: FailureRow) -> Result<Self, StoreError> {
        Ok(Self {
            failures: r.failures,
            window_started_at: at(r.window_started_at)?,
            lockouts: r.lockouts,
            locked_until: r.locked_until.map(at).transpose()?,
        })
    }
}

const SESSION_COLUMNS: &str =
    "id, user_id, client_id, scope, created_at, last_used_at, expires_at, generation, rotated_at, revoked_at, revoked_reason";

impl SqliteStore {
    /// Opens the database file, creating it and its folder if needed.
    ///
    /// The file is created here, once. Pooled connections never create it, and
    /// an idle connection is handed out only while the file is still where it
    /// was: a database file that vanishes (an unmounted volume, a file moved
    /// away) makes requests fail as `Unavailable` (503) until it is back,
    /// instead of silently writing into an unlinked file or starting a fresh
    /// empty database.
    ///
    /// # Errors
    /// The URL is invalid, or the folder or the file cannot be created.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(e)?
            .create_if_missing(false)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let path = options.get_filename().to_owned();
        let in_memory = path.as_os_str() == ":memory:" || url.contains("mode=memory");
        let mut pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(acquire_timeout)
            // sqlx pings each connection as it is released; a second ping
            // on acquire would cost a worker-thread round trip per request.
            .test_before_acquire(false);
        if !in_memory {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|err| e(sqlx::Error::Io(err)))?;
            }
            let first = SqliteConnection::connect_with(&options.clone().create_if_missing(true))
                .await
                .map_err(e)?;
            first.close().await.map_err(e)?;
            pool = pool.before_acquire(move |_conn, _meta| {
                let present = path.exists();
                Box::pin(async move { Ok(present) })
            });
        }
        Ok(Self {
            pool: pool.connect_lazy_with(options),
            writes: Arc::default(),
            write_wait: acquire_timeout,
        })
    }

    /// Waits for this process's turn to write; held until the write commits.
    async fn write_turn(&self) -> Result<MutexGuard<'_, ()>, StoreError> {
        tokio::time::timeout(self.write_wait, self.writes.lock())
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolTimedOut))
    }

    async fn audit_in(tx: &mut Transaction<'_, Sqlite>, ev: &AuditEvent) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_events (at, kind, user_id, client_id, session_id, reason, address) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(ms(ev.at))
        .bind(&ev.kind)
        .bind(ev.user_id.map(|u| u.to_string()))
        .bind(ev.client_id.map(|c| c.to_string()))
        .bind(ev.session_id.map(|s| s.to_string()))
        .bind(&ev.reason)
        .bind(&ev.address)
        .execute(&mut **tx)
        .await
        .map_err(e)?;
        Ok(())
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // Reading the schema touches the file, so a vanished or unreadable
        // database shows here rather than on the first request.
        sqlx::query("SELECT count(*) FROM sqlite_master")
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
        let _turn = self.write_turn().await?;
        sqlx::query("INSERT INTO users (id, email, password_hash, disabled, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")
            .bind(u.id.to_string())
            .bind(&u.email)
            .bind(&u.password_hash)
            .bind(u.disabled)
            .bind(ms(u.created_at))
            .execute(&self.pool)
            .await
            .map_err(e)?;
        Ok(())
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        let row: Option<UserRow> = sqlx::query_as(
            "SELECT id, email, password_hash, disabled, created_at FROM users WHERE email = ?1",
        )
        .bind(email)
        .fetch_optional(&self.pool)
        .await
        .map_err(e)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn find_user(&self, id: UserId) -> Result<Option<UserRecord>, StoreError> {
        let row: Option<UserRow> = sqlx::query_as(
            "SELECT id, email, password_hash, disabled, created_at FROM users WHERE id = ?1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(e)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn set_user_disabled(
        &self,
        id: UserId,
        disabled: bool,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await?;
        let mut tx = self.pool.begin().await.map_err(e)?;
        let done = sqlx::query("UPDATE users SET disabled = ?2 WHERE id = ?1")
            .bind(id.to_string())
            .bind(disabled)
            .execute(&mut *tx)
            .await
            .map_err(e)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        if disabled {
            sqlx::query("UPDATE sessions SET revoked_at = ?2, revoked_reason = 'user_disabled' WHERE user_id = ?1 AND revoked_at IS NULL")
                .bind(id.to_string())
                .bind(ms(audit.at))
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
        let _turn = self.write_turn().await?;
        let mut tx = self.pool.begin().await.map_err(e)?;
        let done = sqlx::query("UPDATE users SET password_hash = ?2 WHERE id = ?1")
            .bind(id.to_string())
            .bind(password_hash)
            .execute(&mut *tx)
            .await
            .map_err(e)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let revoked = sqlx::query(
            "UPDATE sessions SET revoked_at = ?3, revoked_reason = 'password_changed' \
             WHERE user_id = ?1 AND revoked_at IS NULL AND (?2 IS NULL OR id <> ?2)",
        )
        .bind(id.to_string())
        .bind(keep.map(|s| s.to_string()))
        .bind(ms(audit.at))
        .execute(&mut *tx)
        .await
        .map_err(e)?
        .rows_affected();
        Self::audit_in(&mut tx, audit).await?;
        tx.commit().await.map_err(e)?;
        Ok(revoked)
    }

    async fn insert_client(&self, c: &ClientRecord) -> Result<(), StoreError> {
        let _turn = self.write_turn().await?;
        sqlx::query(
            "INSERT INTO clients (id, name, kind, secret_hash, grants, scopes, audience, cookie_mode, origins, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .bind(c.id.to_string())
        .bind(&c.name)
        .bind(c.kind.as_str())
        .bind(&c.secret_hash)
        .bind(c.grants.join(" "))
        .bind(c.scopes.join(" "))
        .bind(&c.audience)
        .bind(c.cookie_mode)
        .bind(c.origins.join(" "))
        .bind(ms(c.created_at))
        .execute(&self.pool)
        .await
        .map_err(e)?;
        Ok(())
    }

    async fn find_client(&self, id: ClientId) -> Result<Option<ClientRecord>, StoreError> {
        let row: Option<ClientRow> = sqlx::query_as(
            "SELECT id, name, kind, secret_hash, grants, scopes, audience, cookie_mode, origins, created_at FROM clients WHERE id = ?1",
        )
        .bind(id.to_string())
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
        let _turn = self.write_turn().await?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, client_id, scope, created_at, last_used_at, expires_at, generation, rotated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .bind(s.id.to_string())
        .bind(s.user_id.to_string())
        .bind(s.client_id.to_string())
        .bind(&s.scope)
        .bind(ms(s.created_at))
        .bind(ms(s.last_used_at))
        .bind(ms(s.expires_at))
        .bind(s.generation)
        .bind(ms(s.rotated_at))
        .execute(&self.pool)
        .await
        .map_err(e)?;
        Ok(())
    }

    async fn find_session(&self, id: SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let row: Option<SessionRow> = sqlx::query_as(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(e)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn rotate_session(
        &self,
        id: SessionId,
        client_id: ClientId,
        generation: i64,
        now: DateTime<Utc>,
        idle_cutoff: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let _turn = self.write_turn().await?;
        let row: Option<SessionRow> = sqlx::query_as(&format!(
            "UPDATE sessions SET generation = generation + 1, rotated_at = ?4, last_used_at = ?4 \
             WHERE id = ?1 AND client_id = ?2 AND generation = ?3 AND revoked_at IS NULL \
               AND expires_at > ?4 AND last_used_at > ?5 \
             RETURNING {SESSION_COLUMNS}"
        ))
        .bind(id.to_string())
        .bind(client_id.to_string())
        .bind(generation)
        .bind(ms(now))
        .bind(ms(idle_cutoff))
        .fetch_optional(&self.pool)
        .await
        .map_err(e)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn revoke_session(
        &self,
        id: SessionId,
        reason: &str,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await?;
        let mut tx = self.pool.begin().await.map_err(e)?;
        let done = sqlx::query("UPDATE sessions SET revoked_at = ?2, revoked_reason = ?3 WHERE id = ?1 AND revoked_at IS NULL")
            .bind(id.to_string())
            .bind(ms(audit.at))
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
        let _turn = self.write_turn().await?;
        let mut tx = self.pool.begin().await.map_err(e)?;
        let n = sqlx::query(
            "UPDATE sessions SET revoked_at = ?3, revoked_reason = ?4 \
             WHERE user_id = ?1 AND revoked_at IS NULL AND (?2 IS NULL OR id <> ?2)",
        )
        .bind(user.to_string())
        .bind(except.map(|s| s.to_string()))
        .bind(ms(audit.at))
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
             WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2 AND last_used_at > ?3 \
             ORDER BY created_at DESC LIMIT 100"
        ))
        .bind(user.to_string())
        .bind(ms(now))
        .bind(ms(idle_cutoff))
        .fetch_all(&self.pool)
        .await
        .map_err(e)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn session_status(&self, id: SessionId) -> Result<Option<SessionStatus>, StoreError> {
        let row: Option<(bool, bool)> = sqlx::query_as(
            "SELECT s.revoked_at IS NOT NULL, u.disabled FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?1",
        )
        .bind(id.to_string())
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
        .await
        .map_err(e)?
        .rows_affected();
        Ok(n)
    }

    async fn insert_audit(&self, ev: &AuditEvent) -> Result<(), StoreError> {
        let _turn = self.write_turn().await?;
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
             WHERE (?1 IS NULL OR user_id = ?1) AND (?2 IS NULL OR at >= ?2) \
             ORDER BY at DESC, id DESC LIMIT ?3",
        )
        .bind(user.map(|u| u.to_string()))
        .bind(since.map(ms))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(e)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn purge_audit(&self, before: DateTime<Utc>, batch: i64) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await?;
        let n = sqlx::query(
            "DELETE FROM audit_events WHERE id IN ( \
               SELECT id FROM audit_events WHERE at < ?1 ORDER BY at LIMIT ?2)",
        )
        .bind(ms(before))
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
        let _turn = self.write_turn().await?;
        let row: FailureRow = sqlx::query_as(
            "INSERT INTO login_failures (key, failures, window_started_at) VALUES (?1, 1, ?2) \
             ON CONFLICT (key) DO UPDATE SET \
               failures = CASE WHEN window_started_at <= ?2 - ?3 THEN 1 ELSE failures + 1 END, \
               window_started_at = CASE WHEN window_started_at <= ?2 - ?3 THEN ?2 ELSE window_started_at END \
             RETURNING failures, window_started_at, lockouts, locked_until",
        )
        .bind(key)
        .bind(ms(now))
        .bind(window_secs.saturating_mul(1000))
        .fetch_one(&self.pool)
        .await
        .map_err(e)?;
        row.try_into()
    }

    async fn login_failures(&self, key: &str) -> Result<Option<FailureCount>, StoreError> {
        let row: Option<FailureRow> = sqlx::query_as(
            "SELECT failures, window_started_at, lockouts, locked_until FROM login_failures WHERE key = ?1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(e)?;
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
        .await
        .map_err(e)?;
        Ok(done.rows_affected() == 1)
    }

    async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn().await?;
        sqlx::query("DELETE FROM login_failures WHERE key = ?1")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(e)?;
        Ok(())
    }
}
