//! `GET /.well-known/jwks.json`: the pre-rendered JWK Set, cacheable until
//! the published set next changes, with an `ETag` and 304 on a match.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::AppState;

/// Serves the JWK Set published now.
pub async fn get_jwks(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let s = &state.services;
    let (doc, max_age) = s.keys.jwks(s.now(), s.settings.jwks_max_age());
    let cache = format!("public, max-age={max_age}");
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == doc.etag || t.trim() == "*")
        });
    if matches {
        return HttpResponse::NotModified()
            .insert_header((header::ETAG, doc.etag))
            .insert_header((header::CACHE_CONTROL, cache))
            .finish();
    }
    HttpResponse::Ok()
        .insert_header((header::ETAG, doc.etag))
        .insert_header((header::CACHE_CONTROL, cache))
        .content_type("application/json")
        .body(doc.body)
}
