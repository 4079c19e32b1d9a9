//! `ApiError`: the only place that knows the wire. One `match` gives every
//! failure its status, its RFC 6749 §5.2 body `{"error", "error_description"}`
//! with a fixed description, and its headers (`WWW-Authenticate`,
//! `Retry-After`). Errors are logged here, once, as they become responses.

use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::domain::dpop::DpopFailure;
use crate::domain::error::{DomainError, RefreshFailure};

/// A failure on its way to the client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A domain failure; `wire` maps each to its status, code and headers,
    /// and every passing overload the domain names to 503.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// 413: the body is larger than the endpoint accepts.
    #[error("payload too large")]
    PayloadTooLarge,
    /// 415: the body is not of the media type the endpoint reads.
    #[error("unsupported media type")]
    UnsupportedMediaType(&'static str),
    /// 400: the body could not be read or parsed.
    #[error("malformed body")]
    MalformedBody(&'static str),
    /// 404: no such route.
    #[error("no such route")]
    RouteNotFound,
    /// 405: the route exists, but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Any other refusal that actix produced before a handler ran; keeps its
    /// status, gets the contract's body (see `json_errors`).
    #[error("refused with status {0}")]
    Status(StatusCode),
}

#[derive(Serialize)]
struct ErrorBody {
    error: &'static str,
    error_description: &'static str,
}

/// Status, error code, description and extra headers for a failure.
struct Wire {
    status: StatusCode,
    error: &'static str,
    description: &'static str,
    www_authenticate: Option<&'static str>,
    retry_after: Option<i64>,
    /// RFC 9449 §8: the nonce to retry with.
    dpop_nonce: Option<String>,
}

/// 503 `temporarily_unavailable` with `Retry-After`.
fn unavailable() -> Wire {
    Wire {
        retry_after: Some(2),
        ..wire(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the service is temporarily unavailable; try again shortly",
        )
    }
}

fn wire(status: StatusCode, error: &'static str, description: &'static str) -> Wire {
    Wire {
        status,
        error,
        description,
        www_authenticate: None,
        retry_after: None,
        dpop_nonce: None,
    }
}

/// RFC 9449 §7.1 challenges, naming the proof algorithms accepted.
const DPOP_INVALID_TOKEN: &str = "DPoP algs=\"ES256 EdDSA RS256 PS256\", error=\"invalid_token\", error_description=\"the access token is DPoP-bound and needs the DPoP scheme with a proof, or is not DPoP-bound\"";
const DPOP_INVALID_PROOF: &str = "DPoP algs=\"ES256 EdDSA RS256 PS256\", error=\"invalid_dpop_proof\", error_description=\"the DPoP proof is invalid\"";
const DPOP_USE_NONCE: &str = "DPoP algs=\"ES256 EdDSA RS256 PS256\", error=\"use_dpop_nonce\", error_description=\"a DPoP nonce is required\"";

/// The token endpoint's answer to a DPoP refusal (RFC 9449 §4.3, §8).
fn dpop_at_token_endpoint(f: &DpopFailure) -> Wire {
    use StatusCode as S;
    match f {
        DpopFailure::Nonce(nonce) => Wire {
            dpop_nonce: Some(nonce.clone()),
            ..wire(
                S::BAD_REQUEST,
                "use_dpop_nonce",
                "a DPoP nonce is required; retry with the one in the DPoP-Nonce header",
            )
        },
        DpopFailure::Required => wire(
            S::BAD_REQUEST,
            "invalid_dpop_proof",
            "this client must send a DPoP proof",
        ),
        DpopFailure::CodeBoundToAnotherKey => wire(
            S::BAD_REQUEST,
            "invalid_dpop_proof",
            "the authorization code is bound to a DPoP key (dpop_jkt); send a proof made with that key",
        ),
        _ => wire(
            S::BAD_REQUEST,
            "invalid_dpop_proof",
            "the DPoP proof is invalid",
        ),
    }
}

/// A protected resource's answer to a DPoP refusal (RFC 9449 §7.1, §9).
fn dpop_at_resource(f: &DpopFailure) -> Wire {
    use StatusCode as S;
    match f {
        DpopFailure::Nonce(nonce) => Wire {
            dpop_nonce: Some(nonce.clone()),
            www_authenticate: Some(DPOP_USE_NONCE),
            ..wire(S::UNAUTHORIZED, "use_dpop_nonce", "a DPoP nonce is required; retry with the one in the DPoP-Nonce header")
        },
        DpopFailure::BoundTokenWithoutProof | DpopFailure::UnboundToken => Wire {
            www_authenticate: Some(DPOP_INVALID_TOKEN),
            ..wire(S::UNAUTHORIZED, "invalid_token", "the access token is DPoP-bound and needs the DPoP scheme with a proof, or is not DPoP-bound")
        },
        _ => Wire {
            www_authenticate: Some(DPOP_INVALID_PROOF),
            ..wire(S::UNAUTHORIZED, "invalid_dpop_proof", "the DPoP proof is invalid")
        },
    }
}

impl ApiError {
    fn wire(&self) -> Wire {
        use DomainError as D;
        use StatusCode as S;
        match self {
            Self::PayloadTooLarge => wire(S::PAYLOAD_TOO_LARGE, "invalid_request", "request body too large"),
            Self::UnsupportedMediaType(d) => wire(S::UNSUPPORTED_MEDIA_TYPE, "invalid_request", d),
            Self::MalformedBody(d) => wire(S::BAD_REQUEST, "invalid_request", d),
            Self::RouteNotFound => wire(S::NOT_FOUND, "not_found", "no such endpoint"),
            Self::MethodNotAllowed => wire(S::METHOD_NOT_ALLOWED, "invalid_request", "this endpoint does not accept this method"),
            // A busy hashing queue or an unreachable store: the domain says
            // which failures are "try again later".
            Self::Status(S::SERVICE_UNAVAILABLE) => unavailable(),
            Self::Domain(d) if d.is_unavailable() => unavailable(),
            Self::Status(s) if s.is_server_error() => wire(*s, "server_error", "an internal error occurred"),
            Self::Status(s) => wire(*s, "invalid_request", "the request could not be processed"),
            Self::Domain(d) => match d {
                D::InvalidRequest(msg) => wire(S::BAD_REQUEST, "invalid_request", msg),
                D::UnsupportedGrantType => wire(S::BAD_REQUEST, "unsupported_grant_type", "grant_type is missing or not supported"),
                D::InvalidScope => wire(S::BAD_REQUEST, "invalid_scope", "the requested scope is invalid or not allowed"),
                D::ClientAuthFailed => Wire {
                    www_authenticate: Some("Basic realm=\"latchkey\", charset=\"UTF-8\""),
                    ..wire(S::UNAUTHORIZED, "invalid_client", "client authentication failed")
                },
                D::UnauthorizedClient(msg) => wire(S::BAD_REQUEST, "unauthorized_client", msg),
                D::InvalidCredentials => wire(S::BAD_REQUEST, "invalid_grant", "invalid username or password"),
                D::EmailUnverified => wire(S::BAD_REQUEST, "invalid_grant", "the email address is not verified; follow the link in the verification email"),
                D::EmailTokenRefused => wire(S::BAD_REQUEST, "invalid_grant", "the link is invalid, expired or already used"),
                D::InvalidGrant(msg) => wire(S::BAD_REQUEST, "invalid_grant", msg),
                D::RefreshRefused(f) => wire(S::BAD_REQUEST, "invalid_grant", refresh_description(*f)),
                D::InvalidToken(_) | D::TokenRevoked => Wire {
                    www_authenticate: Some("Bearer realm=\"latchkey\", error=\"invalid_token\", error_description=\"the access token is invalid, expired or revoked\""),
                    ..wire(S::UNAUTHORIZED, "invalid_token", "the access token is invalid, expired or revoked")
                },
                // RFC 6750 §3.1: no error code when no credentials were sent.
                D::MissingToken => Wire {
                    www_authenticate: Some("Bearer realm=\"latchkey\""),
                    ..wire(S::UNAUTHORIZED, "invalid_token", "an access token is required")
                },
                // RFC 6750 §3.1.
                D::InsufficientScope(msg) => Wire {
                    www_authenticate: Some("Bearer realm=\"latchkey\", error=\"insufficient_scope\""),
                    ..wire(S::FORBIDDEN, "insufficient_scope", msg)
                },
                D::EmailTaken => wire(S::CONFLICT, "email_taken", "an account with this email already exists"),
                D::WeakPassword(msg) => wire(S::BAD_REQUEST, "weak_password", msg),
                D::InvalidEmail => wire(S::BAD_REQUEST, "invalid_email", "the email address is not valid"),
                D::SignupDisabled => wire(S::FORBIDDEN, "signup_disabled", "sign-up is disabled on this server"),
                D::NotFound => wire(S::NOT_FOUND, "not_found", "not found"),
                D::OriginRefused => wire(S::FORBIDDEN, "invalid_request", "the request origin is not allowed"),
                D::Throttled { retry_after_secs } => Wire {
                    retry_after: Some(*retry_after_secs),
                    ..wire(S::TOO_MANY_REQUESTS, "too_many_requests", "too many failed attempts; try again later")
                },
                D::DpopRefused(f) => dpop_at_token_endpoint(f),
                D::DpopAccessRefused(f) => dpop_at_resource(f),
                D::HashQueueFull | D::Store(_) | D::Keys(_) | D::Internal(_) => {
                    wire(S::INTERNAL_SERVER_ERROR, "server_error", "an internal error occurred")
                }
            },
        }
    }
}

impl ApiError {
    /// The error for a response that actix built itself (an unmatched method,
    /// a path or query that did not deserialise, a default extractor), from
    /// its status alone.
    pub fn from_status(status: StatusCode) -> Self {
        match status {
            StatusCode::NOT_FOUND => Self::RouteNotFound,
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                Self::UnsupportedMediaType("this media type is not accepted here")
            }
            other => Self::Status(other),
        }
    }
}

