//! Client registration and authentication. Client secrets are 256 random
//! bits generated here, shown once, and stored as a SHA-256 digest compared
//! in constant time: a slow password hash is the wrong tool for a
//! high-entropy secret and would cap client_credentials throughput.

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Duration, Utc};

use super::error::DomainError;
use super::types::{ClientId, ClientKind, GrantType, Scope};
use super::Services;
use crate::store::AuditKind;
use crate::store::{AuditEvent, ClientRecord, KeySource};

/// The prefix of client secrets, so secret scanners can spot a leaked one.
pub const SECRET_PREFIX: &str = "lk_cs_";

/// What `clients create` asks for.
#[derive(Debug, Clone)]
pub struct NewClient {
    /// Shown on the login, consent and logout pages; stored trimmed, and
    /// must not be blank.
    pub name: String,
    /// Only a confidential client may get a secret, use client_credentials
    /// or `private_key_jwt`, or introspect any token.
    pub kind: ClientKind,
    /// At least one; the token endpoint refuses any other grant with
    /// `unauthorized_client`.
    pub grants: Vec<GrantType>,
    /// The most its tokens may carry; a request naming no scope gets all of
    /// them. `latchkey:admin` is added for an admin client.
    pub scopes: Scope,
    /// `aud` of its access tokens.
    pub audience: Option<String>,
    /// Token responses set `HttpOnly` cookies instead of carrying the
    /// tokens in the body; needs at least one origin.
    pub cookie_mode: bool,
    /// Browser origins CORS lets in, and the only ones a cookie-mode request
    /// may come from; normalised by `parse_origin`.
    pub origins: Vec<String>,
    /// Redirect URIs for the authorization code flow.
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the browser afterwards.
    pub post_logout_redirect_uris: Vec<String>,
    /// Skips the consent page (the operator's own apps).
    pub first_party: bool,
    /// May introspect any token (`--introspect`); confidential clients only.
    pub introspect: bool,
    /// Refuse every grant that carries no DPoP proof (RFC 9449).
    pub require_dpop: bool,
    /// May obtain `latchkey:admin` through client_credentials (`--admin`;
    /// see `domain::admin`).
    pub admin: bool,
    /// `private_key_jwt` (RFC 7523): where the client's public keys come
    /// from. Such a client gets no secret.
    pub key_source: Option<KeySource>,
}

/// A registered client and, for confidential ones, its secret (shown once;
/// `Debug` redacts it).
#[derive(Clone)]
pub struct CreatedClient {
    /// As stored: the secret is there only as its digest.
    pub client: ClientRecord,
    /// `None` for public clients and for `private_key_jwt` clients, which
    /// authenticate with keys instead.
    pub secret: Option<String>,
}

impl std::fmt::Debug for CreatedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedClient")
            .field("client", &self.client)
            .field("secret", &crate::tokens::redacted(&self.secret))
            .finish()
    }
}

/// How the caller identified itself at an OAuth endpoint.
#[derive(Clone, Default)]
pub struct ClientCredentials {
    /// `client_id`, from the Basic header or the body.
    pub client_id: Option<String>,
    /// `client_secret`, from the Basic header or the body.
    pub client_secret: Option<String>,
    /// `client_assertion` (RFC 7521 §4.2), its type already checked to be
    /// a JWT (RFC 7523 §2.2).
    pub client_assertion: Option<String>,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field(
                "client_assertion",
                &self.client_assertion.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

pub(crate) fn secret_digest(secret: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, secret.as_bytes())
        .as_ref()
        .to_vec()
}

/// Normalises an origin (`scheme://host[:port]`, no path) the way browsers
/// serialise one in the `Origin` header: lower case, default port omitted.
///
/// # Errors
/// `InvalidRequest` for anything else.
pub fn parse_origin(raw: &str) -> Result<String, DomainError> {
    let o = raw.trim().trim_end_matches('/').to_ascii_lowercase();
    let o = o
        .strip_suffix(":443")
        .filter(|s| s.starts_with("https://"))
        .or_else(|| o.strip_suffix(":80").filter(|s| s.starts_with("http://")))
        .map_or(o.clone(), str::to_owned);
    let rest = o
        .strip_prefix("https://")
        .or_else(|| o.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(['/', '?', '#', ' ', '@']) => Ok(o),
        _ => Err(DomainError::InvalidRequest(
            "an origin is scheme://host[:port], e.g. https://app.example",
        )),
    }
}

/// The clients this process has looked up. `epoch` moves on every clear,
/// under the same lock as the map, so a lookup that read the store before a
/// clear cannot put its stale record back afterwards.
#[derive(Debug, Default)]
pub struct ClientCache {
    entries: RwLock<CacheEntries>,
    /// The store's client version at the last poll.
    seen_version: Mutex<Option<i64>>,
}

#[derive(Debug, Default)]
struct CacheEntries {
    epoch: u64,
    clients: HashMap<ClientId, (Arc<ClientRecord>, DateTime<Utc>)>,
}

impl ClientCache {
    /// The cached client, unless it was read `ttl` or longer ago.
    pub fn get(
        &self,
        id: ClientId,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Option<Arc<ClientRecord>> {
        let entries = self.entries.read().ok()?;
        let (client, read_at) = entries.clients.get(&id)?;
        (*read_at <= now && now - *read_at < ttl).then(|| client.clone())
    }

    /// The current epoch, to pass to `insert` after reading the store.
    pub fn epoch(&self) -> u64 {
        self.entries.read().map(|e| e.epoch).unwrap_or(u64::MAX)
    }

    /// Caches `client`, read from the store at `epoch`, unless the cache was
    /// cleared since.
    pub fn insert(&self, epoch: u64, client: Arc<ClientRecord>, now: DateTime<Utc>) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.epoch == epoch {
                entries.clients.insert(client.id, (client, now));
            }
        }
    }

