//! `GET /userinfo` (OpenID Connect Core §5.3), and `authenticate`, which
//! the account API shares: a bearer token or the cookie-mode access cookie.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::cookies;
use super::error::ApiError;
use super::extract::bearer_token;
use super::AppState;
use crate::domain::error::DomainError;
use crate::domain::verify::VerifiedAccess;
use crate::domain::Services;
use crate::tokens::jwt::JwtError;

/// The claims returned.
#[derive(Debug, Serialize)]
pub struct UserinfoResponse {
    sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
}

/// Verifies the request's access token through the one verification path:
/// `Authorization: Bearer` when present (explicit wins, and needs no Origin
/// check: a page elsewhere cannot attach it), else the cookie-mode access
/// cookie, with the Origin check for unsafe methods.
///
/// # Errors
/// 401 `invalid_token` for a missing, bad, expired or revoked token; 403 for
/// a cookie-authenticated state change from a foreign origin.
pub async fn authenticate(
    req: &HttpRequest,
    services: &Services,
) -> Result<VerifiedAccess, ApiError> {
    if let Some(token) = bearer_token(req) {
        return Ok(services.verify_access_token(&token).await?);
    }
    cookies::authenticate_cookie(req, services)
        .await?
        .ok_or_else(|| DomainError::MissingToken.into())
}

/// Returns `sub`, and `email` with scope `email`.
///
/// # Errors
/// 401 `invalid_token`; 503.
pub async fn get_userinfo(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let access = authenticate(&req, &state.services).await?;
    let user_id = access
        .user_id
        .ok_or(DomainError::InvalidToken(JwtError::Invalid))?;
    let user = state
        .services
        .store
        .find_user(user_id)
        .await
        .map_err(DomainError::from)?
        .ok_or(DomainError::TokenRevoked)?;
    let with_email = access.claims.scope.split(' ').any(|s| s == "email");
    Ok(HttpResponse::Ok().json(UserinfoResponse {
        sub: user.id.to_string(),
        email: with_email.then_some(user.email),
        email_verified: with_email.then_some(user.email_verified),
    }))
}
