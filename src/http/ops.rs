//! Liveness, readiness and the Prometheus metrics.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{web, HttpResponse};

use super::AppState;

/// Liveness: the process answers.
pub async fn get_healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// Readiness: the store answers and a key signs. The body also names the
/// key-ring version this instance holds, so an operator can see every
/// instance caught up with a rotation before it activates.
pub async fn get_readyz(state: web::Data<AppState>) -> HttpResponse {
    let r = state.services.readiness().await;
    let body =
        serde_json::json!({ "store": r.store, "keys": r.keys, "keys_version": r.keys_version });
    if r.ready() {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(body)
    }
}

/// The Prometheus text exposition format, version 0.0.4.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metrics in the Prometheus text format.
pub async fn get_metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, PROMETHEUS_TEXT))
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(state.services.render_metrics())
}

/// Registers `GET /metrics`: on the main listener, or alone on the metrics
/// listener when `metrics.listen` is set.
pub fn metrics_route(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/metrics").get(get_metrics));
}
