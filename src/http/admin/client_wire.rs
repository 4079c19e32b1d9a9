//! The wire types of `/admin/v1/clients` and their translation into what
//! the lifecycle methods take. Types that carry a secret have no `Debug`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::client_lifecycle::ClientChanges;
use crate::domain::clients::NewClient;
use crate::domain::error::DomainError;
use crate::domain::records::{ClientRecord, KeySource};
use crate::domain::types::{ClientKind, GrantType, Scope};
use crate::domain::Services;
use crate::http::error::ApiError;

/// A client as the admin API shows it: never a secret or its digest.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientResponse {
    client_id: String,
    name: String,
    /// `public` or `confidential`.
    kind: String,
    grants: Vec<String>,
    scopes: Vec<String>,
    /// The `aud` of its access tokens (the server's default when none was
    /// set).
    audience: String,
    cookie_mode: bool,
    origins: Vec<String>,
    redirect_uris: Vec<String>,
    post_logout_redirect_uris: Vec<String>,
    first_party: bool,
    introspect: bool,
    require_dpop: bool,
    /// May call the admin API (set with `clients create --admin` only).
    admin: bool,
    created_at: DateTime<Utc>,
    disabled: bool,
    disabled_at: Option<DateTime<Utc>>,
    /// Until when the secret replaced by the last rotation still works.
    previous_secret_valid_until: Option<DateTime<Utc>>,
    /// `client_secret`, `private_key_jwt` or `none` (public).
    auth_method: String,
    /// A `private_key_jwt` client's JWKS URL.
    jwks_uri: Option<String>,
    /// A `private_key_jwt` client's public keys, when given inline.
    #[schema(value_type = Option<Object>)]
    jwks: Option<serde_json::Value>,
}

impl ClientResponse {
    pub(super) fn new(services: &Services, c: &ClientRecord) -> Self {
        Self {
            client_id: c.id.to_string(),
            name: c.name.clone(),
            kind: c.kind.as_str().to_owned(),
            grants: c.grants.clone(),
            scopes: c.scopes.clone(),
            audience: services.audience_for(c).to_owned(),
            cookie_mode: c.cookie_mode,
            origins: c.origins.clone(),
            redirect_uris: c.redirect_uris.clone(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            first_party: c.first_party,
            introspect: c.introspect,
            require_dpop: c.require_dpop,
            admin: c.admin,
            created_at: c.created_at,
            disabled: c.disabled_at.is_some(),
            disabled_at: c.disabled_at,
            previous_secret_valid_until: c.previous_secret_expires_at,
            auth_method: c.auth_method().to_owned(),
            jwks_uri: match &c.key_source {
                Some(KeySource::JwksUri(u)) => Some(u.clone()),
                _ => None,
            },
            // Public keys only: registration refuses anything else.
            jwks: match &c.key_source {
                Some(KeySource::Jwks(j)) => serde_json::from_str(j).ok(),
                _ => None,
            },
        }
    }
}

/// A page of clients, oldest first, disabled ones included.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientListResponse {
    pub(super) clients: Vec<ClientResponse>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub(super) next_cursor: Option<String>,
}

/// Query of `GET /admin/v1/clients`, for the document only: `parse_query`
/// reads the query strictly (a repeated or unknown parameter is refused).
#[expect(
    dead_code,
    reason = "read by the OpenAPI document only, never constructed"
)]
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClientListParams {
    /// Rows per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Whether the client can keep a secret.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KindRequest {
    /// Mobile and browser apps.
    Public,
    /// Servers: gets a secret.
    Confidential,
}

/// `POST /admin/v1/clients` body: what `clients create` takes, bar
/// `--admin` (admin clients are made at the command line only).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClientRequest {
    name: String,
    kind: KindRequest,
    /// `authorization_code`, `password`, `refresh_token`,
    /// `client_credentials`.
    grants: Vec<String>,
    #[serde(default)]
    scopes: Vec<String>,
    /// The `aud` of its access tokens (default: the server's).
    #[serde(default)]
    audience: Option<String>,
    #[serde(default)]
    cookie_mode: bool,
    #[serde(default)]
    origins: Vec<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    first_party: bool,
    #[serde(default)]
    introspect: bool,
    #[serde(default)]
    require_dpop: bool,
    /// `private_key_jwt` (RFC 7523) with the keys at this URL (https, or
    /// http on loopback); such a client gets no secret.
    jwks_uri: Option<String>,
    /// `private_key_jwt` with these public keys (a JWK or a JWKS).
    #[schema(value_type = Option<Object>)]
    jwks: Option<serde_json::Value>,
}

/// A new client and, for a confidential one, its secret: shown this once
/// (no `Debug`, so it cannot reach a log line).
#[derive(Serialize, ToSchema)]
pub struct CreatedClientResponse {
    #[serde(flatten)]
    pub(super) client: ClientResponse,
    pub(super) client_secret: Option<String>,
}

