//! `GET /v1/account/consents` and `DELETE /v1/account/consents/{client_id}`:
//! the third-party clients a user allowed, and withdrawing one (which also
//! ends that client's sessions).

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::error::ApiError;
use super::userinfo::Authenticated;
use super::AppState;
use crate::domain::error::DomainError;
use crate::domain::types::ClientId;

/// One remembered consent; `client_name` is `null` once the client is gone
/// or disabled.
#[derive(Debug, Serialize)]
pub struct ConsentResponse {
    client_id: String,
    client_name: Option<String>,
    scope: String,
    granted_at: DateTime<Utc>,
}

/// `GET /v1/account/consents`.
///
/// # Errors
/// 401 without a valid token; store failures.
pub async fn get_consents(
    state: web::Data<AppState>,
    Authenticated(access): Authenticated,
) -> Result<HttpResponse, ApiError> {
    let user = access.user_id.ok_or(DomainError::NotFound)?;
    let mut out = Vec::new();
    for c in state.services.list_consents(user).await? {
        let name = state
            .services
            .find_client(c.client_id)
            .await?
            .map(|cl| cl.name.clone());
        out.push(ConsentResponse {
            client_id: c.client_id.to_string(),
            client_name: name,
            scope: c.scope,
            granted_at: c.granted_at,
        });
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "consents": out })))
}

/// `DELETE /v1/account/consents/{client_id}`: 204, or 404 when there is no
/// such consent.
///
/// # Errors
/// 401 without a valid token; 404; store failures.
pub async fn delete_consent(
    path: web::Path<String>,
    state: web::Data<AppState>,
    Authenticated(access): Authenticated,
) -> Result<HttpResponse, ApiError> {
    let user = access.user_id.ok_or(DomainError::NotFound)?;
    let client = ClientId::parse(&path.into_inner()).ok_or(DomainError::NotFound)?;
    state.services.withdraw_consent(user, client).await?;
    Ok(HttpResponse::NoContent().finish())
}
