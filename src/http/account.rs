//! The account API: sign-up, the caller's sessions, password change, logout.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::cookies;
use super::error::ApiError;
use super::extract::{client_address, presented_token, JsonBody, OptionalJson};
use super::userinfo::{authenticate, Authenticated};
use super::AppState;
use crate::domain::error::DomainError;
use crate::domain::types::{Password, SessionId};
use crate::tokens::redacted;

/// `POST /v1/users` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    email: String,
    password: Password,
}

/// `POST /v1/users` answer.
#[derive(Debug, Serialize)]
pub struct UserResponse {
    id: String,
    email: String,
    created_at: DateTime<Utc>,
}

/// `POST /v1/users`: self-service sign-up while `signup.enabled`; the 201
/// carries the new user, no token.
///
/// # Errors
/// 400 `invalid_email` / `weak_password`, 409 `email_taken`, 403 when
/// sign-up is off, 503.
pub async fn post_users(
    req: HttpRequest,
    body: JsonBody<SignupRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let address = client_address(&req, state.settings.trusted_proxies());
    let SignupRequest { email, password } = body.0;
    let user = state.services.sign_up(&email, password, address).await?;
    Ok(HttpResponse::Created().json(UserResponse {
        id: user.id.to_string(),
        email: user.email,
        created_at: user.created_at,
    }))
}

/// One entry of `GET /v1/account/sessions`.
#[derive(Debug, Serialize)]
pub struct SessionResponse {
    sid: String,
    client_id: String,
    scope: String,
    created_at: DateTime<Utc>,
    last_used_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    current: bool,
}

/// Lists the caller's live sessions.
///
/// # Errors
/// 401 `invalid_token`; 503.
pub async fn get_sessions(
    state: web::Data<AppState>,
    Authenticated(access): Authenticated,
) -> Result<HttpResponse, ApiError> {
    let user = access.user_id.ok_or(DomainError::NotFound)?;
    let sessions = state.services.list_sessions(user).await?;
    let list: Vec<SessionResponse> = sessions
        .into_iter()
        .map(|s| SessionResponse {
            current: Some(s.id) == access.session_id,
            sid: s.id.to_string(),
            client_id: s.client_id.to_string(),
            scope: s.scope.to_string(),
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s.expires_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "sessions": list })))
}

/// Revokes one of the caller's sessions; someone else's is 404.
///
/// # Errors
/// 401, 404, 503.
pub async fn delete_session(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    Authenticated(access): Authenticated,
) -> Result<HttpResponse, ApiError> {
    let user = access.user_id.ok_or(DomainError::NotFound)?;
    let sid = SessionId::parse(&path.into_inner()).ok_or(DomainError::NotFound)?;
    let address = client_address(&req, state.settings.trusted_proxies());
    state
        .services
        .revoke_own_session(user, sid, address.as_deref())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /v1/account/password` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordRequest {
    current_password: Password,
    new_password: Password,
}

/// Changes the password and revokes every other session.
///
/// # Errors
/// 400 `invalid_grant` for a wrong current password, 400 `weak_password`,
/// 401, 503.
pub async fn post_password(
    req: HttpRequest,
    body: JsonBody<PasswordRequest>,
    state: web::Data<AppState>,
    Authenticated(access): Authenticated,
) -> Result<HttpResponse, ApiError> {
    let (Some(user), Some(sid)) = (access.user_id, access.session_id) else {
        return Err(DomainError::NotFound.into());
    };
    let PasswordRequest {
        current_password,
        new_password,
    } = body.0;
    let address = client_address(&req, state.settings.trusted_proxies());
    state
        .services
        .change_password(
            user,
            sid,
            current_password,
            new_password,
            address.as_deref(),
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /v1/logout` body (optional when a bearer token is sent). `Debug`
/// never prints the token.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogoutRequest {
    refresh_token: Option<String>,
}

impl std::fmt::Debug for LogoutRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogoutRequest")
            .field("refresh_token", &redacted(&self.refresh_token))
            .finish()
    }
}

/// Revokes the current session, by refresh token alone (in the body or, in
/// cookie mode, the refresh cookie) or by access token (bearer or cookie).
/// Idempotent; the answer clears latchkey's cookies.
///
/// # Errors
/// 400 for a malformed refresh token, 401 without any token, 403 for a
/// cookie logout from a foreign origin, 503.
pub async fn post_logout(
    req: HttpRequest,
    body: OptionalJson<LogoutRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let services = &state.services;
    let request = body.0.unwrap_or_default();
    let address = client_address(&req, state.settings.trusted_proxies());
    let address = address.as_deref();
    if let Some(rt) = request.refresh_token {
        services.logout_with_refresh_token(&rt, address).await?;
    } else if let (None, Some(rt)) = (presented_token(&req), cookies::refresh_cookie(&req)?) {
        // A cookie naming no known session has nothing to revoke; the
        // answer still clears it.
        if cookies::check_refresh_cookie_origin(&req, services, &rt).await? {
            services.logout_with_refresh_token(&rt, address).await?;
        }
    } else {
        let access = authenticate(&req, services).await?;
        services.logout_with_access(&access, address).await?;
    }
    let mut res = HttpResponse::NoContent();
    cookies::clear_cookies(&mut res, state.settings.issuer());
    Ok(res.finish())
}
