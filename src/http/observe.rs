//! The outermost middleware: one request id per request, a tracing span that
//! carries it, the request's metrics, and one log line when it finishes.
//!
//! The request id is the caller's `X-Request-Id` when it is sane (1 to 128
//! characters from `A-Z a-z 0-9 - _ . :`, so it cannot forge log lines or
//! smuggle markup into a log viewer), else a fresh UUID; it is echoed in the
//! response. Every line logged while the request is served sits in its span
//! and so carries `request.id`.
//!
//! Metrics and logs name the matched route pattern
//! (`/v1/account/sessions/{sid}`), never the raw path or the query string:
//! the label set stays bounded whatever clients send, and nothing a client
//! put in a URL (a token in a query string, say) reaches a log line.

use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web;
use tracing::Instrument as _;

use super::AppState;

/// The request id header, read and echoed.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The `route` label of requests that matched no route.
const UNMATCHED: &str = "unmatched";

/// Routes polled by machines (load balancers, scrapers, resource servers
/// refreshing their keys and metadata): logged at debug, so they do not drown
/// the access log. A line per JWKS fetch also cost a third of JWKS
/// throughput; `latchkey_http_requests_total` still counts them all.
const QUIET_ROUTES: [&str; 6] = [
    "/healthz",
    "/readyz",
    "/metrics",
    "/.well-known/jwks.json",
    "/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server",
];

/// Whether a caller's request id may be reused as ours.
pub fn is_sane_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| is_sane_request_id(id))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

/// The `method` label: the standard methods by name, anything else as
/// `other`, so invented methods cannot grow the label set.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// Wraps every request: see the module documentation.
///
/// # Errors
/// Whatever the inner service fails with, passed through (handlers turn
/// their errors into responses, so in practice none).
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = request_id(&req);
    let method = method_label(req.method());
    let route = req.match_pattern().unwrap_or_else(|| UNMATCHED.to_owned());
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.services.metrics.clone());
    let span = tracing::info_span!(
        "request",
        request.id = %id,
        http.method = method,
        http.route = %route,
    );
    // The request must not be cloned before it is routed (routing needs the
    // only reference), so an inner error keeps its own rendering and goes
    // without the id header.
    let mut out = next.call(req).instrument(span.clone()).await;
    let status = match &out {
        Ok(res) => res.status(),
        Err(err) => err.as_response_error().status_code(),
    };
    if let (Ok(res), Ok(value)) = (&mut out, HeaderValue::from_str(&id)) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    let elapsed = started.elapsed();
    span.in_scope(|| log_finished(&route, status.as_u16(), elapsed));
    if let Some(m) = metrics {
        m.http_request(method, route.into(), status.as_u16(), elapsed.as_secs_f64());
    }
    out
}

/// The access-log line, inside the request's span.
fn log_finished(route: &str, status: u16, elapsed: Duration) {
    if QUIET_ROUTES.contains(&route) {
        tracing::debug!(http.status = status, "request finished");
    } else {
        tracing::info!(
            http.status = status,
            http.duration_ms = elapsed.as_secs_f64() * 1000.0,
            "request finished"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_request_ids_are_short_and_plain() {
        assert!(is_sane_request_id("0f8c2a9e-3b1d-4c5e-9f00-123456789abc"));
        assert!(is_sane_request_id(
            "Root=1-5759e988".replace('=', ":").as_str()
        ));
        assert!(is_sane_request_id("a"));
        assert!(!is_sane_request_id(""));
        assert!(!is_sane_request_id(&"a".repeat(129)));
        assert!(!is_sane_request_id("abc\ndef"));
        assert!(!is_sane_request_id("<script>"));
        assert!(!is_sane_request_id("a b"));
    }

    /// Collects what the subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut b) = self.0.lock() {
                b.extend_from_slice(buf);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[actix_web::test]
    async fn every_json_line_logged_in_a_request_carries_its_id() {
        use actix_web::{middleware::from_fn, test, App, HttpResponse};
        let captured = Captured::default();
        let writer = captured.clone();
        let settings = crate::config::LogSettings {
            format: crate::config::LogFormat::Json,
            level: "info".into(),
        };
        let _guard =
            tracing::subscriber::set_default(crate::telemetry::subscriber(&settings, move || {
                writer.clone()
            }));
        let app = test::init_service(App::new().wrap(from_fn(observe)).route(
            "/things/{id}",
            web::get().to(|| async {
                tracing::info!(user.id = "u-1", "inside the handler");
                HttpResponse::Ok().finish()
            }),
        ))
        .await;
        let req = test::TestRequest::get()
            .uri("/things/42?token=secret")
            .insert_header(("X-Request-Id", "req-42"))
            .to_request();

        let res = test::call_service(&app, req).await;

        assert_eq!(
            res.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()),
            Some("req-42")
        );
        let bytes = captured.0.lock().map(|b| b.clone()).unwrap_or_default();
        let text = String::from_utf8(bytes).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_default())
            .collect();
        assert!(lines.len() >= 2, "{text}");
        for line in &lines {
            assert_eq!(line["span"]["request.id"], "req-42", "{line}");
            assert_eq!(line["span"]["http.route"], "/things/{id}", "{line}");
        }
        assert!(lines
            .iter()
            .any(|l| l["message"] == "inside the handler" && l["user.id"] == "u-1"));
        assert!(lines
            .iter()
            .any(|l| l["message"] == "request finished" && l["http.status"] == 200));
        assert!(!text.contains("secret") && !text.contains("/things/42"));
    }

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        let custom = Method::from_bytes(b"BREW").expect("method");
        assert_eq!(method_label(&custom), "other");
    }
}
