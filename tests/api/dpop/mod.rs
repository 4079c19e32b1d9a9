//! DPoP (RFC 9449): proofs at the token endpoint, bound access tokens and
//! sessions, and bound tokens at latchkey's own protected endpoints.

mod code_flow;
mod proofs;
mod resources;
mod sessions;
pub mod signer;

use latchkey::clock::Clock;
use serde_json::Value;

pub use crate::helpers::claims as claims_of;
use crate::helpers::{TestApp, TestClient};
use signer::ProofKey;

pub const PASSWORD: &str = "correct horse battery";

/// The URL a proof must name: the issuer's base with the route's path, as
/// discovery advertises it.
pub fn htu(app: &TestApp, path: &str) -> String {
    format!("{}{path}", app.settings.issuer())
}

/// The server's clock, in seconds.
pub fn now(app: &TestApp) -> i64 {
    app.clock.now().timestamp()
}

/// A token request with the given `DPoP` header values.
pub async fn post_token_with(
    app: &TestApp,
    form: &[(&str, &str)],
    proofs: &[String],
) -> reqwest::Response {
    let mut req = app.client.post(app.url("/oauth/token")).form(form);
    for p in proofs {
        req = req.header("DPoP", p);
    }
    req.send().await.expect("request")
}

/// A fresh user; returns the email.
pub async fn new_user(app: &TestApp) -> String {
    let email = format!("dpop-{}@example.com", uuid::Uuid::new_v4().simple());
    assert_eq!(app.signup(&email, PASSWORD).await.status(), 201);
    email
}

/// A password grant for `client`, with a proof made with `key` if any.
pub async fn login_with(
    app: &TestApp,
    client: &TestClient,
    email: &str,
    key: Option<&ProofKey>,
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "password"),
        ("username", email),
        ("password", PASSWORD),
        ("client_id", client.id.as_str()),
        ("scope", "openid email"),
    ];
    if let Some(secret) = client.secret.as_deref() {
        form.push(("client_secret", secret));
    }
    let proofs: Vec<String> = key
        .map(|k| k.proof("POST", &htu(app, "/oauth/token"), now(app)))
        .into_iter()
        .collect();
    post_token_with(app, &form, &proofs).await
}

/// A refresh for `client`, with a proof made with `key` if any.
pub async fn refresh_with(
    app: &TestApp,
    client: &TestClient,
    refresh_token: &str,
    key: Option<&ProofKey>,
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", client.id.as_str()),
    ];
    if let Some(secret) = client.secret.as_deref() {
        form.push(("client_secret", secret));
    }
    let proofs: Vec<String> = key
        .map(|k| k.proof("POST", &htu(app, "/oauth/token"), now(app)))
        .into_iter()
        .collect();
    post_token_with(app, &form, &proofs).await
}

/// The JSON body and the `error` code of a refusal.
pub async fn error_of(res: reqwest::Response) -> String {
    let body: Value = res.json().await.expect("json");
    body["error"].as_str().unwrap_or_default().to_owned()
}
