//! CORS (Fetch standard) for registered origins only: a request whose
//! `Origin` some client registered gets `Access-Control-Allow-Origin` echoing
//! it, plus `Access-Control-Allow-Credentials: true` when a cookie-mode client
//! registered it; preflights are answered here, before routing. Never `*`:
//! with credentials the browser would refuse it, and without them it would
//! let every site read every answer. Every response carries `Vary: Origin`,
//! so a cache never hands one origin's headers to another.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse, ResponseError};

use super::error::ApiError;
use super::AppState;
use crate::domain::clients::parse_origin;
use crate::domain::error::DomainError;
use crate::domain::origins::OriginAccess;

/// Methods the API answers cross-origin.
const ALLOW_METHODS: &str = "GET, POST, DELETE";
/// Request headers a cross-origin page may send.
const ALLOW_HEADERS: &str = "Authorization, Content-Type";
/// Response headers a cross-origin page may read besides the safelisted
/// ones: `Date` to correct clock skew against `expires_in`, and the two that
/// explain an error.
const EXPOSE_HEADERS: &str = "Date, Retry-After, WWW-Authenticate";
/// How long a browser may cache a preflight answer, in seconds.
const PREFLIGHT_MAX_AGE: &str = "600";

/// The CORS middleware (`middleware::from_fn(cors)`).
///
/// # Errors
/// Only what the wrapped service returns.
pub async fn cors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .filter(|_| req.headers().get_all(header::ORIGIN).count() == 1)
        .cloned();
    let access = match (&origin, req.app_data::<web::Data<AppState>>()) {
        (Some(o), Some(state)) => allowed(state, o).await,
        _ => None,
    };
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut res = if preflight {
        let answer = match access {
            Some(_) => preflight_response(),
            None => ApiError::from(DomainError::OriginRefused).error_response(),
        };
        req.into_response(answer)
    } else {
        next.call(req).await?.map_into_boxed_body()
    };
    let headers = res.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if let (Some(origin), Some(access)) = (origin, access) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
        if access == OriginAccess::Credentialed {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }
    Ok(res)
}

/// What a request's `Origin` may do; `None` when no client registered it
/// (and, logged once here, when the store cannot say).
async fn allowed(state: &AppState, origin: &HeaderValue) -> Option<OriginAccess> {
    let origin = parse_origin(origin.to_str().ok()?).ok()?;
    match state.services.origin_access(&origin).await {
        Ok(access) => access,
        Err(err) => {
            tracing::warn!(
                ?err,
                "registered origins unavailable; answering without CORS"
            );
            None
        }
    }
}

fn preflight_response() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, ALLOW_METHODS))
        .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOW_HEADERS))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE))
        .insert_header((
            header::VARY,
            "Access-Control-Request-Method, Access-Control-Request-Headers",
        ))
        .finish()
}