    /// Drops every cached client and moves the epoch, so a lookup already
    /// in flight cannot put back what it read before.
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.write() {
            entries.clients.clear();
            entries.epoch = entries.epoch.wrapping_add(1);
        }
    }

    /// Records the store's client version; whether it differs from the one
    /// seen last (the first poll always counts as a change: the cache may
    /// have been filled before it).
    pub fn note_version(&self, version: i64) -> bool {
        match self.seen_version.lock() {
            Ok(mut seen) => seen.replace(version) != Some(version),
            Err(_) => true,
        }
    }
}

impl Services {
    /// Validates `new`, stores it under a fresh id and writes the audit
    /// record; the secret exists only in the answer.
    ///
    /// # Errors
    /// Invalid combinations (client_credentials for a public client, cookie
    /// mode without an origin) and store failures.
    pub async fn create_client(&self, new: NewClient) -> Result<CreatedClient, DomainError> {
        let created = self.new_client_record(new, ClientId::new_random())?;
        self.store.insert_client(&created.client).await?;
        self.client_registered(&created.client).await?;
        Ok(created)
    }

    /// Writes the audit record of a newly stored client and makes its
    /// origins known to CORS at once.
    ///
    /// # Errors
    /// Store failures.
    pub(crate) async fn client_registered(&self, client: &ClientRecord) -> Result<(), DomainError> {
        self.client_registered_by(client, None).await
    }

    /// `client_registered`, with the `client_created` audit record naming
    /// who registered the client when not the operator at the command line.
    ///
    /// # Errors
    /// Store failures.
    pub(crate) async fn client_registered_by(
        &self,
        client: &ClientRecord,
        by: Option<&str>,
    ) -> Result<(), DomainError> {
        self.origins.note_client(client);
        let ev = AuditEvent::new(AuditKind::ClientCreated, client.created_at)
            .client(client.id)
            .reason(
                format!(
                    "{} client {:?}, grants {}",
                    client.kind.as_str(),
                    client.name,
                    client.grants.join(",")
                ) + &by.map(|b| format!(", by {b}")).unwrap_or_default(),
            );
        self.insert_audit(&ev).await?;
        Ok(())
    }

    /// Validates `new` into the record stored under `id`, with a fresh
    /// secret for confidential clients.
    ///
    /// # Errors
    /// `InvalidRequest` for invalid combinations; no randomness.
    pub(crate) fn new_client_record(
        &self,
        new: NewClient,
        id: ClientId,
    ) -> Result<CreatedClient, DomainError> {
        let mut client = self.validated_record(super::admin::with_admin_scope(new), id)?;
        let secret = match (client.kind, &client.key_source) {
            (ClientKind::Confidential, None) => Some(generate_secret()?),
            (ClientKind::Confidential, Some(_)) | (ClientKind::Public, _) => None,
        };
        client.secret_hash = secret.as_deref().map(secret_digest);
        Ok(CreatedClient { client, secret })
    }

