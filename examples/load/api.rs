//! The latchkey HTTP calls the driver makes, and how each answer is judged.
//! Every bad answer becomes a `Failure` value; nothing here panics, retries or times itself.

use std::fmt;

use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{Client, RequestBuilder, StatusCode};
use serde::Deserialize;

use crate::target::Endpoints;

/// Why one request did not succeed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The server answered with an unexpected status, and the RFC 6749 `error` code if it sent one.
    Status(u16, Option<String>),
    /// The request or the body took longer than the timeout.
    Timeout,
    /// No connection could be made.
    Connect,
    /// The connection broke in another way.
    Transport,
    /// The status was right but the body was not what the contract says.
    BadBody,
    /// Introspection answered `active: false` for a token that should be live.
    Inactive,
}

impl Failure {
    /// Classifies a reqwest error; kept coarse so counts stay readable.
    fn from_transport(err: &reqwest::Error) -> Self {
        if err.is_timeout() {
            Failure::Timeout
        } else if err.is_connect() {
            Failure::Connect
        } else {
            Failure::Transport
        }
    }

    /// A status failure, with the `error` code from the body when it is a plain token.
    fn from_status(status: StatusCode, body: &[u8]) -> Self {
        let code = serde_json::from_slice::<ErrorBody>(body)
            .ok()
            .map(|b| b.error)
            // The code is echoed to the terminal: keep only short, plain ones.
            .filter(|c| !c.is_empty() && c.len() <= 64)
            .filter(|c| c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        Failure::Status(status.as_u16(), code)
    }

    /// Whether the server refused the request itself (4xx), rather than failing to serve it.
    pub fn is_client_error(&self) -> bool {
        matches!(self, Failure::Status(status, _) if (400..500).contains(status) && *status != 429)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Status(status, Some(code)) => write!(f, "http {status} ({code})"),
            Failure::Status(status, None) => write!(f, "http {status}"),
            Failure::Timeout => f.write_str("timeout"),
            Failure::Connect => f.write_str("connect error"),
            Failure::Transport => f.write_str("transport error"),
            Failure::BadBody => f.write_str("unexpected body"),
            Failure::Inactive => f.write_str("introspection said inactive"),
        }
    }
}

/// RFC 6749 §5.2 error body; only the code is read.
#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

/// The token-endpoint success fields the driver needs (RFC 6749 §5.1).
#[derive(Deserialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// The rotated refresh token; absent for client_credentials.
    pub refresh_token: Option<String>,
}

/// RFC 7662 §2.2 introspection answer; only `active` is read.
#[derive(Deserialize)]
struct IntrospectResponse {
    active: bool,
}

/// A synthetic user of this run.
#[derive(Clone)]
pub struct User {
    /// A unique address under example.com (RFC 2606), so runs never collide.
    pub email: String,
    /// A policy-conforming password shared by the run's users.
    pub password: String,
}

impl User {
    /// The `index`-th user of the run `run_id`.
    pub fn synthetic(run_id: &str, index: usize) -> Self {
        User {
            email: format!("load-{run_id}-{index}@example.com"),
            password: format!("load-pw-{run_id}"),
        }
    }
}

/// The calls of one run, bound to its client, endpoints and scope.
pub struct Api {
    client: Client,
    endpoints: Endpoints,
    scope: Option<String>,
}

impl Api {
    /// Wraps a client built by `target::build_client`.
    pub fn new(client: Client, endpoints: Endpoints, scope: Option<String>) -> Self {
        Api {
            client,
            endpoints,
            scope,
        }
    }

    /// GET /healthz.
    pub async fn health(&self) -> Result<(), Failure> {
        send(
            self.client.get(self.endpoints.health.clone()),
            StatusCode::OK,
            |_| Ok(()),
        )
        .await
    }

    /// POST /v1/users; the contract answers 201.
    pub async fn sign_up(&self, user: &User) -> Result<(), Failure> {
        let body = serde_json::json!({ "email": user.email, "password": user.password });
        let request = self.client.post(self.endpoints.users.clone()).json(&body);
        send(request, StatusCode::CREATED, |_| Ok(())).await
    }

