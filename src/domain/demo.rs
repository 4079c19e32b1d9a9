//! The demo client behind `/demo/`: a public cookie-mode client whose one
//! origin is the issuer's own. Its id is derived from that origin, so every
//! instance computes the same id without asking anyone, and provisioning is
//! one insert that the database's primary key decides: of several instances
//! starting at once, one inserts and the others see a conflict, which means
//! the client is already there. The page itself is served by `http::demo`.

use aws_lc_rs::digest;

use super::authorization::redirect::validate_redirect_uri;
use super::clients::NewClient;
use super::error::DomainError;
use super::origins::origin_of;
use super::types::{ClientId, ClientKind, GrantType, Scope};
use super::Services;
use crate::store::StoreError;

/// The demo client's well-known name.
pub const DEMO_CLIENT_NAME: &str = "latchkey-demo";

/// The scope the demo page logs in with.
pub const DEMO_SCOPE: &str = "openid email";

/// The demo client's id for a server whose issuer has origin `origin`: a
/// UUIDv8 from SHA-256 over a fixed label and the origin. A new issuer origin
/// gets a new client, so a stored client never has to change. (Version 2 of
/// the label: the client that also signs in through `/authorize`.)
pub fn demo_client_id(origin: &str) -> ClientId {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"latchkey-demo-client-v2\0");
    ctx.update(origin.as_bytes());
    let hash = ctx.finish();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash.as_ref()[..16]);
    ClientId(uuid::Builder::from_custom_bytes(bytes).into_uuid())
}

impl Services {
    /// The issuer's origin: the demo page's origin and its client's one
    /// allowed origin.
    ///
    /// # Errors
    /// `InvalidRequest` when the issuer has no usable origin (validated
    /// settings always do).
    pub fn issuer_origin(&self) -> Result<String, DomainError> {
        origin_of(&self.policy.issuer)
            .ok_or(DomainError::InvalidRequest("server.issuer has no origin"))
    }

    /// Where the authorization code flow returns to the demo page, when the
    /// issuer's URL may be a redirect URI (https, or loopback http);
    /// otherwise the demo offers the password login only.
    pub fn demo_redirect_uri(&self) -> Option<String> {
        let uri = format!("{}/demo/", self.policy.issuer);
        validate_redirect_uri(&uri).ok()
    }

    /// Creates the demo client unless it exists; idempotent and safe to run
    /// on several instances at once. Returns its id.
    ///
    /// # Errors
    /// Store failures.
    pub async fn ensure_demo_client(&self) -> Result<ClientId, DomainError> {
        let origin = self.issuer_origin()?;
        let id = demo_client_id(&origin);
        // The store, not the cache: a disabled demo client exists too.
        if self.store.find_client(id).await?.is_some() {
            return Ok(id);
        }
        let redirect = self.demo_redirect_uri();
        let mut grants = vec![GrantType::Password, GrantType::RefreshToken];
        if redirect.is_some() {
            grants.push(GrantType::AuthorizationCode);
        }
        let created = self.new_client_record(
            NewClient {
                name: DEMO_CLIENT_NAME.to_owned(),
                kind: ClientKind::Public,
                grants,
                scopes: Scope::parse(DEMO_SCOPE).unwrap_or_default(),
                audience: None,
                cookie_mode: true,
                origins: vec![origin],
                redirect_uris: redirect.into_iter().collect(),
                post_logout_redirect_uris: vec![],
                // The operator's own page: no consent screen.
                first_party: true,
                introspect: false,
                require_dpop: false,
                admin: false,
                key_source: None,
            },
            id,
        )?;
        match self.store.insert_client(&created.client).await {
            Ok(()) => self.client_registered(&created.client).await?,
            // Another instance inserted it first: the same record, by
            // construction.
            Err(StoreError::Conflict) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_client_id_is_stable_per_origin() {
        let a = demo_client_id("http://127.0.0.1:8080");
        assert_eq!(a, demo_client_id("http://127.0.0.1:8080"));
        assert_ne!(a, demo_client_id("http://localhost:8080"));
        assert_eq!(a.0.get_version_num(), 8);
    }
}