/// `PATCH /admin/v1/clients/{id}` body: only the fields given change;
/// lists replace the whole list. `audience: null` returns to the default.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateClientRequest {
    name: Option<String>,
    grants: Option<Vec<String>>,
    scopes: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    audience: Option<Option<String>>,
    cookie_mode: Option<bool>,
    origins: Option<Vec<String>>,
    redirect_uris: Option<Vec<String>>,
    post_logout_redirect_uris: Option<Vec<String>>,
    first_party: Option<bool>,
    introspect: Option<bool>,
    require_dpop: Option<bool>,
    /// New keys of a `private_key_jwt` client (the method itself stays).
    jwks_uri: Option<String>,
    /// New inline keys of a `private_key_jwt` client.
    #[schema(value_type = Option<Object>)]
    jwks: Option<serde_json::Value>,
}

/// A field that is present, even as `null`, is `Some`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `POST /admin/v1/clients/{id}/rotate-secret` body (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecretRequest {
    /// How long the previous secret keeps working, in seconds: 0 ends it at
    /// once (after a leak); at most 365 days; default
    /// `clients.secret_overlap_secs` (24 h).
    #[schema(minimum = 0, maximum = 31536000)]
    pub(super) overlap_secs: Option<i64>,
}

/// The new secret, shown this once (no `Debug`, like the secret's other
/// carriers).
#[derive(Serialize, ToSchema)]
pub struct RotatedSecretResponse {
    pub(super) client_id: String,
    pub(super) client_secret: String,
    /// `null` when the previous secret ended at once.
    pub(super) previous_secret_valid_until: Option<DateTime<Utc>>,
}

/// What `DELETE` ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedClientResponse {
    pub(super) client_id: String,
    pub(super) deleted: bool,
    /// Live sessions of the client that ended with it.
    pub(super) sessions_ended: u64,
}

fn grants(raw: &[String]) -> Result<Vec<GrantType>, ApiError> {
    raw.iter()
        .map(|g| GrantType::parse(g).ok_or(DomainError::InvalidRequest("unknown grant type")))
        .collect::<Result<_, _>>()
        .map_err(Into::into)
}

fn scopes(raw: &[String]) -> Result<Scope, ApiError> {
    // Each entry must be one scope token: a space would smuggle in two.
    if raw.iter().any(|s| s.is_empty() || s.contains(' ')) {
        return Err(DomainError::InvalidRequest("invalid scope").into());
    }
    Ok(Scope::parse(&raw.join(" ")).ok_or(DomainError::InvalidRequest("invalid scope"))?)
}

pub(super) fn new_client(r: CreateClientRequest) -> Result<NewClient, ApiError> {
    Ok(NewClient {
        name: r.name,
        kind: match r.kind {
            KindRequest::Public => ClientKind::Public,
            KindRequest::Confidential => ClientKind::Confidential,
        },
        grants: grants(&r.grants)?,
        scopes: scopes(&r.scopes)?,
        audience: r.audience,
        cookie_mode: r.cookie_mode,
        origins: r.origins,
        redirect_uris: r.redirect_uris,
        post_logout_redirect_uris: r.post_logout_redirect_uris,
        first_party: r.first_party,
        introspect: r.introspect,
        require_dpop: r.require_dpop,
        admin: false,
        key_source: key_source(r.jwks_uri, r.jwks)?,
    })
}

pub(super) fn client_changes(r: UpdateClientRequest) -> Result<ClientChanges, ApiError> {
    Ok(ClientChanges {
        name: r.name,
        grants: r.grants.as_deref().map(grants).transpose()?,
        scopes: r.scopes.as_deref().map(scopes).transpose()?,
        audience: r.audience,
        cookie_mode: r.cookie_mode,
        origins: r.origins,
        redirect_uris: r.redirect_uris,
        post_logout_redirect_uris: r.post_logout_redirect_uris,
        first_party: r.first_party,
        introspect: r.introspect,
        require_dpop: r.require_dpop,
        key_source: key_source(r.jwks_uri, r.jwks)?,
    })
}

/// `jwks_uri` or `jwks`, at most one; the domain checks what they hold.
fn key_source(
    jwks_uri: Option<String>,
    jwks: Option<serde_json::Value>,
) -> Result<Option<KeySource>, ApiError> {
    match (jwks_uri, jwks) {
        (Some(_), Some(_)) => {
            Err(DomainError::InvalidRequest("give jwks_uri or jwks, not both").into())
        }
        (Some(uri), None) => Ok(Some(KeySource::JwksUri(uri))),
        (None, Some(keys)) => Ok(Some(KeySource::Jwks(keys.to_string()))),
        (None, None) => Ok(None),
    }
}
