//! Cookie mode (SPEC "Browser clients"): token responses as cookies, reading
//! the cookies back, clearing them at logout, and the Origin check that every
//! cookie-authenticated state change must pass. The CORS headers live in
//! `cors.rs`; the token rules themselves stay in `domain`.
//!
//! # Cookies
//! - `__Host-lk_at`: the access token, `Path=/`. The `__Host-` prefix makes
//!   the browser refuse it unless it is `Secure`, has no `Domain` and has
//!   `Path=/`, so no sibling subdomain can plant or shadow it.
//! - `__Secure-lk_rt`: the refresh token, set twice with the same value: once
//!   with `Path=<issuer path>/oauth/token` (refresh) and once with
//!   `Path=<issuer path>/v1/logout`, so that logout still works once the
//!   short-lived access cookie has expired. `Path=/` would also reach logout,
//!   but would send the long-lived token with every request to the server
//!   (userinfo, the account API, the demo page), into every access log and
//!   proxy on the way; two narrow paths keep it to the two endpoints that
//!   consume it.
//!
//! Both are `HttpOnly` (no script can read them, so XSS cannot steal them),
//! `Secure` (never sent in clear; browsers treat `http://localhost` as
//! secure) and `SameSite=Strict` (never sent on cross-site requests), with
//! `Max-Age` equal to the token's remaining lifetime.

use std::sync::Arc;

use actix_web::cookie::time::Duration;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use serde::Serialize;

use super::error::ApiError;
use crate::domain::clients::{parse_origin, ClientCredentials};
use crate::domain::error::DomainError;
use crate::domain::origins::{origin_of, OriginAccess};
use crate::domain::records::ClientRecord;
use crate::domain::types::ClientId;
use crate::domain::verify::VerifiedAccess;
use crate::domain::Services;
use crate::tokens::jwt::JwtError;
use crate::tokens::TokenPair;

/// The access-token cookie; the `__Host-` prefix makes browsers insist on
/// `Secure`, `Path=/` and no `Domain`.
pub const ACCESS_COOKIE: &str = "__Host-lk_at";
/// The refresh-token cookie (one per path in `refresh_paths`).
pub const REFRESH_COOKIE: &str = "__Secure-lk_rt";

/// The body of a cookie-mode token response: no token strings at all. The
/// id_token is left out too: the page could read it, and it is no use to a
/// page that gets the same claims from `/userinfo` through the cookie.
#[derive(Debug, Serialize)]
pub struct CookieTokenResponse {
    token_type: &'static str,
    expires_in: i64,
    scope: String,
}

/// The path part of the issuer URL (empty at the root), so that cookie paths
/// match the endpoints the discovery document advertises.
fn issuer_path(issuer: &str) -> &str {
    let rest = issuer.split_once("://").map_or("", |(_, r)| r);
    rest.find('/')
        .map_or("", |i| rest[i..].trim_end_matches('/'))
}

/// The paths the refresh cookie is set for: the token endpoint and logout.
pub fn refresh_paths(issuer: &str) -> [String; 2] {
    let base = issuer_path(issuer);
    [format!("{base}/oauth/token"), format!("{base}/v1/logout")]
}

