//! `POST /oauth/token` (RFC 6749 §3.2, §5). Cookie-mode clients get their
//! tokens as cookies and may refresh from the cookie (see `cookies`).

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::cookies;
use super::error::ApiError;
use super::extract::{client_address, client_credentials, dpop_headers, StrictForm};
use super::AppState;
use crate::domain::dpop::ProofInput;
use crate::domain::error::DomainError;
use crate::domain::grants::{GrantRequest, Granted};
use crate::domain::types::{GrantType, Password};
use crate::tokens::redacted;

/// RFC 6749 §5.1 success body. `Debug` never prints the tokens.
#[derive(Serialize)]
pub struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &redacted(&self.refresh_token))
            .field("scope", &self.scope)
            .field("id_token", &redacted(&self.id_token))
            .finish()
    }
}

/// `POST /oauth/token`: authenticates the client, checks any DPoP proof
/// before the grant runs, and answers a cookie-mode client in cookies.
///
/// # Errors
/// Every RFC 6749 §5.2 error, 429 and 503.
pub async fn post_token(
    req: HttpRequest,
    form: StrictForm,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let creds = client_credentials(&req, &form)?;
    let cookie_mode = cookies::cookie_mode_client(&req, &state.services, &creds).await?;
    let cookie_refresh = match cookie_mode {
        Some(_)
            if form.get("grant_type") == Some("refresh_token")
                && form.get("refresh_token").is_none() =>
        {
            cookies::bound_refresh_cookie(&req, &state.services).await?
        }
        _ => None,
    };
    let grant = grant_request(&form, cookie_refresh)?;
    let address = client_address(&req, state.settings.trusted_proxies());
    let proofs = dpop_headers(&req, false)?;
    let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
    let proof = ProofInput {
        proofs: &proofs,
        method: "POST",
        path: req.path(),
        access_token: None,
    };
    let granted = state
        .services
        .grant(&creds, grant, address.as_deref(), &proof)
        .await?;
    if granted.client.cookie_mode {
        return Ok(cookies::token_response(
            granted.tokens,
            state.settings.issuer(),
        ));
    }
    let bound = granted.dpop_jkt.is_some();
    let mut res = token_response(granted, bound);
    if let Some(nonce) = state.services.dpop_nonce() {
        res.headers_mut().insert(
            HeaderName::from_static("dpop-nonce"),
            HeaderValue::from_str(&nonce).map_err(|_| DomainError::Internal("nonce header"))?,
        );
    }
    Ok(res)
}

/// The presented refresh token: the `refresh_token` parameter, or for a
/// cookie-mode client without one, the refresh cookie (`from_cookie`, when
/// it fits the access cookie beside it).
fn refresh_token(form: &StrictForm, from_cookie: Option<String>) -> Result<String, ApiError> {
    const MISSING: &str = "refresh_token is required";
    if let Some(t) = form.get("refresh_token") {
        return Ok(t.to_owned());
    }
    from_cookie.ok_or_else(|| DomainError::InvalidRequest(MISSING).into())
}

fn grant_request(
    form: &StrictForm,
    cookie_refresh: Option<String>,
) -> Result<GrantRequest, ApiError> {
    // RFC 6749 §5.2: a missing parameter is `invalid_request`; only a
    // grant type that is present and unknown is `unsupported_grant_type`.
    let grant = GrantType::parse(form.require("grant_type", "grant_type is required")?)
        .ok_or(DomainError::UnsupportedGrantType)?;
    let scope = form.get("scope").map(str::to_owned);
    Ok(match grant {
        GrantType::Password => GrantRequest::Password {
            username: form.require("username", "username is required")?.to_owned(),
            password: Password(form.require("password", "password is required")?.to_owned()),
            scope,
        },
        GrantType::RefreshToken => GrantRequest::RefreshToken {
            refresh_token: refresh_token(form, cookie_refresh)?,
            scope,
        },
        GrantType::ClientCredentials => GrantRequest::ClientCredentials { scope },
        GrantType::AuthorizationCode => GrantRequest::AuthorizationCode {
            code: form.require("code", "code is required")?.to_owned(),
            redirect_uri: form.get("redirect_uri").map(str::to_owned),
            code_verifier: form.get("code_verifier").map(str::to_owned),
        },
    })
}

/// RFC 9449 §5: a DPoP-bound access token is of type `DPoP`.
fn token_response(granted: Granted, bound: bool) -> HttpResponse {
    let t = granted.tokens;
    HttpResponse::Ok().json(TokenResponse {
        access_token: t.access_token,
        token_type: if bound { "DPoP" } else { "Bearer" },
        expires_in: t.expires_in,
        refresh_token: t.refresh_token,
        scope: t.scope,
        id_token: t.id_token,
    })
}
