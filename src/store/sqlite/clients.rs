//! The SQLite store's registered clients.

use super::*;

#[async_trait]
impl ClientStore for SqliteStore {
    async fn insert_client(&self, c: &ClientRecord) -> Result<(), StoreError> {
        let _turn = self.write_turn().await?;
        sqlx::query(
            "INSERT INTO clients (id, name, kind, secret_hash, grants, scopes, audience, cookie_mode, origins, created_at, introspect, redirect_uris, post_logout_redirect_uris, first_party, require_dpop) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
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
        .bind(c.introspect)
        .bind(c.redirect_uris.join(" "))
        .bind(c.post_logout_redirect_uris.join(" "))
        .bind(c.first_party)
        .bind(c.require_dpop)
        .execute(&self.pool)
        .await
        .map_err(e)?;
        Ok(())
    }

    async fn find_client(&self, id: ClientId) -> Result<Option<ClientRecord>, StoreError> {
        let row: Option<ClientRow> = sqlx::query_as(
            "SELECT id, name, kind, secret_hash, grants, scopes, audience, cookie_mode, origins, introspect, redirect_uris, post_logout_redirect_uris, first_party, require_dpop, created_at FROM clients WHERE id = ?1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(e)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn list_browser_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let rows: Vec<ClientRow> = sqlx::query_as(
            "SELECT id, name, kind, secret_hash, grants, scopes, audience, cookie_mode, origins, introspect, redirect_uris, post_logout_redirect_uris, first_party, require_dpop, created_at FROM clients WHERE origins <> ''",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(e)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn clients_version(&self) -> Result<i64, StoreError> {
        let (version,): (i64,) =
            sqlx::query_as("SELECT version FROM change_markers WHERE name = 'clients'")
                .fetch_one(&self.pool)
                .await
                .map_err(e)?;
        Ok(version)
    }

    async fn update_client_secret(
        &self,
        id: ClientId,
        secret_hash: &[u8],
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await?;
        let done = sqlx::query(
            "UPDATE clients SET secret_hash = ?2 WHERE id = ?1 AND kind = 'confidential'",
        )
        .bind(id.to_string())
        .bind(secret_hash)
        .execute(&self.pool)
        .await
        .map_err(e)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
