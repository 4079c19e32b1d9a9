//! axum extractors and a tower layer. Extractors take the [`Verifier`]
//! from state (`Verifier: FromRef<S>`); the layer holds its own and puts
//! the [`Claims`] in the request's extensions, where the extractors find
//! them without verifying twice. A refused request gets RFC 6750's answer:
//! 401 (403 for a missing scope) with `WWW-Authenticate: Bearer …` and a
//! JSON body `{"error", "error_description"}`.

use std::marker::PhantomData;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::{self, HeaderValue};
use axum::http::request::Parts;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;

use crate::{bearer_token, Claims, Error, Scope, Verifier};

/// A refused request, as an axum response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError(pub Error);

impl From<Error> for AuthError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::UNAUTHORIZED);
        let mut response = (status, axum::Json(self.0.body())).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Ok(challenge) = HeaderValue::from_str(&self.0.challenge()) {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        if self.0.status() == 503 {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
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
/// (RFC 7662, cached briefly). Needs
/// [`crate::VerifierBuilder::introspection`].
#[derive(Debug, Clone)]
pub struct Introspected(pub Claims);

fn token(parts: &Parts) -> Result<&str, Error> {
    bearer_token(
        parts
            .headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .map(HeaderValue::as_bytes),
    )
}

async fn claims_of<S>(parts: &Parts, state: &S) -> Result<Claims, AuthError>
where
    Verifier: FromRef<S>,
{
    if let Some(claims) = parts.extensions.get::<Claims>() {
        return Ok(claims.clone());
    }
    let token = token(parts)?;
    Ok(Verifier::from_ref(state).verify(token).await?)
}

impl<S: Send + Sync> FromRequestParts<S> for Authenticated
where
    Verifier: FromRef<S>,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AuthError> {
        Ok(Self(claims_of(parts, state).await?))
    }
}

impl<T: Send + Sync, S: Scope + Send + Sync> FromRequestParts<T> for RequireScope<S>
where
    Verifier: FromRef<T>,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &T) -> Result<Self, AuthError> {
        let claims = claims_of(parts, state).await?;
        claims.require_scope(S::NAME)?;
        Ok(Self(claims, PhantomData))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Introspected
where
    Verifier: FromRef<S>,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AuthError> {
        let token = token(parts)?;
        Ok(Self(Verifier::from_ref(state).introspect(token).await?))
    }
}

/// A tower layer that refuses requests without a valid token (and, if set,
/// the required scope) before they reach the inner service.
#[derive(Debug, Clone)]
pub struct VerifyLayer {
    verifier: Verifier,
    scope: Option<&'static str>,
}

impl VerifyLayer {
    /// A layer requiring a valid bearer token of any scope; it puts the
    /// claims in the request's extensions for the extractors.
    pub fn new(verifier: Verifier) -> Self {
        Self {
            verifier,
            scope: None,
        }
    }

    /// Also requires `scope`.
    pub fn require_scope(mut self, scope: &'static str) -> Self {
        self.scope = Some(scope);
        self
    }
}

impl<I> tower_layer::Layer<I> for VerifyLayer {
    type Service = VerifyService<I>;

    fn layer(&self, inner: I) -> Self::Service {
        VerifyService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`VerifyLayer`] wraps around another.
#[derive(Debug, Clone)]
pub struct VerifyService<I> {
    inner: I,
    layer: VerifyLayer,
}

impl<I> tower_service::Service<Request<Body>> for VerifyService<I>
where
    I: tower_service::Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    I::Future: Send + 'static,
{
    type Response = Response;
    type Error = I::Error;
    type Future = BoxFuture<'static, Result<Response, I::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The clone that was polled ready serves this request (tower's
        // documented pattern); the fresh clone waits for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let verified = match token(&parts) {
                Ok(t) => layer.verifier.verify(t).await,
                Err(e) => Err(e),
            };
            let claims = match verified.and_then(|c| match layer.scope {
                Some(s) => c.require_scope(s).map(|()| c),
                None => Ok(c),
            }) {
                Ok(c) => c,
                Err(e) => return Ok(AuthError(e).into_response()),
            };
            parts.extensions.insert(claims);
            inner.call(Request::from_parts(parts, body)).await
        })
    }
}
