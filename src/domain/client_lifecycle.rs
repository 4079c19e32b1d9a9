//! A registered client's life after `create`: listing, changes, suspension,
//! removal and secret rotation with an overlap. The CLI and the admin API
//! both call these. Every change writes its audit record (who, what changed,
//! never a secret) in the store's transaction, and drops this instance's
//! cached clients at once; other instances follow within
//! `clients.change_poll_ms` (the store's change counter moves with the
//! change).

use chrono::{DateTime, Duration, Utc};

use super::audit::trace_audit;
use super::clients::{generate_secret, secret_digest, NewClient};
use super::error::DomainError;
use super::types::{ClientId, GrantType, Scope};
use super::Services;
use crate::store::AuditKind;
use crate::store::{AuditEvent, ClientRecord, KeySource, StoreError};

/// The most clients one page of `list_clients` holds.
pub const MAX_PAGE: i64 = 500;

/// What `clients update` changes; `None` keeps the current value, and each
/// field means what the same field of `NewClient` does. Lists given replace
/// the whole list.
#[derive(Debug, Clone, Default)]
pub struct ClientChanges {
    pub name: Option<String>,
    pub grants: Option<Vec<GrantType>>,
    pub scopes: Option<Scope>,
    /// `aud` of its access tokens; `Some(None)` returns to the default.
    pub audience: Option<Option<String>>,
    pub cookie_mode: Option<bool>,
    pub origins: Option<Vec<String>>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub first_party: Option<bool>,
    pub introspect: Option<bool>,
    pub require_dpop: Option<bool>,
    /// A `private_key_jwt` client's new key source (its method cannot
    /// change: a secret client gets no keys, a key client no secret).
    pub key_source: Option<KeySource>,
}

/// A new secret from `rotate_client_secret`, shown once (`Debug` redacts it).
#[derive(Clone)]
pub struct RotatedSecret {
    pub secret: String,
    /// Until when the previous secret still works; `None` when it ended at
    /// once.
    pub previous_valid_until: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for RotatedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatedSecret")
            .field("secret", &"[redacted]")
            .field("previous_valid_until", &self.previous_valid_until)
            .finish()
    }
}

fn not_found(e: StoreError) -> DomainError {
    match e {
        StoreError::NotFound => DomainError::NotFound,
        other => other.into(),
    }
}

fn event(kind: AuditKind, at: DateTime<Utc>, id: ClientId, reason: String) -> AuditEvent {
    AuditEvent::new(kind, at).client(id).reason(reason)
}

impl Services {
    /// Up to `limit` (at most `MAX_PAGE`) clients, disabled ones included,
    /// ordered by id, after `after`.
    ///
    /// # Errors
    /// Store failures.
    pub async fn list_clients(
        &self,
        after: Option<ClientId>,
        limit: i64,
    ) -> Result<Vec<ClientRecord>, DomainError> {
        Ok(self
            .store
            .list_clients(after, limit.clamp(1, MAX_PAGE))
            .await?)
    }

    /// The client `id`, disabled or not, read from the store.
    ///
    /// # Errors
    /// `NotFound`; store failures.
    pub async fn get_client(&self, id: ClientId) -> Result<ClientRecord, DomainError> {
        self.store
            .find_client(id)
            .await?
            .ok_or(DomainError::NotFound)
    }

    /// Changes a client's settings, checked by the same rules as
    /// registration. `by` names who asked (`cli`, or the admin client) for
    /// the audit record, which also lists the fields that changed.
    ///
    /// # Errors
    /// `NotFound`, `InvalidRequest` for a combination registration would
    /// refuse; store failures.
    pub async fn update_client(
        &self,
        id: ClientId,
        changes: ClientChanges,
        by: &str,
    ) -> Result<ClientRecord, DomainError> {
        let current = self.get_client(id).await?;
        if changes.key_source.is_some() && current.key_source.is_none() {
            return Err(DomainError::InvalidRequest(
                "--jwks-uri and --jwk change a private_key_jwt client's keys; \
                 the authentication method is chosen at registration",
            ));
        }
        let wanted = self.validated_record(merged(&current, changes), id)?;
        let updated = ClientRecord {
            id,
            kind: current.kind,
            secret_hash: current.secret_hash.clone(),
            created_at: current.created_at,
            disabled_at: current.disabled_at,
            previous_secret_hash: current.previous_secret_hash.clone(),
            previous_secret_expires_at: current.previous_secret_expires_at,
            ..wanted
        };
        let changed = changed_fields(&current, &updated);
        if changed.is_empty() {
            return Ok(current);
        }
        let ev = event(
            AuditKind::ClientUpdated,
            self.now(),
            id,
            format!("by {by}; changed {}", changed.join(",")),
        );
        self.store
            .update_client(&updated, &ev)
            .await
            .map_err(not_found)?;
        self.client_changed(&ev);
        Ok(updated)
    }

