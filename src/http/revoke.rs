//! `POST /oauth/revoke` (RFC 7009).

use actix_web::{web, HttpRequest, HttpResponse};

use super::error::ApiError;
use super::extract::{client_address, client_credentials, StrictForm};
use super::AppState;

/// Revokes the session of a refresh or access token. Answers 200 for unknown
/// tokens too (RFC 7009 §2.2).
///
/// # Errors
/// 401 for bad client authentication, 400 without `token`, 503.
pub async fn post_revoke(
    req: HttpRequest,
    form: StrictForm,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let creds = client_credentials(&req, &form)?;
    let client = state.services.authenticate_client(&creds).await?;
    let token = form.require("token", "token is required")?;
    let address = client_address(&req, state.settings.trusted_proxies());
    state
        .services
        .revoke_token(client.id, token, address.as_deref())
        .await?;
    Ok(HttpResponse::Ok().finish())
}
