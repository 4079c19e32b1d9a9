//! The admin API under `/admin/v1`: clients and users managed over JSON by
//! an admin client's access token (see `auth`), with its OpenAPI document.
//!
//! `ROUTES` is the one list of admin routes: `configure` registers exactly
//! these, and a test holds the OpenAPI document to the same list, so a route
//! without documentation (or documentation without a route) fails the build.

pub mod auth;
pub mod client_wire;
pub mod clients;
pub mod openapi;
pub mod paging;
pub mod users;

use actix_web::http::Method;
use actix_web::{web, Route};

pub use self::openapi::ErrorResponse;

/// Where the admin API lives.
pub const PREFIX: &str = "/admin/v1";

/// One admin route: method, path under `PREFIX` (in OpenAPI's `{name}`
/// syntax, which actix reads the same way) and its handler.
#[derive(Debug, Clone, Copy)]
pub struct AdminRoute {
    /// `GET`, `POST`, `PATCH` or `DELETE`.
    pub method: &'static str,
    /// Below `PREFIX`.
    pub path: &'static str,
    /// Attaches the handler to a route already matching `method`, so the
    /// method is written once.
    handler: fn(Route) -> Route,
}

impl AdminRoute {
    fn method(&self) -> Method {
        // Every entry names a valid method token (see the test below).
        Method::from_bytes(self.method.as_bytes()).unwrap_or(Method::GET)
    }
}

/// Every admin route; the OpenAPI document must list exactly these (a test
/// holds the two together).
pub const ROUTES: &[AdminRoute] = &[
    AdminRoute {
        method: "GET",
        path: "/openapi.json",
        handler: |r| r.to(openapi::get_openapi),
    },
    AdminRoute {
        method: "GET",
        path: "/clients",
        handler: |r| r.to(clients::list_clients),
    },
    AdminRoute {
        method: "POST",
        path: "/clients",
        handler: |r| r.to(clients::post_client),
    },
    AdminRoute {
        method: "GET",
        path: "/clients/{id}",
        handler: |r| r.to(clients::get_client),
    },
    AdminRoute {
        method: "PATCH",
        path: "/clients/{id}",
        handler: |r| r.to(clients::patch_client),
    },
    AdminRoute {
        method: "DELETE",
        path: "/clients/{id}",
        handler: |r| r.to(clients::delete_client),
    },
    AdminRoute {
        method: "POST",
        path: "/clients/{id}/disable",
        handler: |r| r.to(clients::post_client_disable),
    },
    AdminRoute {
        method: "POST",
        path: "/clients/{id}/enable",
        handler: |r| r.to(clients::post_client_enable),
    },
    AdminRoute {
        method: "POST",
        path: "/clients/{id}/rotate-secret",
        handler: |r| r.to(clients::post_rotate_secret),
    },
    AdminRoute {
        method: "GET",
        path: "/users",
        handler: |r| r.to(users::list_users),
    },
    AdminRoute {
        method: "GET",
        path: "/users/{id}",
        handler: |r| r.to(users::get_user),
    },
    AdminRoute {
        method: "POST",
        path: "/users/{id}/disable",
        handler: |r| r.to(users::post_user_disable),
    },
    AdminRoute {
        method: "POST",
        path: "/users/{id}/enable",
        handler: |r| r.to(users::post_user_enable),
    },
    AdminRoute {
        method: "POST",
        path: "/users/{id}/revoke-sessions",
        handler: |r| r.to(users::post_revoke_sessions),
    },
];

/// Every admin route as (method, full path), for checking the document.
pub fn registered_routes() -> Vec<(Method, String)> {
    ROUTES
        .iter()
        .map(|r| (r.method(), format!("{PREFIX}{}", r.path)))
        .collect()
}

/// Registers `ROUTES`, one `web::resource` per path so that another method
/// gets the contract's 405.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let mut paths: Vec<&'static str> = Vec::new();
    for r in ROUTES {
        if !paths.contains(&r.path) {
            paths.push(r.path);
        }
    }
    let mut scope = web::scope(PREFIX).wrap(super::no_store());
    for path in paths {
        let resource = ROUTES
            .iter()
            .filter(|r| r.path == path)
            .fold(web::resource(path), |res, r| {
                res.route((r.handler)(web::method(r.method())))
            });
        scope = scope.service(resource);
    }
    cfg.service(scope);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_valid_and_routes_unique() {
        let mut seen = std::collections::HashSet::new();
        for r in ROUTES {
            assert!(
                Method::from_bytes(r.method.as_bytes()).is_ok(),
                "{}",
                r.method
            );
            assert!(seen.insert((r.method, r.path)), "{} {}", r.method, r.path);
        }
    }
}
