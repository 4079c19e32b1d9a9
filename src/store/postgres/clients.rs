//! The PostgreSQL store's registered clients.

use super::*;
use crate::store::KeySource;

/// Every column of `ClientRow`, in one place for every query that reads one.
macro_rules! client_columns {
    () => {
        "id, name, kind, secret_hash, grants, scopes, audience, cookie_mode, origins, introspect, \
         redirect_uris, post_logout_redirect_uris, first_party, require_dpop, created_at, disabled_at, \
         previous_secret_hash, previous_secret_expires_at, \
         auth_method, jwks_uri, jwks, admin"
    };
}

#[async_trait]
impl ClientStore for PgStore {
    async fn insert_client(&self, c: &ClientRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO clients (id, name, kind, secret_hash, grants, scopes, audience, cookie_mode, origins, created_at, introspect, redirect_uris, post_logout_redirect_uris, first_party, require_dpop, \
             auth_method, jwks_uri, jwks, admin) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
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
        .bind(c.introspect)
        .bind(c.redirect_uris.join(" "))
        .bind(c.post_logout_redirect_uris.join(" "))
        .bind(c.first_party)
        .bind(c.require_dpop)
        .bind(c.auth_method())
        .bind(KeySource::columns(c.key_source.as_ref()).0)
        .bind(KeySource::columns(c.key_source.as_ref()).1)
        .bind(c.admin)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn find_client(&self, id: ClientId) -> Result<Option<ClientRecord>, StoreError> {
        let row: Option<ClientRow> = sqlx::query_as(concat!(
            "SELECT ",
            client_columns!(),
            " FROM clients WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn list_browser_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let rows: Vec<ClientRow> = sqlx::query_as(concat!(
            "SELECT ",
            client_columns!(),
            " FROM clients WHERE origins <> '' AND disabled_at IS NULL"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn clients_version(&self) -> Result<i64, StoreError> {
        let (version,): (i64,) =
            sqlx::query_as("SELECT version FROM change_markers WHERE name = 'clients'")
                .fetch_one(&self.pool)
                .await?;
        Ok(version)
    }

    async fn list_clients(
        &self,
        after: Option<ClientId>,
        limit: i64,
    ) -> Result<Vec<ClientRecord>, StoreError> {
        let rows: Vec<ClientRow> = sqlx::query_as(concat!(
            "SELECT ",
            client_columns!(),
            " FROM clients WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2"
        ))
        .bind(after.map(|a| a.0))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn page_clients(
        &self,
        after: Option<PageAfter<ClientId>>,
        limit: i64,
    ) -> Result<Vec<ClientRecord>, StoreError> {
        let rows: Vec<ClientRow> = sqlx::query_as(concat!(
            "SELECT ",
            client_columns!(),
            " FROM clients WHERE ($1::timestamptz IS NULL OR (created_at, id) > ($1, $2)) ORDER BY created_at, id LIMIT $3"
        ))
        .bind(after.map(|a| a.created_at))
        .bind(after.map(|a| a.id.0))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn update_client(&self, c: &ClientRecord, audit: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE clients SET name = $2, grants = $3, scopes = $4, audience = $5, cookie_mode = $6, \
             origins = $7, redirect_uris = $8, post_logout_redirect_uris = $9, first_party = $10, introspect = $11, \
             require_dpop = $12, jwks_uri = $13, jwks = $14 WHERE id = $1",
        )
        .bind(c.id.0)
        .bind(&c.name)
        .bind(c.grants.join(" "))
        .bind(c.scopes.join(" "))
        .bind(&c.audience)
        .bind(c.cookie_mode)
        .bind(c.origins.join(" "))
        .bind(c.redirect_uris.join(" "))
        .bind(c.post_logout_redirect_uris.join(" "))
        .bind(c.first_party)
        .bind(c.introspect)
        .bind(c.require_dpop)
        .bind(KeySource::columns(c.key_source.as_ref()).0)
        .bind(KeySource::columns(c.key_source.as_ref()).1)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Self::audit_in(&mut tx, audit).await?;
        Ok(tx.commit().await?)
    }

    async fn set_client_disabled(
        &self,
        id: ClientId,
        disabled_at: Option<DateTime<Utc>>,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE clients SET disabled_at = $2 WHERE id = $1")
            .bind(id.0)
            .bind(disabled_at)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Self::audit_in(&mut tx, audit).await?;
        Ok(tx.commit().await?)
    }

    async fn delete_client(&self, id: ClientId, audit: &AuditEvent) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The client row first: its lock orders this against a login that
        // is inserting a session of it (whose foreign key check reads it).
        let found: Option<(i64,)> = sqlx::query_as(
            "SELECT (SELECT count(*) FROM sessions WHERE client_id = $1 AND revoked_at IS NULL) \
             FROM clients WHERE id = $1 FOR UPDATE",
        )
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((live,)) = found else {
            return Err(StoreError::NotFound);
        };
        // The cascade removes the client's sessions, codes and consents in
        // this same statement.
        sqlx::query("DELETE FROM clients WHERE id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        let ended = u64::try_from(live).unwrap_or(0);
        let mut ev = audit.clone();
        ev.reason = Some(format!(
            "{}; {ended} live sessions ended",
            audit.reason.as_deref().unwrap_or("deleted")
        ));
        Self::audit_in(&mut tx, &ev).await?;
        tx.commit().await?;
        Ok(ended)
    }

    async fn update_client_secret(
        &self,
        id: ClientId,
        secret_hash: &[u8],
        previous_until: Option<DateTime<Utc>>,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // One statement reads the current digest and moves it aside, so two
        // rotations racing each keep a digest that really was current.
        let done = sqlx::query(
            "UPDATE clients SET \
             previous_secret_hash = CASE WHEN $3 IS NULL THEN NULL ELSE secret_hash END, \
             previous_secret_expires_at = $3, secret_hash = $2 \
             WHERE id = $1 AND kind = 'confidential' AND auth_method = 'client_secret'",
        )
        .bind(id.0)
        .bind(secret_hash)
        .bind(previous_until)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Self::audit_in(&mut tx, audit).await?;
        Ok(tx.commit().await?)
    }
}
