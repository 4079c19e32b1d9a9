//! Liveness and readiness.

use actix_web::{web, HttpResponse};

use super::AppState;

/// Liveness: the process answers.
pub async fn get_healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// Readiness: the store answers and a key signs.
pub async fn get_readyz(state: web::Data<AppState>) -> HttpResponse {
    let s = &state.services;
    let store = s.store.ping().await.is_ok();
    let keys = s.keys.signing_key(s.now()).is_ok();
    let body = serde_json::json!({ "store": store, "keys": keys });
    if store && keys {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(body)
    }
}
