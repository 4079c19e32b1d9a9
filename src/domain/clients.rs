//! Client registration and authentication. Client secrets are 256 random
//! bits generated here, shown once, and stored as a SHA-256 digest compared
//! in constant time: a slow password hash is the wrong tool for a
//! high-entropy secret and would cap client_credentials throughput.

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::sync::Arc;

use super::error::DomainError;
use super::types::{ClientId, ClientKind, GrantType, Scope};
use super::Services;
use crate::store::{AuditEvent, ClientRecord};

/// The prefix of client secrets, so secret scanners can spot a leaked one.
pub const SECRET_PREFIX: &str = "lk_cs_";

/// What `clients create` asks for.
#[derive(Debug, Clone)]
pub struct NewClient {
    /// Display name.
    pub name: String,
    /// Public or confidential.
    pub kind: ClientKind,
    /// Allowed grants.
    pub grants: Vec<GrantType>,
    /// Allowed scopes.
    pub scopes: Scope,
    /// `aud` of its access tokens.
    pub audience: Option<String>,
    /// Tokens in cookies.
    pub cookie_mode: bool,
    /// Allowed browser origins.
    pub origins: Vec<String>,
    /// Redirect URIs for the authorization code flow.
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the browser afterwards.
    pub post_logout_redirect_uris: Vec<String>,
    /// Skips the consent page (the operator's own apps).
    pub first_party: bool,
}

/// A registered client and, for confidential ones, its secret (shown once;
/// `Debug` redacts it).
#[derive(Clone)]
pub struct CreatedClient {
    /// The stored client.
    pub client: ClientRecord,
    /// The secret, for confidential clients.
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
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

fn secret_digest(secret: &str) -> Vec<u8> {
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

impl Services {
    /// Registers a client.
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
        self.origins.note_client(client);
        let mut ev = AuditEvent::new("client_created", client.created_at);
        ev.client_id = Some(client.id);
        ev.reason = Some(format!(
            "{} client {:?}, grants {}",
            client.kind.as_str(),
            client.name,
            client.grants.join(",")
        ));
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
        let redirect_uris = validate_uris(&new.redirect_uris)?;
        let post_logout_redirect_uris = validate_uris(&new.post_logout_redirect_uris)?;
        let secret = match new.kind {
            ClientKind::Confidential => Some(generate_secret()?),
            ClientKind::Public => None,
        };
        let now = self.now();
        let client = ClientRecord {
            id,
            name: new.name.trim().to_owned(),
            kind: new.kind,
            secret_hash: secret.as_deref().map(secret_digest),
            grants: new.grants.iter().map(|g| g.as_str().to_owned()).collect(),
            scopes: new.scopes.tokens().to_vec(),
            audience: new.audience.filter(|a| !a.is_empty()),
            cookie_mode: new.cookie_mode,
            origins,
            redirect_uris,
            post_logout_redirect_uris,
            first_party: new.first_party,
            created_at: now,
        };
        Ok(CreatedClient { client, secret })
    }

    /// Authenticates the caller (RFC 6749 §2.3): confidential clients by
    /// secret, public clients by id alone.
    ///
    /// # Errors
    /// `ClientAuthFailed` for an unknown client, a missing or wrong secret,
    /// or a secret sent by a public client.
    pub async fn authenticate_client(
        &self,
        creds: &ClientCredentials,
    ) -> Result<Arc<ClientRecord>, DomainError> {
        let id = creds
            .client_id
            .as_deref()
            .ok_or(DomainError::ClientAuthFailed)?;
        let id = ClientId::parse(id).ok_or(DomainError::ClientAuthFailed)?;
        let client = self
            .find_client(id)
            .await?
            .ok_or(DomainError::ClientAuthFailed)?;
        match (client.kind, &creds.client_secret, &client.secret_hash) {
            (ClientKind::Public, None, _) => Ok(client),
            (ClientKind::Confidential, Some(secret), Some(stored)) => {
                aws_lc_rs::constant_time::verify_slices_are_equal(&secret_digest(secret), stored)
                    .map_err(|_| DomainError::ClientAuthFailed)?;
                Ok(client)
            }
            _ => Err(DomainError::ClientAuthFailed),
        }
    }
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

fn generate_secret() -> Result<String, DomainError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| DomainError::Internal("no randomness"))?;
    Ok(format!("{SECRET_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        };
        assert!(!format!("{c:?}").contains("topsecret"));
    }
}
