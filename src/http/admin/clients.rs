//! `/admin/v1/clients`: list, create, get, change, delete, suspend and
//! re-enable a client, and rotate its secret, through the lifecycle methods
//! `latchkey clients` calls. Secrets appear only in the answers that create
//! them (create, rotate-secret), never in a listing.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Duration;

use super::auth::admin_caller;
use super::client_wire::{
    client_changes, new_client, ClientListParams, ClientListResponse, ClientResponse,
    CreateClientRequest, CreatedClientResponse, DeletedClientResponse, RotateSecretRequest,
    RotatedSecretResponse, UpdateClientRequest,
};
use super::paging::{encode_cursor, parse_query, Listing};
use super::ErrorResponse;
use crate::domain::error::DomainError;
use crate::domain::records::PageAfter;
use crate::domain::types::ClientId;
use crate::http::error::ApiError;
use crate::http::extract::{JsonBody, OptionalJson};
use crate::http::AppState;

/// The longest rotation overlap accepted, as the command line's.
const MAX_OVERLAP_SECS: i64 = 365 * 86_400;

fn client_id(raw: &str) -> Result<ClientId, ApiError> {
    // Not a UUID: no such client.
    Ok(ClientId::parse(raw).ok_or(DomainError::NotFound)?)
}

fn path_id(path: &web::Path<String>) -> Result<ClientId, ApiError> {
    client_id(path.as_str())
}

/// Lists clients, disabled ones too, oldest first.
///
/// # Errors
/// 400 for a bad limit or cursor; 401, 403, 503.
#[utoipa::path(get, path = "/admin/v1/clients", tag = "clients",
    params(ClientListParams),
    responses(
        (status = 200, description = "One page of clients", body = ClientListResponse),
        (status = 400, description = "Bad limit, cursor or parameter", body = ErrorResponse),
        (status = 401, description = "No valid access token", body = ErrorResponse),
        (status = 403, description = "The token lacks latchkey:admin", body = ErrorResponse),
    ),
    security(("bearer" = ["latchkey:admin"])))]
pub async fn list_clients(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let services = &state.services;
    admin_caller(&req, services).await?;
    let query = parse_query(req.query_string(), Listing::Clients, &[])?;
    let after = query.after.map(|a| PageAfter {
        created_at: a.created_at,
        id: ClientId(a.id),
    });
    let page = services.page_clients(after, query.limit).await?;
    Ok(HttpResponse::Ok().json(ClientListResponse {
        clients: page
            .items
            .iter()
            .map(|c| ClientResponse::new(services, c))
            .collect(),
        next_cursor: page.next.map(|k| {
            encode_cursor(
                Listing::Clients,
                PageAfter {
                    created_at: k.created_at,
                    id: k.id.0,
                },
            )
        }),
    }))
}

/// Registers a client; a confidential one's secret is in this answer only.
///
/// # Errors
/// 400 for an invalid combination; 401, 403, 503.
#[utoipa::path(post, path = "/admin/v1/clients", tag = "clients",
    request_body = CreateClientRequest,
    responses(
        (status = 201, description = "Created; the secret is shown this once", body = CreatedClientResponse,
            headers(("Location" = String, description = "The new client"))),
        (status = 400, description = "Invalid client", body = ErrorResponse),
        (status = 401, description = "No valid access token", body = ErrorResponse),
        (status = 403, description = "The token lacks latchkey:admin", body = ErrorResponse),
    ),
    security(("bearer" = ["latchkey:admin"])))]
pub async fn post_client(
    req: HttpRequest,
    body: JsonBody<CreateClientRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let services = &state.services;
    let caller = admin_caller(&req, services).await?;
    let new = new_client(body.0)?;
    let created = services.create_client_by(new, &caller.actor()).await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("{}/clients/{}", super::PREFIX, created.client.id),
        ))
        .json(CreatedClientResponse {
            client: ClientResponse::new(services, &created.client),
            client_secret: created.secret,
        }))
}

/// A client by id, disabled or not; never its secret.
///
/// # Errors
/// 404; 401, 403, 503.
#[utoipa::path(get, path = "/admin/v1/clients/{id}", tag = "clients",
    params(("id" = String, Path, description = "The client id (a UUID)")),
    responses(
        (status = 200, description = "The client", body = ClientResponse),
        (status = 401, description = "No valid access token", body = ErrorResponse),
        (status = 403, description = "The token lacks latchkey:admin", body = ErrorResponse),
        (status = 404, description = "No such client", body = ErrorResponse),
    ),
    security(("bearer" = ["latchkey:admin"])))]
pub async fn get_client(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let services = &state.services;
    admin_caller(&req, services).await?;
    let c = services.get_client(path_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(ClientResponse::new(services, &c)))
}

/// Changes a client's settings, checked by registration's rules.
///
/// # Errors
/// 400 for an invalid result, 404; 401, 403, 503.
#[utoipa::path(patch, path = "/admin/v1/clients/{id}", tag = "clients",
    params(("id" = String, Path, description = "The client id (a UUID)")),
    request_body = UpdateClientRequest,
    responses(
        (status = 200, description = "The client as changed", body = ClientResponse),
        (status = 400, description = "Invalid change", body = ErrorResponse),
        (status = 401, description = "No valid access token", body = ErrorResponse),
        (status = 403, description = "The token lacks latchkey:admin", body = ErrorResponse),
        (status = 404, description = "No such client", body = ErrorResponse),
    ),
    security(("bearer" = ["latchkey:admin"])))]