/// The last line of defence for the wire format: any 4xx or 5xx response
/// that is neither JSON nor a page's HTML (actix's plain-text and empty-bodied defaults,
/// such as 405 for a known path with another method, or a path extractor's
/// refusal) is replaced with the contract's `{"error", "error_description"}`
/// body for its status. Responses built from `ApiError` pass untouched.
pub fn json_errors<B: 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(|res: ServiceResponse<B>| {
        // JSON errors are already in shape; HTML is one of latchkey's own
        // pages (the login page after a wrong password, an error page),
        // which must reach the browser as rendered. Anything else (actix's
        // plain-text defaults) is replaced.
        let is_ours = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
        if is_ours {
            return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
        }
        let status = res.status();
        // RFC 9110 §15.5.6: a 405 names the methods the resource takes;
        // actix's own 405 has the `Allow` header, which the new body keeps.
        let allow = res.headers().get(header::ALLOW).cloned();
        let (req, _) = res.into_parts();
        let mut replaced = ApiError::from_status(status).error_response();
        if let Some(allow) = allow {
            replaced.headers_mut().insert(header::ALLOW, allow);
        }
        Ok(ErrorHandlerResponse::Response(
            ServiceResponse::new(req, replaced).map_into_right_body(),
        ))
    })
}

fn refresh_description(f: RefreshFailure) -> &'static str {
    match f {
        RefreshFailure::Unknown => "the refresh token is invalid or unknown",
        RefreshFailure::Expired => "the refresh token has expired (the session ended)",
        RefreshFailure::Revoked => "the refresh token has been revoked",
        RefreshFailure::Reused => {
            "the refresh token was already used; the session has been revoked"
        }
        RefreshFailure::WrongClient => "the refresh token was issued to another client",
        RefreshFailure::DpopKeyMismatch => {
            "the refresh token is bound to a DPoP key; send a proof made with that key"
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.wire().status
    }

    fn error_response(&self) -> HttpResponse {
        let w = self.wire();
        if w.status.is_server_error() {
            tracing::error!(err = ?self, "request failed");
        } else {
            tracing::debug!(
                error = w.error,
                status = w.status.as_u16(),
                "request refused"
            );
        }
        let mut res = HttpResponse::build(w.status);
        if let Some(v) = w.www_authenticate {
            res.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static(v)));
        }
        if let Some(secs) = w.retry_after {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if let Some(nonce) = w.dpop_nonce {
            res.insert_header(("DPoP-Nonce", nonce));
        }
        res.insert_header((header::CACHE_CONTROL, "no-store"));
        res.json(ErrorBody {
            error: w.error,
            error_description: w.description,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::error::StoreError;
    use crate::tokens::jwt::JwtError;
    use actix_web::body::to_bytes;
    use latchkey_verify::dpop::ProofError;

    async fn render(e: ApiError) -> (u16, serde_json::Value, Option<String>, Option<String>) {
        let res = e.error_response();
        let status = res.status().as_u16();
        let www = res
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap_or("").to_owned());
        let retry = res
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap_or("").to_owned());
        let body = to_bytes(res.into_body()).await.unwrap_or_default();
        (
            status,
            serde_json::from_slice(&body).unwrap_or_default(),
            www,
            retry,
        )
    }

    #[actix_web::test]
    async fn every_arm_maps_to_its_status_code_and_headers() {
        let cases: Vec<(ApiError, u16, &str)> = vec![
            (ApiError::PayloadTooLarge, 413, "invalid_request"),
            (ApiError::UnsupportedMediaType("x"), 415, "invalid_request"),
            (ApiError::MalformedBody("x"), 400, "invalid_request"),
            (ApiError::RouteNotFound, 404, "not_found"),
            (ApiError::MethodNotAllowed, 405, "invalid_request"),
            (
                ApiError::Status(StatusCode::BAD_REQUEST),
                400,
                "invalid_request",
            ),
            (
                ApiError::Status(StatusCode::SERVICE_UNAVAILABLE),
                503,
                "temporarily_unavailable",
            ),
            (
                ApiError::Status(StatusCode::BAD_GATEWAY),
                502,
                "server_error",
            ),
            (
                DomainError::InvalidRequest("x").into(),
                400,
                "invalid_request",
            ),
            (
                DomainError::UnsupportedGrantType.into(),
                400,
                "unsupported_grant_type",
            ),
            (DomainError::InvalidScope.into(), 400, "invalid_scope"),
            (DomainError::ClientAuthFailed.into(), 401, "invalid_client"),
            (
                DomainError::UnauthorizedClient("x").into(),
                400,
                "unauthorized_client",
            ),
            (DomainError::InvalidCredentials.into(), 400, "invalid_grant"),
            (DomainError::EmailUnverified.into(), 400, "invalid_grant"),
            (DomainError::EmailTokenRefused.into(), 400, "invalid_grant"),
            (
                DomainError::RefreshRefused(RefreshFailure::Reused).into(),
                400,
                "invalid_grant",
            ),
            (
                DomainError::InvalidToken(JwtError::Expired).into(),
                401,
                "invalid_token",
            ),
            (DomainError::TokenRevoked.into(), 401, "invalid_token"),
            (DomainError::MissingToken.into(), 401, "invalid_token"),
            (
                DomainError::InsufficientScope("x").into(),
                403,
                "insufficient_scope",
            ),
            (DomainError::EmailTaken.into(), 409, "email_taken"),
            (DomainError::WeakPassword("x").into(), 400, "weak_password"),
            (DomainError::InvalidEmail.into(), 400, "invalid_email"),
            (DomainError::SignupDisabled.into(), 403, "signup_disabled"),
            (DomainError::NotFound.into(), 404, "not_found"),
            (DomainError::OriginRefused.into(), 403, "invalid_request"),
            (
                DomainError::Throttled {
                    retry_after_secs: 7,
                }
                .into(),
                429,
                "too_many_requests",
            ),
            (
                DomainError::HashQueueFull.into(),
                503,
                "temporarily_unavailable",
            ),
            (
                DomainError::Store(StoreError::Unavailable(sqlx::Error::PoolTimedOut)).into(),
                503,
                "temporarily_unavailable",
            ),
            (
                DomainError::Store(StoreError::NotFound).into(),
                500,
                "server_error",
            ),
            (DomainError::Internal("x").into(), 500, "server_error"),
            (DomainError::InvalidGrant("x").into(), 400, "invalid_grant"),
            (
                DomainError::DpopRefused(DpopFailure::Proof(ProofError::Replayed)).into(),
                400,
                "invalid_dpop_proof",
            ),
            (
                DomainError::DpopRefused(DpopFailure::Required).into(),
                400,
                "invalid_dpop_proof",
            ),
            (
                DomainError::DpopRefused(DpopFailure::Nonce("n".into())).into(),
                400,
                "use_dpop_nonce",
            ),
            (
                DomainError::DpopAccessRefused(DpopFailure::SeveralProofs).into(),
                401,
                "invalid_dpop_proof",
            ),
            (
                DomainError::DpopAccessRefused(DpopFailure::BoundTokenWithoutProof).into(),
                401,
                "invalid_token",
            ),
            (
                DomainError::DpopAccessRefused(DpopFailure::Nonce("n".into())).into(),
                401,
                "use_dpop_nonce",
            ),
        ];
        for (err, status, code) in cases {
            let (s, body, www, retry) = render(err).await;
            assert_eq!(s, status, "{code}");
            assert_eq!(body["error"], code);
            assert!(body["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()));
            assert_eq!(
                www.is_some(),
                s == 401 || code == "insufficient_scope",
                "WWW-Authenticate on {code}"
            );
            assert_eq!(
                retry.is_some(),
                s == 429 || s == 503,
                "Retry-After on {code}"
            );
        }
    }

    #[actix_web::test]
    async fn plain_refusals_are_replaced_by_the_json_shape() {
        use actix_web::{test, web, App};
        let app = test::init_service(
            App::new()
                .wrap(json_errors())
                .service(web::resource("/x").route(web::get().to(|| async { "ok" })))
                .route(
                    "/plain",
                    web::get().to(|| async { HttpResponse::BadRequest().body("plain text") }),
                )
                .route(
                    "/api",
                    web::get().to(|| async { ApiError::RouteNotFound.error_response() }),
                ),
        )
        .await;
        for (req, status, code) in [
            (test::TestRequest::post().uri("/x"), 405, "invalid_request"),
            (
                test::TestRequest::get().uri("/plain"),
                400,
                "invalid_request",
            ),
            (test::TestRequest::get().uri("/api"), 404, "not_found"),
        ] {
            let res = test::call_service(&app, req.to_request()).await;
            assert_eq!(res.status().as_u16(), status);
            let body: serde_json::Value = test::read_body_json(res).await;
            assert_eq!(body["error"], code);
        }
        let res = test::call_service(&app, test::TestRequest::get().uri("/x").to_request()).await;
        assert_eq!(test::read_body(res).await, "ok");
    }

    #[actix_web::test]
    async fn dpop_refusals_at_resources_challenge_with_dpop_and_nonces_travel() {
        let (_, _, www, _) =
            render(DomainError::DpopAccessRefused(DpopFailure::UnboundToken).into()).await;
        assert!(www.is_some_and(|w| w.starts_with("DPoP ") && w.contains("invalid_token")));
        let res = ApiError::from(DomainError::DpopRefused(DpopFailure::Nonce("abc".into())))
            .error_response();
        assert_eq!(
            res.headers()
                .get("DPoP-Nonce")
                .and_then(|v| v.to_str().ok()),
            Some("abc")
        );
    }

    #[actix_web::test]
    async fn client_auth_failure_asks_for_basic() {
        let (_, _, www, _) = render(DomainError::ClientAuthFailed.into()).await;
        assert!(www.is_some_and(|w| w.starts_with("Basic ")));
    }

    #[actix_web::test]
    async fn refresh_failures_are_told_apart() {
        let mut seen = std::collections::HashSet::new();
        for f in [
            RefreshFailure::Unknown,
            RefreshFailure::Expired,
            RefreshFailure::Revoked,
            RefreshFailure::Reused,
            RefreshFailure::WrongClient,
        ] {
            let (_, body, _, _) = render(DomainError::RefreshRefused(f).into()).await;
            assert!(seen.insert(body["error_description"].to_string()));
        }
    }
}