    /// Validates `new` into a record under `id`, without any secret; shared
    /// by registration and `clients update`, so a change can never make a
    /// client that registration would refuse.
    ///
    /// # Errors
    /// `InvalidRequest` for invalid combinations.
    pub(crate) fn validated_record(
        &self,
        new: NewClient,
        id: ClientId,
    ) -> Result<ClientRecord, DomainError> {
        super::admin::check_admin(&new)?;
        if new.name.trim().is_empty() {
            return Err(DomainError::InvalidRequest("a client needs a name"));
        }
        if new.grants.is_empty() {
            return Err(DomainError::InvalidRequest(
                "a client needs at least one grant",
            ));
        }
        if new.kind == ClientKind::Public && new.grants.contains(&GrantType::ClientCredentials) {
            return Err(DomainError::InvalidRequest(
                "client_credentials needs a confidential client",
            ));
        }
        if new.introspect && new.kind != ClientKind::Confidential {
            return Err(DomainError::InvalidRequest(
                "--introspect needs a confidential client",
            ));
        }
        if new.cookie_mode && new.origins.is_empty() {
            return Err(DomainError::InvalidRequest(
                "cookie mode needs at least one --origin",
            ));
        }
        let origins = new
            .origins
            .iter()
            .map(|o| parse_origin(o))
            .collect::<Result<Vec<_>, _>>()?;
        let uses_code = new.grants.contains(&GrantType::AuthorizationCode);
        if uses_code && new.redirect_uris.is_empty() {
            return Err(DomainError::InvalidRequest(
                "authorization_code needs at least one --redirect-uri",
            ));
        }
        if !uses_code && !new.redirect_uris.is_empty() {
            return Err(DomainError::InvalidRequest(
                "--redirect-uri needs the authorization_code grant",
            ));
        }
        if new.key_source.is_some() && new.kind != ClientKind::Confidential {
            return Err(DomainError::InvalidRequest(
                "private_key_jwt needs a confidential client",
            ));
        }
        let key_source = new
            .key_source
            .map(super::client_keys::validate_key_source)
            .transpose()?;
        let redirect_uris = validate_uris(&new.redirect_uris)?;
        let post_logout_redirect_uris = validate_uris(&new.post_logout_redirect_uris)?;
        Ok(ClientRecord {
            id,
            name: new.name.trim().to_owned(),
            kind: new.kind,
            secret_hash: None,
            grants: new.grants.iter().map(|g| g.as_str().to_owned()).collect(),
            scopes: new.scopes.tokens().to_vec(),
            audience: new.audience.filter(|a| !a.is_empty()),
            cookie_mode: new.cookie_mode,
            origins,
            redirect_uris,
            post_logout_redirect_uris,
            first_party: new.first_party,
            introspect: new.introspect,
            require_dpop: new.require_dpop,
            admin: new.admin,
            created_at: self.now(),
            disabled_at: None,
            previous_secret_hash: None,
            previous_secret_expires_at: None,
            key_source,
        })
    }

    /// Authenticates the caller (RFC 6749 §2.3): confidential clients by
    /// secret or, registered for `private_key_jwt`, by assertion (RFC 7523);
    /// public clients by id alone. Each client has exactly one method: a
    /// secret from a key client, or an assertion from a secret client, is
    /// refused.
    ///
    /// # Errors
    /// `ClientAuthFailed` for an unknown client, a missing or wrong secret
    /// or assertion, or a secret sent by a public client.
    pub async fn authenticate_client(
        &self,
        creds: &ClientCredentials,
    ) -> Result<Arc<ClientRecord>, DomainError> {
        if let Some(assertion) = creds.client_assertion.as_deref() {
            return self.authenticate_by_assertion(creds, assertion).await;
        }
        let id = creds
            .client_id
            .as_deref()
            .ok_or(DomainError::ClientAuthFailed)?;
        let id = ClientId::parse(id).ok_or(DomainError::ClientAuthFailed)?;
        let client = self
            .find_client(id)
            .await?
            .ok_or(DomainError::ClientAuthFailed)?;
        if client.key_source.is_some() {
            return Err(DomainError::ClientAuthFailed);
        }
        match (client.kind, &creds.client_secret, &client.secret_hash) {
            (ClientKind::Public, None, _) => Ok(client),
            (ClientKind::Confidential, Some(secret), Some(_)) => {
                if secret_matches(&client, secret, self.now()) {
                    Ok(client)
                } else {
                    Err(DomainError::ClientAuthFailed)
                }
            }
            _ => Err(DomainError::ClientAuthFailed),
        }
    }
}

/// Whether `secret` is the client's current secret, or its previous one
/// within the rotation overlap. Both digests are compared in constant time
/// and both comparisons always run (`|`, not `||`), so the answer's timing
/// tells nothing about which one matched or how much of either did.
fn secret_matches(client: &ClientRecord, secret: &str, now: DateTime<Utc>) -> bool {
    use aws_lc_rs::constant_time::verify_slices_are_equal;
    let presented = secret_digest(secret);
    let current = client
        .secret_hash
        .as_deref()
        .is_some_and(|s| verify_slices_are_equal(&presented, s).is_ok());
    let previous = match (
        &client.previous_secret_hash,
        client.previous_secret_expires_at,
    ) {
        (Some(hash), Some(until)) => {
            verify_slices_are_equal(&presented, hash).is_ok() & (now < until)
        }
        _ => false,
    };
    current | previous
}

