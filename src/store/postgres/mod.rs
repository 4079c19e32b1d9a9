//! `PgStore`: the production store. Native `uuid` and `timestamptz`; races are
//! settled by conditional `UPDATE`s under READ COMMITTED, where a second
//! writer waits for the first one's row lock and then re-checks its `WHERE`
//! against the committed row, so no serialization failure can surface.

mod audit;
mod authorization;
mod clients;
mod keys;
mod outbox;
mod recovery;
mod replay;
mod rows;
mod sessions;
mod throttle;
mod users;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{FromRow, PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::{
    split_list, AuditEvent, AuditStore, AuthorizationCodeRecord, AuthorizationStore,
    BrowserSessionRecord, ClaimedMail, ClientRecord, ClientStore, ConsentRecord, EmailTokenRecord,
    FailureCount, Lockout, MailMessage, OutboxCounts, OutboxStore, PageAfter, PoolStats,
    RecoveryStore, ReplayStore, RotatedSession, SessionRecord, SessionStatus, SessionStore, Store,
    StoreError, ThrottleStore, TokenPurpose, UserRecord, UserStore,
};
use crate::ids::{ClientId, ClientKind, SessionId, UserId};

use self::rows::*;
use crate::store::RevokeReason;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The production store: a PostgreSQL pool that connects lazily.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

/// The database's clock, read when the statement evaluates it (not at the
/// start of its transaction).
const DB_NOW: &str = "clock_timestamp()";

const SESSION_COLUMNS: &str =
    "id, user_id, client_id, scope, created_at, last_used_at, expires_at, generation, rotated_at, revoked_at, revoked_reason, dpop_jkt";
/// `SESSION_COLUMNS` qualified with the alias `s`, for joins.
const SESSION_COLUMNS_OF_S: &str =
    "s.id, s.user_id, s.client_id, s.scope, s.created_at, s.last_used_at, s.expires_at, s.generation, s.rotated_at, s.revoked_at, s.revoked_reason, s.dpop_jkt";

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
        let options: PgConnectOptions = url.parse()?;
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

    /// Bumps a user's credentials version inside `tx`, before it revokes
    /// their sessions: the row lock taken here orders the revocation against
    /// every login's `start_session`.
    async fn bump_credentials_version(
        tx: &mut Transaction<'_, Postgres>,
        user: UserId,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET credentials_version = credentials_version + 1 WHERE id = $1")
            .bind(user.0)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Ends every live session of `user` but `except`, at `at`, for
    /// `reason`: the one statement behind revoke-all, a password change and
    /// a disable. Returns how many ended.
    async fn end_user_sessions(
        tx: &mut Transaction<'_, Postgres>,
        user: UserId,
        except: Option<SessionId>,
        at: DateTime<Utc>,
        reason: RevokeReason,
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE sessions SET revoked_at = $3, revoked_reason = $4 \
             WHERE user_id = $1 AND revoked_at IS NULL AND ($2::uuid IS NULL OR id <> $2)",
        )
        .bind(user.0)
        .bind(except.map(|s| s.0))
        .bind(at)
        .bind(reason.as_str())
        .execute(&mut **tx)
        .await?
        .rows_affected())
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
        .await?;
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
        sqlx::query("SELECT 1").execute(&self.pool).await?;
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
}
