//! actix-web extractors. Put a [`Verifier`] in app data
//! (`App::new().app_data(web::Data::new(verifier))`), then take
//! [`Authenticated`], [`RequireScope<S>`] or [`Introspected`] as a handler
//! argument. A refused request gets RFC 6750's answer: 401 (403 for a
//! missing scope) with `WWW-Authenticate: Bearer …` and a JSON body
//! `{"error", "error_description"}`.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};

use crate::{bearer_token, Claims, Error, Scope, Verifier};

/// Why an extractor refused the request.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The token was missing, refused or lacks the scope.
    #[error(transparent)]
    Token(#[from] Error),
    /// No `web::Data<Verifier>` is registered: a wiring mistake, answered
    /// 500 rather than letting the request through.
    #[error("no Verifier in app data")]
    NotConfigured,
}

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Token(e) => StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED),
            Self::NotConfigured => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        match self {
            Self::Token(e) => {
                if let Ok(challenge) = HeaderValue::from_str(&e.challenge()) {
                    response.insert_header((header::WWW_AUTHENTICATE, challenge));
                }
                if e.status() == 503 {
                    response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("5")));
                }
                response.json(e.body())
            }
            Self::NotConfigured => response.json(serde_json::json!({
                "error": "server_error",
                "error_description": "The server is not configured to verify tokens.",
            })),
        }
    }
}

/// A request carrying a valid access token; holds its claims.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Claims);

/// A valid access token granting scope `S` (see [`crate::scope!`]).
#[derive(Debug, Clone)]
pub struct RequireScope<S: Scope>(pub Claims, PhantomData<S>);

impl<S: Scope> RequireScope<S> {
    /// The claims; their scopes include `S::NAME`.
    pub fn claims(&self) -> &Claims {
        &self.0
    }
}

/// A valid access token that the issuer also confirmed active just now
/// (RFC 7662, cached briefly): for routes that must honour a revocation at
/// once. Needs [`crate::VerifierBuilder::introspection`].
#[derive(Debug, Clone)]
pub struct Introspected(pub Claims);

type Extracting<T> = Pin<Box<dyn Future<Output = Result<T, AuthError>>>>;

/// The verifier and the token of a request, before any await.
fn parts(req: &HttpRequest) -> Result<(Verifier, String), AuthError> {
    let verifier = req
        .app_data::<web::Data<Verifier>>()
        .map(|v| v.get_ref().clone())
        .or_else(|| req.app_data::<Verifier>().cloned())
        .ok_or(AuthError::NotConfigured)?;
    let token = bearer_token(
        req.headers()
            .get_all(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes),
    )?;
    Ok((verifier, token.to_owned()))
}

impl FromRequest for Authenticated {
    type Error = AuthError;
    type Future = Extracting<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parts = parts(req);
        Box::pin(async move {
            let (verifier, token) = parts?;
            Ok(Self(verifier.verify(&token).await?))
        })
    }
}

impl<S: Scope + 'static> FromRequest for RequireScope<S> {
    type Error = AuthError;
    type Future = Extracting<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parts = parts(req);
        Box::pin(async move {
            let (verifier, token) = parts?;
            let claims = verifier.verify(&token).await?;
            claims.require_scope(S::NAME)?;
            Ok(Self(claims, PhantomData))
        })
    }
}

impl FromRequest for Introspected {
    type Error = AuthError;
    type Future = Extracting<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parts = parts(req);
        Box::pin(async move {
            let (verifier, token) = parts?;
            Ok(Self(verifier.introspect(&token).await?))
        })
    }
}
