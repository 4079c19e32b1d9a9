//! The HTTP surface: the route table, shared state and response headers.
//! Handlers extract, call one domain method and map the result.

pub mod account;
pub mod admin;
pub mod authorize;
pub mod consents;
pub mod cookies;
pub mod cors;
pub mod demo;
pub mod discovery;
pub mod error;
pub mod extract;
pub mod introspect;
pub mod jwks;
pub mod observe;
pub mod ops;
pub mod pages;
pub mod recovery;
pub mod recovery_pages;
pub mod revoke;
pub mod token;
pub mod userinfo;

use actix_web::middleware::DefaultHeaders;
use actix_web::{web, HttpRequest};
use bytes::Bytes;

use self::error::ApiError;
use crate::domain::Services;

/// State shared by every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The handlers' only way into the domain: the HTTP layer never
    /// reaches the store itself.
    pub services: Services,
    /// What the HTTP layer itself is configured by: the issuer, trusted
    /// proxies, the consent page's wording, the demo switch.
    pub settings: std::sync::Arc<crate::config::Settings>,
    /// The discovery document, rendered once at start-up.
    pub discovery: Bytes,
    /// The page templates, loaded once at start-up.
    pub pages: std::sync::Arc<pages::Pages>,
}

/// Headers every response carries (OWASP secure headers).
pub fn security_headers(https: bool) -> DefaultHeaders {
    let h = DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("X-Frame-Options", "DENY"));
    if https {
        h.add((
            "Strict-Transport-Security",
            "max-age=31536000; includeSubDomains",
        ))
    } else {
        h
    }
}

/// RFC 6749 §5.1: responses carrying tokens must not be cached.
fn no_store() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("Cache-Control", "no-store"))
        .add(("Pragma", "no-cache"))
}

/// Registers every route. Each path is a `web::resource`, so a request with
/// another method gets actix's 405 with the `Allow` header (RFC 9110
/// §15.5.6), which `error::json_errors` dresses in the contract's body.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/.well-known/openid-configuration").get(discovery::get_discovery))
        .service(
            web::resource("/.well-known/oauth-authorization-server").get(discovery::get_discovery),
        )
        .service(web::resource("/.well-known/jwks.json").get(jwks::get_jwks))
        .service(
            web::scope("/oauth")
                .wrap(no_store())
                .service(web::resource("/token").post(token::post_token))
                .service(web::resource("/revoke").post(revoke::post_revoke))
                .service(web::resource("/introspect").post(introspect::post_introspect)),
        )
        .service(
            web::resource("/userinfo")
                .wrap(no_store())
                .get(userinfo::get_userinfo)
                .post(userinfo::get_userinfo),
        )
        .service(
            web::scope("/v1")
                .wrap(no_store())
                .service(web::resource("/users").post(account::post_users))
                .service(web::resource("/account/sessions").get(account::get_sessions))
                .service(web::resource("/account/sessions/{sid}").delete(account::delete_session))
                .service(web::resource("/account/password").post(account::post_password))
                .service(web::resource("/account/email/verify").post(recovery::post_verify_email))
                .service(
                    web::resource("/account/password/reset").post(recovery::post_password_reset),
                )
                .service(
                    web::resource("/account/password/reset/confirm")
                        .post(recovery::post_password_reset_confirm),
                )
                .service(web::resource("/account/consents").get(consents::get_consents))
                .service(
                    web::resource("/account/consents/{client_id}").delete(consents::delete_consent),
                )
                .service(web::resource("/logout").post(account::post_logout)),
        )
        // The cookie-mode demo page; 404 unless `demo.enabled`.
        .service(web::resource("/demo").get(demo::get_demo_redirect))
        .service(web::resource("/demo/").get(demo::get_demo_page))
        .service(web::resource("/demo/demo.js").get(demo::get_demo_js))
        .service(web::resource("/demo/demo.css").get(demo::get_demo_css))
        .service(web::resource("/demo/config.json").get(demo::get_demo_config))
        // The authorization code flow's pages (see `authorize`).
        .service(web::resource("/authorize").get(authorize::get_authorize))
        .service(web::resource("/login").post(authorize::post_login))
        .service(web::resource("/consent").post(authorize::post_consent))
        .service(
            web::resource("/logout")
                .get(authorize::get_logout)
                .post(authorize::post_logout),
        )
        .service(web::resource("/assets/latchkey.css").get(pages::get_stylesheet))
        // The pages mailed links open (a GET never uses the link).
        .service(
            web::resource("/verify-email")
                .get(recovery_pages::get_verify_email)
                .post(recovery_pages::post_verify_email),
        )
        .service(
            web::resource("/reset-password")
                .get(recovery_pages::get_reset_password)
                .post(recovery_pages::post_reset_password),
        )
        // The admin API (its own route table; see `admin`).
        .configure(admin::configure)
        .service(web::resource("/healthz").get(ops::get_healthz))
        .service(web::resource("/readyz").get(ops::get_readyz))
        .default_service(web::to(not_found));
}

/// No route took the request: 405 when the path is known (only the method
/// was wrong), else 404.
///
/// # Errors
/// Always: `MethodNotAllowed` or `RouteNotFound`.
pub async fn not_found(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    if req.resource_map().has_resource(req.path()) {
        Err(ApiError::MethodNotAllowed)
    } else {
        Err(ApiError::RouteNotFound)
    }
}
