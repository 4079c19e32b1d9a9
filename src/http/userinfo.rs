//! `GET /userinfo` (OpenID Connect Core §5.3).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

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

/// Verifies the request's bearer token through the one verification path.
///
/// # Errors
/// 401 `invalid_token` for a missing, bad, expired or revoked token.
pub async fn authenticate(
    req: &HttpRequest,
    services: &Services,
) -> Result<VerifiedAccess, ApiError> {
    let token = bearer_token(req).ok_or(DomainError::MissingToken)?;
    Ok(services.verify_access_token(&token).await?)
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
        email_verified: with_email.then_some(false),
    }))
}
