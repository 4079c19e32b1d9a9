//! `/admin/v1/users`: list (with a search by email prefix), get, disable,
//! enable and revoke sessions, through the account methods `latchkey users`
//! calls. Users are named by their opaque id; a password hash never leaves.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::auth::admin_caller;
use super::paging::{encode_cursor, parse_query, Listing};
use super::ErrorResponse;
use crate::domain::error::DomainError;
use crate::domain::records::{PageAfter, UserRecord};
use crate::domain::types::UserId;
use crate::http::error::ApiError;
use crate::http::AppState;

/// A user as the admin API shows them.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserResponse {
    /// The opaque id, the `sub` of their tokens.
    id: String,
    email: String,
    email_verified: bool,
    disabled: bool,
    created_at: DateTime<Utc>,
}

impl From<&UserRecord> for UserResponse {
    fn from(u: &UserRecord) -> Self {
        Self {
            id: u.id.to_string(),
            email: u.email.clone(),
            email_verified: u.email_verified,
            disabled: u.disabled,
            created_at: u.created_at,
        }
    }
}

/// A page of users, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserListResponse {
    users: Vec<UserResponse>,
    /// Pass as `cursor` (with the same `email`) for the next page; `null` on
    /// the last page.
    next_cursor: Option<String>,
}

/// Query of `GET /admin/v1/users`, for the document only: `parse_query`
/// reads the query strictly (a repeated or unknown parameter is refused).
#[expect(
    dead_code,
    reason = "read by the OpenAPI document only, never constructed"
)]
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListParams {
    /// Rows per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Only users whose email starts with this, compared case-insensitively
    /// (a whole address finds that user).
    email: Option<String>,
}

/// The user's id, and how many of their sessions the call revoked.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedSessionsResponse {
    id: String,
    revoked: u64,
}

fn path_id(path: &web::Path<String>) -> Result<UserId, ApiError> {
    // Not a UUID: no such user.
    Ok(UserId::parse(path.as_str()).ok_or(DomainError::NotFound)?)
}

/// Lists users, oldest first, optionally those whose email starts with
/// `email`.
///
/// # Errors
/// 400 for a bad limit, cursor or search; 401, 403, 503.
#[utoipa::path(get, path = "/admin/v1/users", tag = "users",
    params(UserListParams),
    responses(
        (status = 200, description = "One page of users", body = UserListResponse),
        (status = 400, description = "Bad limit, cursor or parameter", body = ErrorResponse),
        (status = 401, description = "No valid access token", body = ErrorResponse),
        (status = 403, description = "The token lacks latchkey:admin", body = ErrorResponse),
    ),
    security(("bearer" = ["latchkey:admin"])))]
pub async fn list_users(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let services = &state.services;
    admin_caller(&req, services).await?;
    let query = parse_query(req.query_string(), Listing::Users, &["email"])?;
    let after = query.after.map(|a| PageAfter {
        created_at: a.created_at,
        id: UserId(a.id),
    });
    let email = query.filters.get("email").map(String::as_str);
    let page = services.page_users(after, email, query.limit).await?;
    Ok(HttpResponse::Ok().json(UserListResponse {
        users: page.items.iter().map(UserResponse::from).collect(),
        next_cursor: page.next.map(|k| {
            encode_cursor(
                Listing::Users,
                PageAfter {
                    created_at: k.created_at,
                    id: k.id.0,
                },
            )
        }),
    }))
}

/// A user by id, disabled or not.
///
/// # Errors
/// 404; 401, 403, 503.
#[utoipa::path(get, path = "/admin/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "The user id (a UUID)")),
    responses(
        (status = 200, description = "The user", body = UserResponse),
        (status = 401, description = "No valid access token", body = ErrorResponse),
        (status = 403, description = "The token lacks latchkey:admin", body = ErrorResponse),
        (status = 404, description = "No such user", body = ErrorResponse),
    ),
    security(("bearer" = ["latchkey:admin"])))]
pub async fn get_user(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let services = &state.services;
    admin_caller(&req, services).await?;
    let user = services.get_user(path_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(UserResponse::from(&user)))
}

/// Disables a user: no login, no refresh; every session ends at once.
/// Idempotent.
///
/// # Errors
/// 404; 401, 403, 503.
#[utoipa::path(post, path = "/admin/v1/users/{id}/disable", tag = "users",
    params(("id" = String, Path, description = "The user id (a UUID)")),
    responses(
        (status = 204, description = "Disabled; every session revoked"),
        (status = 401, description = "No valid access token", body = ErrorResponse),
        (status = 403, description = "The token lacks latchkey:admin", body = ErrorResponse),
        (status = 404, description = "No such user", body = ErrorResponse),
    ),
    security(("bearer" = ["latchkey:admin"])))]
pub async fn post_user_disable(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    set_disabled(req, path, state, true).await
}

/// Re-enables a user (their ended sessions stay ended). Idempotent.
///
/// # Errors
/// 404; 401, 403, 503.
#[utoipa::path(post, path = "/admin/v1/users/{id}/enable", tag = "users",
    params(("id" = String, Path, description = "The user id (a UUID)")),
    responses(
        (status = 204, description = "Enabled"),
        (status = 401, description = "No valid access token", body = ErrorResponse),
        (status = 403, description = "The token lacks latchkey:admin", body = ErrorResponse),
        (status = 404, description = "No such user", body = ErrorResponse),
    ),
    security(("bearer" = ["latchkey:admin"])))]
pub async fn post_user_enable(
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
        .set_user_disabled(path_id(&path)?, disabled, &caller.actor())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Revokes every session of a user; the account stays enabled.
///
/// # Errors
/// 404; 401, 403, 503.
#[utoipa::path(post, path = "/admin/v1/users/{id}/revoke-sessions", tag = "users",
    params(("id" = String, Path, description = "The user id (a UUID)")),
    responses(
        (status = 200, description = "How many sessions ended", body = RevokedSessionsResponse),
        (status = 401, description = "No valid access token", body = ErrorResponse),
        (status = 403, description = "The token lacks latchkey:admin", body = ErrorResponse),
        (status = 404, description = "No such user", body = ErrorResponse),
    ),
    security(("bearer" = ["latchkey:admin"])))]
pub async fn post_revoke_sessions(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let services = &state.services;
    let caller = admin_caller(&req, services).await?;
    let id = path_id(&path)?;
    let revoked = services.revoke_user_sessions(id, &caller.actor()).await?;
    Ok(HttpResponse::Ok().json(RevokedSessionsResponse {
        id: id.to_string(),
        revoked,
    }))
}
