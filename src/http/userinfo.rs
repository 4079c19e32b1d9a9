//! `GET /userinfo` (OpenID Connect Core §5.3), and `authenticate`, which
//! the account API shares: a bearer token or the cookie-mode access cookie.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use serde::Serialize;

use super::cookies;
use super::error::ApiError;
use super::extract::{dpop_headers, presented_token, PresentedToken};
use super::AppState;
use crate::domain::dpop::ProofInput;
use crate::domain::error::DomainError;
use crate::domain::verify::VerifiedAccess;
use crate::domain::Services;

/// The `/userinfo` claims (OIDC Core §5.3): `sub` always, `email` and
/// `email_verified` only with scope `email`.
#[derive(Debug, Serialize)]
pub struct UserinfoResponse {
    sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
}

/// Verifies the request's access token through the one verification path:
/// `Authorization: DPoP` with its proof, or `Authorization: Bearer` (explicit
/// wins, and needs no Origin check: a page elsewhere cannot attach it), else
/// the cookie-mode access cookie, with the Origin check for unsafe methods.
/// A DPoP-bound token is accepted only with the DPoP scheme and a proof.
///
/// # Errors
/// 401 `invalid_token` for a missing, bad, expired or revoked token, 401
/// with a `DPoP` challenge for a bad proof or a bound token without one;
/// 403 for a cookie-authenticated state change from a foreign origin.
pub async fn authenticate(
    req: &HttpRequest,
    services: &Services,
) -> Result<VerifiedAccess, ApiError> {
    let access = match presented_token(req) {
        Some(PresentedToken::Dpop(token)) => {
            let proofs = dpop_headers(req, true)?;
            let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
            let input = ProofInput {
                proofs: &proofs,
                method: req.method().as_str(),
                path: req.path(),
                access_token: None,
            };
            return Ok(services.verify_dpop_access(&token, &input).await?);
        }
        Some(PresentedToken::Bearer(token)) => services.verify_own_access_token(&token).await?,
        None => cookies::authenticate_cookie(req, services)
            .await?
            .ok_or(DomainError::MissingToken)?,
    };
    Ok(services.refuse_bound_without_proof(access)?)
}

/// The caller of a protected endpoint, authenticated by `authenticate`: a
/// handler that takes it never sees an unauthenticated request. Put it
/// after a body argument, so a malformed body is refused first, as before.
#[derive(Debug)]
pub struct Authenticated(pub VerifiedAccess);

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or(DomainError::Internal("no application state"))?
                .clone();
            authenticate(&req, &state.services).await.map(Self)
        })
    }
}

/// Returns `sub`, and `email` with scope `email`.
///
/// # Errors
/// 401 `invalid_token`; 503.
pub async fn get_userinfo(
    state: web::Data<AppState>,
    Authenticated(access): Authenticated,
) -> Result<HttpResponse, ApiError> {
    let info = state.services.userinfo(&access).await?;
    let (email, email_verified) = info.email.unzip();
    Ok(HttpResponse::Ok().json(UserinfoResponse {
        sub: info.sub.to_string(),
        email,
        email_verified,
    }))
}