pub async fn patch_client(
    req: HttpRequest,
    path: web::Path<String>,
    body: JsonBody<UpdateClientRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let services = &state.services;
    let caller = admin_caller(&req, services).await?;
    let id = path_id(&path)?;
    let changes = client_changes(body.0)?;
    let c = services.update_client(id, changes, &caller.actor()).await?;
    Ok(HttpResponse::Ok().json(ClientResponse::new(services, &c)))
}

/// Removes a client and every session of it (their refresh and access
/// tokens die with them).
///
/// # Errors
/// 404; 401, 403, 503.
#[utoipa::path(delete, path = "/admin/v1/clients/{id}", tag = "clients",
    params(("id" = String, Path, description = "The client id (a UUID)")),
    responses(
        (status = 200, description = "Deleted", body = DeletedClientResponse),
        (status = 401, description = "No valid access token", body = ErrorResponse),
        (status = 403, description = "The token lacks latchkey:admin", body = ErrorResponse),
        (status = 404, description = "No such client", body = ErrorResponse),
    ),
    security(("bearer" = ["latchkey:admin"])))]
pub async fn delete_client(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let services = &state.services;
    let caller = admin_caller(&req, services).await?;
    let id = path_id(&path)?;
    let ended = services.delete_client(id, &caller.actor()).await?;
    Ok(HttpResponse::Ok().json(DeletedClientResponse {
        client_id: id.to_string(),
        deleted: true,
        sessions_ended: ended,
    }))
}

/// Suspends a client: every grant, refresh, introspection and revocation
/// call of it is refused and its access tokens are inactive. Idempotent.
///
/// # Errors
/// 404; 401, 403, 503.
#[utoipa::path(post, path = "/admin/v1/clients/{id}/disable", tag = "clients",
    params(("id" = String, Path, description = "The client id (a UUID)")),
    responses(
        (status = 204, description = "Disabled"),
        (status = 401, description = "No valid access token", body = ErrorResponse),
        (status = 403, description = "The token lacks latchkey:admin", body = ErrorResponse),
        (status = 404, description = "No such client", body = ErrorResponse),
    ),
    security(("bearer" = ["latchkey:admin"])))]
pub async fn post_client_disable(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    set_disabled(req, path, state, true).await
}

/// Undoes `disable`. Idempotent.
///
/// # Errors
/// 404; 401, 403, 503.
#[utoipa::path(post, path = "/admin/v1/clients/{id}/enable", tag = "clients",
    params(("id" = String, Path, description = "The client id (a UUID)")),
    responses(
        (status = 204, description = "Enabled"),
        (status = 401, description = "No valid access token", body = ErrorResponse),
        (status = 403, description = "The token lacks latchkey:admin", body = ErrorResponse),
        (status = 404, description = "No such client", body = ErrorResponse),
    ),
    security(("bearer" = ["latchkey:admin"])))]
pub async fn post_client_enable(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    set_disabled(req, path, state, false).await
}

async fn set_disabled(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    disabled: bool,
) -> Result<HttpResponse, ApiError> {
    let services = &state.services;
    let caller = admin_caller(&req, services).await?;
    services
        .set_client_disabled(path_id(&path)?, disabled, &caller.actor())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Gives a confidential client a new secret, shown in this answer only; the
/// previous one keeps working for the overlap.
///
/// # Errors
/// 400 for a bad overlap, 404 (also for a public client); 401, 403, 503.
#[utoipa::path(post, path = "/admin/v1/clients/{id}/rotate-secret", tag = "clients",
    params(("id" = String, Path, description = "The client id (a UUID)")),
    request_body(content = Option<RotateSecretRequest>, description = "Optional; an empty body takes the default overlap"),
    responses(
        (status = 200, description = "The new secret, shown this once", body = RotatedSecretResponse),
        (status = 400, description = "Bad overlap", body = ErrorResponse),
        (status = 401, description = "No valid access token", body = ErrorResponse),
        (status = 403, description = "The token lacks latchkey:admin", body = ErrorResponse),
        (status = 404, description = "No such confidential client", body = ErrorResponse),
    ),
    security(("bearer" = ["latchkey:admin"])))]
pub async fn post_rotate_secret(
    req: HttpRequest,
    path: web::Path<String>,
    body: OptionalJson<RotateSecretRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let services = &state.services;
    let caller = admin_caller(&req, services).await?;
    let id = path_id(&path)?;
    let overlap = match body.0.unwrap_or_default().overlap_secs {
        None => services.default_secret_overlap(),
        Some(s) if (0..=MAX_OVERLAP_SECS).contains(&s) => Duration::seconds(s),
        Some(_) => {
            return Err(
                DomainError::InvalidRequest("overlap_secs must be between 0 and 31536000").into(),
            )
        }
    };
    let rotated = services
        .rotate_client_secret(id, overlap, &caller.actor())
        .await?;
    Ok(HttpResponse::Ok().json(RotatedSecretResponse {
        client_id: id.to_string(),
        client_secret: rotated.secret,
        previous_secret_valid_until: rotated.previous_valid_until,
    }))
}
