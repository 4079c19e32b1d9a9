//! The HTTP surface: the route table, shared state and response headers.
//! Handlers extract, call one domain method and map the result.

pub mod account;
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
    /// The domain services.
    pub services: Services,
    /// The discovery document, rendered once at start-up.
    pub discovery: Bytes,
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

/// Registers every route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/.well-known/openid-configuration",
        web::get().to(discovery::get_discovery),
    )
    .route(
        "/.well-known/oauth-authorization-server",
        web::get().to(discovery::get_discovery),
    )
    .route("/.well-known/jwks.json", web::get().to(jwks::get_jwks))
    .service(
        web::scope("/oauth")
            .wrap(no_store())
            .route("/token", web::post().to(token::post_token))
            .route("/revoke", web::post().to(revoke::post_revoke))
            .route("/introspect", web::post().to(introspect::post_introspect)),
    )
    .service(
        web::resource("/userinfo")
            .wrap(no_store())
            .route(web::get().to(userinfo::get_userinfo))
            .route(web::post().to(userinfo::get_userinfo)),
    )
    .service(
        web::scope("/v1")
            .wrap(no_store())
            .route("/users", web::post().to(account::post_users))
            .route("/account/sessions", web::get().to(account::get_sessions))
            .route(
                "/account/sessions/{sid}",
                web::delete().to(account::delete_session),
            )
            .route("/account/password", web::post().to(account::post_password))
            .route("/logout", web::post().to(account::post_logout)),
    )
    // Cookie mode (issue 8): the demo page; 404 unless `demo.enabled`.
    .route("/demo", web::get().to(demo::get_demo_redirect))
    .route("/demo/", web::get().to(demo::get_demo_page))
    .route("/demo/demo.js", web::get().to(demo::get_demo_js))
    .route("/demo/demo.css", web::get().to(demo::get_demo_css))
    .route("/demo/config.json", web::get().to(demo::get_demo_config))
    .route("/healthz", web::get().to(ops::get_healthz))
    .route("/readyz", web::get().to(ops::get_readyz))
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
