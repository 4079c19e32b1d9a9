//! `GET /.well-known/jwks.json`: the pre-rendered JWK Set, cacheable until
//! the published set next changes, with an `ETag` and 304 on a match.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::AppState;

/// Serves the JWK Set published now.
pub async fn get_jwks(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let (doc, max_age) = state.services.jwks();
    let cache = format!("public, max-age={max_age}");
    let matches = req
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .any(|v| if_none_match_matches(v, &doc.etag));
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

/// RFC 9110 §13.1.2: `If-None-Match` uses the weak comparison, so a
/// `W/"…"` tag (as a CDN that recompressed the body sends back) matches the
/// strong tag it came from; `*` matches any.
fn if_none_match_matches(header: &str, etag: &str) -> bool {
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let ours = opaque(etag);
    header
        .split(',')
        .any(|t| t.trim() == "*" || opaque(t) == ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly() {
        let etag = "\"abc\"";
        assert!(if_none_match_matches("\"abc\"", etag));
        assert!(if_none_match_matches("W/\"abc\"", etag));
        assert!(if_none_match_matches("\"x\", W/\"abc\"", etag));
        assert!(if_none_match_matches("*", etag));
        assert!(!if_none_match_matches("\"abcd\"", etag));
        assert!(!if_none_match_matches("W/\"ab\"", etag));
        assert!(!if_none_match_matches("abc", etag));
    }
}