    /// Suspends (`disabled`) or re-enables a client. While disabled it is
    /// refused at every endpoint and its access tokens are inactive; its
    /// sessions are kept, so enabling undoes the suspension.
    ///
    /// # Errors
    /// `NotFound`; store failures.
    pub async fn set_client_disabled(
        &self,
        id: ClientId,
        disabled: bool,
        by: &str,
    ) -> Result<(), DomainError> {
        let now = self.now();
        let kind = if disabled {
            AuditKind::ClientDisabled
        } else {
            AuditKind::ClientEnabled
        };
        let ev = event(kind, now, id, format!("by {by}"));
        self.store
            .set_client_disabled(id, disabled.then_some(now), &ev)
            .await
            .map_err(not_found)?;
        self.client_changed(&ev);
        Ok(())
    }

    /// Removes a client and, in the same transaction, every session of it;
    /// returns how many live sessions ended.
    ///
    /// # Errors
    /// `NotFound`; store failures.
    pub async fn delete_client(&self, id: ClientId, by: &str) -> Result<u64, DomainError> {
        let ev = event(AuditKind::ClientDeleted, self.now(), id, format!("by {by}"));
        let ended = self.store.delete_client(id, &ev).await.map_err(not_found)?;
        self.client_changed(&ev);
        Ok(ended)
    }

    /// Gives a confidential client a new secret (returned, shown once). The
    /// previous one keeps working for `overlap` (zero ends it at once), so a
    /// consumer can roll its deployments; a secret older than the previous
    /// one ends now.
    ///
    /// # Errors
    /// `NotFound` for an unknown or public client, `InvalidRequest` for a
    /// negative overlap; store failures.
    pub async fn rotate_client_secret(
        &self,
        id: ClientId,
        overlap: Duration,
        by: &str,
    ) -> Result<RotatedSecret, DomainError> {
        if overlap < Duration::zero() {
            return Err(DomainError::InvalidRequest(
                "the overlap cannot be negative",
            ));
        }
        if self.get_client(id).await?.key_source.is_some() {
            return Err(DomainError::InvalidRequest(
                "this client authenticates with private_key_jwt and has no secret; \
                 change its keys with clients update --jwks-uri or --jwk",
            ));
        }
        let secret = generate_secret()?;
        let now = self.now();
        let until = (overlap > Duration::zero()).then(|| now + overlap);
        let reason = match until {
            Some(t) => format!("by {by}; previous secret valid until {}", t.to_rfc3339()),
            None => format!("by {by}; previous secret ended at once"),
        };
        let ev = event(AuditKind::ClientSecretRotated, now, id, reason);
        self.store
            .update_client_secret(id, &secret_digest(&secret), until, &ev)
            .await
            .map_err(not_found)?;
        self.client_changed(&ev);
        Ok(RotatedSecret {
            secret,
            previous_valid_until: until,
        })
    }

    /// The default rotation overlap (`clients.secret_overlap_secs`).
    pub fn default_secret_overlap(&self) -> Duration {
        self.policy.clients.secret_overlap
    }

    /// After a committed change: this instance need not wait for its poll.
    fn client_changed(&self, ev: &AuditEvent) {
        self.clients.clear();
        self.origins.clear();
        trace_audit(ev);
    }
}

/// `current` with `changes` applied, in the shape registration checks.
fn merged(current: &ClientRecord, c: ClientChanges) -> NewClient {
    NewClient {
        name: c.name.unwrap_or_else(|| current.name.clone()),
        kind: current.kind,
        grants: c.grants.unwrap_or_else(|| {
            current
                .grants
                .iter()
                .filter_map(|g| GrantType::parse(g))
                .collect()
        }),
        scopes: c
            .scopes
            .unwrap_or_else(|| Scope::parse(&current.scopes.join(" ")).unwrap_or_default()),
        audience: c.audience.unwrap_or_else(|| current.audience.clone()),
        cookie_mode: c.cookie_mode.unwrap_or(current.cookie_mode),
        origins: c.origins.unwrap_or_else(|| current.origins.clone()),
        redirect_uris: c
            .redirect_uris
            .unwrap_or_else(|| current.redirect_uris.clone()),
        post_logout_redirect_uris: c
            .post_logout_redirect_uris
            .unwrap_or_else(|| current.post_logout_redirect_uris.clone()),
        first_party: c.first_party.unwrap_or(current.first_party),
        introspect: c.introspect.unwrap_or(current.introspect),
        require_dpop: c.require_dpop.unwrap_or(current.require_dpop),
        // Fixed at registration: no change grants or drops the admin API.
        admin: current.admin,
        key_source: c.key_source.or_else(|| current.key_source.clone()),
    }
}

/// The names of the settings that differ, for the audit record (values are
/// left out: a redirect URI list can be long, and the record says where to
/// look).
fn changed_fields(a: &ClientRecord, b: &ClientRecord) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut check = |name, differs: bool| {
        if differs {
            out.push(name);
        }
    };
    check("name", a.name != b.name);
    check("grants", a.grants != b.grants);
    check("scopes", a.scopes != b.scopes);
    check("audience", a.audience != b.audience);
    check("cookie_mode", a.cookie_mode != b.cookie_mode);
    check("origins", a.origins != b.origins);
    check("redirect_uris", a.redirect_uris != b.redirect_uris);
    check(
        "post_logout_redirect_uris",
        a.post_logout_redirect_uris != b.post_logout_redirect_uris,
    );
    check("first_party", a.first_party != b.first_party);
    check("introspect", a.introspect != b.introspect);
    check("require_dpop", a.require_dpop != b.require_dpop);
    check("keys", a.key_source != b.key_source);
    out
}