    /// The password grant for a public client.
    pub async fn password_grant(
        &self,
        client_id: &str,
        user: &User,
    ) -> Result<TokenResponse, Failure> {
        let mut form = vec![
            ("grant_type", "password"),
            ("username", user.email.as_str()),
            ("password", user.password.as_str()),
            ("client_id", client_id),
        ];
        if let Some(scope) = &self.scope {
            form.push(("scope", scope.as_str()));
        }
        self.token(self.client.post(self.endpoints.token.clone()).form(&form))
            .await
    }

    /// The refresh_token grant for a public client. No scope: the original one is kept.
    pub async fn refresh_grant(
        &self,
        client_id: &str,
        refresh_token: &str,
    ) -> Result<TokenResponse, Failure> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", client_id),
        ];
        self.token(self.client.post(self.endpoints.token.clone()).form(&form))
            .await
    }

    /// The client_credentials grant with client_secret_basic.
    pub async fn client_credentials(&self, basic: &HeaderValue) -> Result<TokenResponse, Failure> {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &self.scope {
            form.push(("scope", scope.as_str()));
        }
        let request = self.client.post(self.endpoints.token.clone());
        self.token(request.header(AUTHORIZATION, basic.clone()).form(&form))
            .await
    }

    /// POST /oauth/introspect; a live token must come back `active: true`.
    pub async fn introspect(&self, basic: &HeaderValue, token: &str) -> Result<(), Failure> {
        let form = [("token", token), ("token_type_hint", "access_token")];
        let request = self.client.post(self.endpoints.introspect.clone());
        let request = request.header(AUTHORIZATION, basic.clone()).form(&form);
        send(
            request,
            StatusCode::OK,
            |body| match serde_json::from_slice::<IntrospectResponse>(body) {
                Ok(IntrospectResponse { active: true }) => Ok(()),
                Ok(IntrospectResponse { active: false }) => Err(Failure::Inactive),
                Err(_) => Err(Failure::BadBody),
            },
        )
        .await
    }

    /// GET /.well-known/jwks.json; the body must be a JSON object with a `keys` array.
    pub async fn jwks(&self) -> Result<(), Failure> {
        #[derive(Deserialize)]
        struct Jwks {
            keys: Vec<serde::de::IgnoredAny>,
        }
        send(
            self.client.get(self.endpoints.jwks.clone()),
            StatusCode::OK,
            |body| match serde_json::from_slice::<Jwks>(body) {
                Ok(jwks) if !jwks.keys.is_empty() => Ok(()),
                _ => Err(Failure::BadBody),
            },
        )
        .await
    }

    /// Sends a token request and parses the 200 answer.
    async fn token(&self, request: RequestBuilder) -> Result<TokenResponse, Failure> {
        send(request, StatusCode::OK, |body| {
            serde_json::from_slice(body).map_err(|_| Failure::BadBody)
        })
        .await
    }
}

/// Sends a request, reads the whole body (so the connection goes back to the pool)
/// and, when the status is the expected one, judges the body with `parse`.
async fn send<T>(
    request: RequestBuilder,
    expected: StatusCode,
    parse: impl FnOnce(&[u8]) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let response = request
        .send()
        .await
        .map_err(|e| Failure::from_transport(&e))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| Failure::from_transport(&e))?;
    if status != expected {
        return Err(Failure::from_status(status, &body));
    }
    parse(&body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_failure_keeps_a_plain_error_code() {
        let failure =
            Failure::from_status(StatusCode::BAD_REQUEST, br#"{"error":"invalid_grant"}"#);
        assert_eq!(failure.to_string(), "http 400 (invalid_grant)");
    }

    #[test]
    fn status_failure_drops_odd_or_missing_codes() {
        let odd = Failure::from_status(StatusCode::BAD_REQUEST, b"{\"error\":\"\\u001b[31mx\"}");
        let html = Failure::from_status(StatusCode::BAD_GATEWAY, b"<html>");
        assert_eq!(odd.to_string(), "http 400");
        assert_eq!(html.to_string(), "http 502");
    }

    #[test]
    fn only_non_throttle_4xx_are_client_errors() {
        assert!(Failure::Status(400, None).is_client_error());
        assert!(!Failure::Status(429, None).is_client_error());
        assert!(!Failure::Status(503, None).is_client_error());
        assert!(!Failure::Timeout.is_client_error());
    }

    #[test]
    fn synthetic_users_are_unique_and_meet_the_password_policy() {
        let (a, b) = (User::synthetic("abc", 1), User::synthetic("abc", 2));
        assert_ne!(a.email, b.email);
        assert!(a.password.len() >= 8);
    }
}
