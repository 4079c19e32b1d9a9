//! `POST /oauth/introspect` (RFC 7662), for confidential clients.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::error::ApiError;
use super::extract::{client_credentials, StrictForm};
use super::AppState;
use crate::domain::error::DomainError;
use crate::domain::types::ClientKind;
use crate::tokens::claims::Confirmation;

/// RFC 7662 §2.2 body of an active token.
#[derive(Debug, Serialize)]
pub struct IntrospectionResponse {
    active: bool,
    sub: String,
    client_id: String,
    scope: String,
    exp: i64,
    iat: i64,
    iss: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
    token_type: &'static str,
    /// RFC 9449 §6.2: `{"jkt": …}` for a DPoP-bound token.
    #[serde(skip_serializing_if = "Option::is_none")]
    cnf: Option<Confirmation>,
}

/// Reports whether a token is active; anything else is exactly
/// `{"active": false}`.
///
/// # Errors
/// 401 unless a confidential client authenticates; 400 without `token`; 503.
pub async fn post_introspect(
    req: HttpRequest,
    form: StrictForm,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let creds = client_credentials(&req, &form)?;
    let client = state.services.authenticate_client(&creds).await?;
    if client.kind != ClientKind::Confidential {
        return Err(DomainError::ClientAuthFailed.into());
    }
    let token = form.require("token", "token is required")?;
    let body = match state.services.introspect(&client, token).await? {
        Some(i) => serde_json::to_value(IntrospectionResponse {
            active: true,
            sub: i.sub,
            client_id: i.client_id,
            scope: i.scope,
            exp: i.exp,
            iat: i.iat,
            iss: i.iss,
            aud: i.aud,
            jti: i.jti,
            sid: i.sid,
            token_type: i.token_type,
            cnf: i.cnf,
        })
        .map_err(|_| DomainError::Internal("serialising introspection"))?,
        None => serde_json::json!({ "active": false }),
    };
    Ok(HttpResponse::Ok().json(body))
}