/// Whether `client` may use `grant`.
pub fn allows(client: &ClientRecord, grant: GrantType) -> bool {
    client.grants.iter().any(|g| g == grant.as_str())
}

/// Validates each URI (see `redirect::validate_redirect_uri`), dropping
/// exact duplicates.
fn validate_uris(raw: &[String]) -> Result<Vec<String>, DomainError> {
    let mut out: Vec<String> = Vec::new();
    for r in raw {
        let uri = crate::domain::authorization::redirect::validate_redirect_uri(r.trim())?;
        if !out.contains(&uri) {
            out.push(uri);
        }
    }
    Ok(out)
}

pub(crate) fn generate_secret() -> Result<String, DomainError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| DomainError::Internal("no randomness"))?;
    Ok(format!("{SECRET_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Arc<ClientRecord> {
        Arc::new(ClientRecord {
            id: ClientId::new_random(),
            name: "c".into(),
            kind: ClientKind::Public,
            secret_hash: None,
            grants: vec![],
            scopes: vec![],
            audience: None,
            cookie_mode: false,
            origins: vec![],
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            first_party: false,
            introspect: false,
            require_dpop: false,
            created_at: DateTime::from_timestamp(1_800_000_000, 0).expect("time"),
            disabled_at: None,
            previous_secret_hash: None,
            previous_secret_expires_at: None,
            admin: false,
            key_source: None,
        })
    }

    #[test]
    fn a_read_from_before_a_clear_is_not_cached_after_it() {
        let cache = ClientCache::default();
        let c = record();
        let now = c.created_at;
        let ttl = Duration::seconds(60);
        let epoch = cache.epoch();
        cache.clear();
        cache.insert(epoch, c.clone(), now);
        assert!(cache.get(c.id, now, ttl).is_none());
        cache.insert(cache.epoch(), c.clone(), now);
        assert!(cache.get(c.id, now, ttl).is_some());
        cache.clear();
        assert!(cache.get(c.id, now, ttl).is_none());
    }

    #[test]
    fn cached_clients_expire_after_the_ttl() {
        let cache = ClientCache::default();
        let c = record();
        let now = c.created_at;
        let ttl = Duration::seconds(60);
        cache.insert(cache.epoch(), c.clone(), now);
        assert!(cache.get(c.id, now + Duration::seconds(59), ttl).is_some());
        assert!(cache.get(c.id, now + Duration::seconds(60), ttl).is_none());
        // A clock that went back does not extend it either.
        assert!(cache.get(c.id, now - Duration::seconds(1), ttl).is_none());
    }

    #[test]
    fn the_first_poll_and_every_moved_version_count_as_changes() {
        let cache = ClientCache::default();
        assert!(cache.note_version(7));
        assert!(!cache.note_version(7));
        assert!(cache.note_version(8));
        assert!(!cache.note_version(8));
    }

    #[test]
    fn secrets_are_long_prefixed_and_distinct() {
        let a = generate_secret().expect("secret");
        let b = generate_secret().expect("secret");
        assert!(a.starts_with(SECRET_PREFIX));
        assert_eq!(a.len(), SECRET_PREFIX.len() + 43);
        assert_ne!(a, b);
    }

    #[test]
    fn origins_are_normalised_and_checked() {
        assert_eq!(
            parse_origin("https://App.example/").expect("ok"),
            "https://app.example"
        );
        assert_eq!(
            parse_origin("http://localhost:5173").expect("ok"),
            "http://localhost:5173"
        );
        assert_eq!(
            parse_origin("https://app.example:443").expect("ok"),
            "https://app.example"
        );
        assert_eq!(
            parse_origin("http://app.example:80").expect("ok"),
            "http://app.example"
        );
        assert_eq!(
            parse_origin("http://app.example:443").expect("ok"),
            "http://app.example:443"
        );
        assert!(parse_origin("app.example").is_err());
        assert!(parse_origin("null").is_err());
        assert!(parse_origin("https://app.example/path").is_err());
    }

    #[test]
    fn credentials_debug_hides_the_secret() {
        let c = ClientCredentials {
            client_id: Some("id".into()),
            client_secret: Some("lk_cs_topsecret".into()),
            client_assertion: Some("eyJhbGciOiJFUzI1NiJ9.topsecret.sig".into()),
        };
        assert!(!format!("{c:?}").contains("topsecret"));
    }
}
