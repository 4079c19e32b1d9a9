//! The cookie-mode demo at `/demo/` (when `demo.enabled`): a static page
//! built into the binary (HTML, JS and CSS from `assets/demo/`, no build
//! step) and `config.json`, which tells the page its client id. The demo
//! client itself is provisioned at start-up by `domain::demo`.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Serialize;

use super::error::ApiError;
use super::AppState;
use crate::domain::demo::{demo_client_id, DEMO_SCOPE};

const INDEX_HTML: &str = include_str!("../../assets/demo/index.html");
const DEMO_JS: &str = include_str!("../../assets/demo/demo.js");
const DEMO_CSS: &str = include_str!("../../assets/demo/demo.css");

/// Scripts and styles from this server only, no inline code, no framing:
/// the page handles a password, so it gets the strictest policy it can run
/// under.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self'; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

/// What the page needs to know.
#[derive(Debug, Serialize)]
pub struct DemoConfigResponse {
    client_id: String,
    origin: String,
    scope: &'static str,
    /// `iss` as the authorization response carries it (RFC 9207).
    issuer: String,
    /// Where "Sign in with latchkey" returns; absent when the issuer's URL
    /// cannot be a redirect URI (plain http to a non-loopback host).
    #[serde(skip_serializing_if = "Option::is_none")]
    redirect_uri: Option<String>,
}

/// The demo does not exist when it is off: 404, like any unknown path.
fn require_enabled(state: &AppState) -> Result<(), ApiError> {
    if state.settings.demo_enabled() {
        Ok(())
    } else {
        Err(ApiError::RouteNotFound)
    }
}

fn asset(
    state: &AppState,
    content_type: &str,
    body: &'static str,
) -> Result<HttpResponse, ApiError> {
    require_enabled(state)?;
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        // The global `no-referrer` would make the page's own requests carry
        // no `Referer`; `same-origin` still sends nothing to other sites.
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body))
}

/// `GET /demo` redirects to the page, so relative URLs resolve.
///
/// # Errors
/// 404 when the demo is off.
pub async fn get_demo_redirect(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    require_enabled(&state)?;
    Ok(HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "demo/"))
        .finish())
}

/// `GET /demo/`.
///
/// # Errors
/// 404 when the demo is off.
pub async fn get_demo_page(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    asset(&state, "text/html; charset=utf-8", INDEX_HTML)
}

/// `GET /demo/demo.js`.
///
/// # Errors
/// 404 when the demo is off.
pub async fn get_demo_js(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    asset(&state, "text/javascript; charset=utf-8", DEMO_JS)
}

/// `GET /demo/demo.css`.
///
/// # Errors
/// 404 when the demo is off.
pub async fn get_demo_css(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    asset(&state, "text/css; charset=utf-8", DEMO_CSS)
}

/// `GET /demo/config.json`: the demo client's id (derived from the issuer's
/// origin, the same on every instance) and the origin the page must be
/// opened at for the Origin check to pass.
///
/// # Errors
/// 404 when the demo is off.
pub async fn get_demo_config(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    require_enabled(&state)?;
    let origin = state.services.issuer_origin()?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .json(DemoConfigResponse {
            client_id: demo_client_id(&origin).to_string(),
            origin,
            scope: DEMO_SCOPE,
            issuer: state.settings.issuer().to_owned(),
            redirect_uri: state.services.demo_redirect_uri(),
        }))
}