fn cookie(name: &'static str, value: String, path: String, max_age: i64) -> Cookie<'static> {
    Cookie::build(name, value)
        .path(path)
        .max_age(Duration::seconds(max_age.max(0)))
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .finish()
}

/// A token response for a cookie-mode client: the tokens in cookies, the
/// rest in the body.
pub fn token_response(tokens: TokenPair, issuer: &str) -> HttpResponse {
    let mut res = HttpResponse::Ok();
    res.cookie(cookie(
        ACCESS_COOKIE,
        tokens.access_token,
        "/".into(),
        tokens.expires_in,
    ));
    if let Some(rt) = tokens.refresh_token {
        let max_age = tokens.refresh_expires_in.unwrap_or(0);
        for path in refresh_paths(issuer) {
            res.cookie(cookie(REFRESH_COOKIE, rt.clone(), path, max_age));
        }
    }
    res.json(CookieTokenResponse {
        token_type: "Bearer",
        expires_in: tokens.expires_in,
        scope: tokens.scope,
    })
}

/// Adds the headers that delete every latchkey cookie: same name, path and
/// attributes (browsers refuse a prefixed cookie without `Secure`, even to
/// delete it), empty value, `Max-Age=0`.
pub fn clear_cookies(res: &mut HttpResponseBuilder, issuer: &str) {
    res.cookie(cookie(ACCESS_COOKIE, String::new(), "/".into(), 0));
    for path in refresh_paths(issuer) {
        res.cookie(cookie(REFRESH_COOKIE, String::new(), path, 0));
    }
}

/// The value of cookie `name`, if the request carries it once.
///
/// # Errors
/// `InvalidRequest` when it is sent more than once: a second copy can only be
/// a cookie planted by another host (cookie tossing), and guessing which one
/// is ours would let the planted one win.
pub(crate) fn single_cookie(req: &HttpRequest, name: &str) -> Result<Option<String>, ApiError> {
    let mut found = None;
    let pairs = req
        .headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'));
    for pair in pairs {
        let Some((n, v)) = pair.trim().split_once('=') else {
            continue;
        };
        if n != name || v.is_empty() {
            continue;
        }
        if found.is_some() {
            return Err(
                DomainError::InvalidRequest("a latchkey cookie was sent more than once").into(),
            );
        }
        found = Some(v.to_owned());
    }
    Ok(found)
}

/// The access token from its cookie.
///
/// # Errors
/// `InvalidRequest` for a duplicated cookie.
pub fn access_cookie(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    single_cookie(req, ACCESS_COOKIE)
}

/// The refresh cookie, unless it belongs to another session than a live
/// access cookie sent beside it. The refresh cookie is `__Secure-`, not
/// `__Host-` (its Path is limited), so a sibling subdomain can plant one; a
/// planted token of another session is ignored rather than used.
///
/// # Errors
/// 400 for a duplicated cookie; store failures.
pub async fn bound_refresh_cookie(
    req: &HttpRequest,
    services: &Services,
) -> Result<Option<String>, ApiError> {
    let Some(refresh) = refresh_cookie(req)? else {
        return Ok(None);
    };
    let Some(access) = access_cookie(req)? else {
        return Ok(Some(refresh));
    };
    Ok(services
        .refresh_fits_access(&refresh, &access)
        .await?
        .then_some(refresh))
}

/// The refresh token from its cookie.
///
/// # Errors
/// `InvalidRequest` for a duplicated cookie.
pub fn refresh_cookie(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    single_cookie(req, REFRESH_COOKIE)
}

/// The origin a browser says the request comes from: `Origin`, or failing
/// that the origin of `Referer`. `Origin: null` (sandboxed frames, some
/// redirects) names no origin and is never replaced by `Referer`.
pub fn request_origin(req: &HttpRequest) -> Option<String> {
    let mut origins = req.headers().get_all(header::ORIGIN);
    if let Some(origin) = origins.next() {
        if origins.next().is_some() {
            return None;
        }
        return parse_origin(origin.to_str().ok()?).ok();
    }
    let mut referers = req.headers().get_all(header::REFERER);
    let referer = referers.next()?;
    if referers.next().is_some() {
        return None;
    }
    origin_of(referer.to_str().ok()?)
}

/// The CSRF defence for cookie-authenticated requests. The browser attaches
/// cookies to requests that other pages start (forms, `fetch` with
/// `no-cors`); `SameSite=Strict` stops cross-site ones, but a page on the
/// same site (another port on localhost, a sibling subdomain) is not
/// cross-site. `Origin` (or `Referer`) is set by the browser and cannot be
/// forged by the page, so requiring one of the client's registered origins
/// stops every such request before anything changes.
///
/// # Errors
/// `OriginRefused` when the request names no origin or another one.
pub fn require_allowed_origin(req: &HttpRequest, client: &ClientRecord) -> Result<(), ApiError> {
    let origin = request_origin(req).ok_or(DomainError::OriginRefused)?;
    if client.origins.contains(&origin) {
        Ok(())
    } else {
        Err(DomainError::OriginRefused.into())
    }
}

/// Verifies the access-token cookie, if there is one. Only tokens of
/// cookie-mode clients are accepted from the cookie, and a request with an
/// unsafe method must pass the Origin check against the token's client.
///
/// # Errors
/// 401 for a bad token, 403 `OriginRefused`, 400 for a duplicated cookie.
pub async fn authenticate_cookie(
    req: &HttpRequest,
    services: &Services,
) -> Result<Option<VerifiedAccess>, ApiError> {
    let Some(token) = access_cookie(req)? else {
        return Ok(None);
    };
    let access = services.verify_own_access_token(&token).await?;
    let client = services
        .find_client(access.client_id)
        .await?
        .filter(|c| c.cookie_mode)
        .ok_or(DomainError::InvalidToken(JwtError::Invalid))?;
    // A state change always needs an allowed origin. A read needs one when
    // the browser names an origin (a cross-origin fetch from a page): with
    // two cookie-mode apps on one site, a page of one must not read with the
    // other's cookie. A plain navigation names none and reads.
    if !req.method().is_safe() || req.headers().contains_key(header::ORIGIN) {
        require_allowed_origin(req, &client)?;
    }
    Ok(Some(access))
}

/// At the token endpoint: the named client when it is in cookie mode, after
/// the Origin check. Its responses set the browser's session cookies, so a
/// login or refresh from a page elsewhere could swap the user's session
/// (login CSRF) or use it; both are refused before anything changes.
/// Checking the *named* client is enough for a cookie refresh: a refresh
/// token is bound to its session's client, so naming another client (one
/// whose origins the page does match) gets `invalid_grant` and changes
/// nothing, not even reuse detection.
///
/// # Errors
/// 403 `OriginRefused`; store failures.
pub async fn cookie_mode_client(
    req: &HttpRequest,
    services: &Services,
    creds: &ClientCredentials,
) -> Result<Option<Arc<ClientRecord>>, ApiError> {
    let Some(id) = creds.client_id.as_deref().and_then(ClientId::parse) else {
        return Ok(None);
    };
    let Some(client) = services.find_client(id).await?.filter(|c| c.cookie_mode) else {
        return Ok(None);
    };
    require_allowed_origin(req, &client)?;
    Ok(Some(client))
}

/// The Origin check for a logout by refresh cookie: against the client of
/// the token's session or, when the session is unknown (purged, garbage),
/// against every cookie-mode origin, since the answer still clears cookies.
/// Returns whether the token names a known session (one to revoke).
///
/// # Errors
/// 403 `OriginRefused`; store failures.
pub async fn check_refresh_cookie_origin(
    req: &HttpRequest,
    services: &Services,
    refresh_token: &str,
) -> Result<bool, ApiError> {
    if let Some(client) = services.client_of_refresh_token(refresh_token).await? {
        require_allowed_origin(req, &client)?;
        return Ok(true);
    }
    let origin = request_origin(req).ok_or(DomainError::OriginRefused)?;
    match services.origin_access(&origin).await? {
        Some(OriginAccess::Credentialed) => Ok(false),
        _ => Err(DomainError::OriginRefused.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn refresh_paths_follow_the_issuer_path() {
        assert_eq!(
            refresh_paths("http://127.0.0.1:8080"),
            ["/oauth/token".to_owned(), "/v1/logout".to_owned()]
        );
        assert_eq!(
            refresh_paths("https://example.com/auth/"),
            ["/auth/oauth/token".to_owned(), "/auth/v1/logout".to_owned()]
        );
    }

    #[test]
    fn origin_comes_from_origin_then_referer() {
        let req = TestRequest::default()
            .insert_header(("Origin", "https://App.example"))
            .insert_header(("Referer", "https://other.example/x"))
            .to_http_request();
        assert_eq!(request_origin(&req).as_deref(), Some("https://app.example"));
        let req = TestRequest::default()
            .insert_header(("Referer", "https://app.example/page?q"))
            .to_http_request();
        assert_eq!(request_origin(&req).as_deref(), Some("https://app.example"));
        let req = TestRequest::default()
            .insert_header(("Origin", "null"))
            .insert_header(("Referer", "https://app.example/"))
            .to_http_request();
        assert_eq!(request_origin(&req), None);
        assert_eq!(
            request_origin(&TestRequest::default().to_http_request()),
            None
        );
    }

    #[test]
    fn a_duplicated_cookie_is_refused() {
        let req = TestRequest::default()
            .insert_header(("Cookie", "a=1; __Secure-lk_rt=x; b=2"))
            .to_http_request();
        assert_eq!(refresh_cookie(&req).ok().flatten().as_deref(), Some("x"));
        let req = TestRequest::default()
            .insert_header(("Cookie", "__Secure-lk_rt=x; __Secure-lk_rt=y"))
            .to_http_request();
        assert!(refresh_cookie(&req).is_err());
    }
}
