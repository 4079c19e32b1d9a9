//! Account recovery over JSON: asking for a verification or reset link, and
//! using one (`/v1/account/email/verify`, `/v1/account/password/reset`,
//! `/v1/account/password/reset/confirm`). Requests for a link always answer
//! 202 with the same body, whether or not the address has an account.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::error::ApiError;
use super::extract::{client_address, JsonBody};
use super::AppState;
use crate::domain::error::DomainError;
use crate::domain::types::Password;

/// The one answer to every link request.
const ACCEPTED: &str = r#"{"status":"accepted","message":"If an account uses this address, a message is on its way."}"#;

fn accepted() -> HttpResponse {
    HttpResponse::Accepted()
        .content_type("application/json")
        .body(ACCEPTED)
}

/// `POST /v1/account/email/verify`: `{"email"}` asks for a new link;
/// `{"token"}` uses one. `Debug` never prints the token.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyEmailRequest {
    email: Option<String>,
    token: Option<String>,
}

impl std::fmt::Debug for VerifyEmailRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyEmailRequest").finish_non_exhaustive()
    }
}

/// Asks for a verification link (202 always) or uses one (204).
///
/// # Errors
/// 400 `invalid_request` for neither or both fields, 400 `invalid_email`,
/// 400 `invalid_grant` for a dead link, 429, 503.
pub async fn post_verify_email(
    req: HttpRequest,
    body: JsonBody<VerifyEmailRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let services = &state.services;
    let address = client_address(&req, state.settings.trusted_proxies());
    match body.0 {
        VerifyEmailRequest {
            email: Some(email),
            token: None,
        } => {
            services
                .request_verification_email(&email, address.as_deref())
                .await?;
            Ok(accepted())
        }
        VerifyEmailRequest {
            email: None,
            token: Some(token),
        } => {
            services.verify_email(&token, address.as_deref()).await?;
            Ok(HttpResponse::NoContent().finish())
        }
        _ => Err(DomainError::InvalidRequest("send either email or token").into()),
    }
}

/// `POST /v1/account/password/reset` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    email: String,
}

/// Asks for a reset link: 202 with the same body whether or not the address
/// has an account.
///
/// # Errors
/// 400 `invalid_email`, 429 for a client that asked too often, 503.
pub async fn post_password_reset(
    req: HttpRequest,
    body: JsonBody<ResetRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let services = &state.services;
    let address = client_address(&req, state.settings.trusted_proxies());
    services
        .request_password_reset(&body.0.email, address.as_deref())
        .await?;
    Ok(accepted())
}

/// `POST /v1/account/password/reset/confirm` body. `Debug` never prints the
/// token.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirmRequest {
    token: String,
    new_password: Password,
}

impl std::fmt::Debug for ResetConfirmRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResetConfirmRequest")
            .finish_non_exhaustive()
    }
}

/// Uses a reset link: sets the password and ends every session (204).
///
/// # Errors
/// 400 `weak_password`, 400 `invalid_grant` for a dead link, 503.
pub async fn post_password_reset_confirm(
    req: HttpRequest,
    body: JsonBody<ResetConfirmRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let services = &state.services;
    let address = client_address(&req, state.settings.trusted_proxies());
    let ResetConfirmRequest {
        token,
        new_password,
    } = body.0;
    services
        .confirm_password_reset(&token, new_password, address.as_deref())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
