//! Bound access tokens where they are used (RFC 9449 §6.2, §7): latchkey's
//! own protected endpoints and introspection.

use serde_json::{json, Value};

use super::signer::ProofKey;
use super::*;
use crate::helpers::{spawn_on_with, Backend};
use crate::{app_or_skip, both_backends};

/// A bound access token for a fresh user of a public client.
async fn bound_access(app: &TestApp, key: &ProofKey) -> String {
    let client = app.public_client().await;
    let email = new_user(app).await;
    let body: Value = login_with(app, &client, &email, Some(key))
        .await
        .json()
        .await
        .expect("json");
    body["access_token"].as_str().expect("token").to_owned()
}

async fn with_dpop(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    proof: Option<String>,
) -> reqwest::Response {
    let mut req = app
        .client
        .request(method, app.url(path))
        .header("Authorization", format!("DPoP {token}"));
    if let Some(p) = proof {
        req = req.header("DPoP", p);
    }
    req.send().await.expect("request")
}

fn challenge(res: &reqwest::Response) -> String {
    res.headers()
        .get("WWW-Authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn a_bound_token_works_with_its_proof_and_not_as_bearer(backend: Backend) {
    let app = app_or_skip!(backend);
    let key = ProofKey::es256();
    let token = bound_access(&app, &key).await;
    let url = htu(&app, "/userinfo");

    let ok = with_dpop(
        &app,
        reqwest::Method::GET,
        "/userinfo",
        &token,
        Some(key.resource_proof("GET", &url, now(&app), &token, None)),
    )
    .await;
    let bearer = app.get_bearer("/userinfo", &token).await;

    assert_eq!(ok.status(), 200);
    assert_eq!(bearer.status(), 401);
    let www = challenge(&bearer);
    assert!(
        www.starts_with("DPoP ") && www.contains("error=\"invalid_token\""),
        "{www}"
    );
}
both_backends!(a_bound_token_works_with_its_proof_and_not_as_bearer);

async fn a_bound_token_needs_a_proof_of_its_own_key_and_hash(backend: Backend) {
    let app = app_or_skip!(backend);
    let key = ProofKey::es256();
    let token = bound_access(&app, &key).await;
    let url = htu(&app, "/userinfo");
    let t = now(&app);
    let other_token = bound_access(&app, &key).await;
    let no_ath = key.proof("GET", &url, t);
    let cases = [
        ("no proof", None),
        (
            "another key",
            Some(ProofKey::es256().resource_proof("GET", &url, t, &token, None)),
        ),
        ("no ath", Some(no_ath)),
        (
            "ath of another token",
            Some(key.resource_proof("GET", &url, t, &other_token, None)),
        ),
        (
            "wrong method",
            Some(key.resource_proof("POST", &url, t, &token, None)),
        ),
        (
            "token endpoint's URL",
            Some(key.resource_proof("GET", &htu(&app, "/oauth/token"), t, &token, None)),
        ),
    ];
    for (case, proof) in cases {
        let res = with_dpop(&app, reqwest::Method::GET, "/userinfo", &token, proof).await;

        assert_eq!(res.status(), 401, "{case}");
        let www = challenge(&res);
        assert!(
            www.starts_with("DPoP ") && www.contains("invalid_dpop_proof"),
            "{case}: {www}"
        );
    }
    // A replayed proof is refused too.
    let proof = key.resource_proof("GET", &url, t, &token, None);
    let first = with_dpop(
        &app,
        reqwest::Method::GET,
        "/userinfo",
        &token,
        Some(proof.clone()),
    )
    .await;
    let replay = with_dpop(&app, reqwest::Method::GET, "/userinfo", &token, Some(proof)).await;
    assert_eq!(first.status(), 200);
    assert_eq!(replay.status(), 401);
}
both_backends!(a_bound_token_needs_a_proof_of_its_own_key_and_hash);

#[tokio::test]
async fn an_unbound_token_under_the_dpop_scheme_is_refused() {
    let app = crate::helpers::spawn_app().await;
    let (_, _, body) = app.logged_in_user(Some("openid")).await;
    let token = body["access_token"].as_str().expect("token");
    let key = ProofKey::es256();
    let proof = key.resource_proof("GET", &htu(&app, "/userinfo"), now(&app), token, None);

    let res = with_dpop(&app, reqwest::Method::GET, "/userinfo", token, Some(proof)).await;

    assert_eq!(res.status(), 401);
    assert!(challenge(&res).contains("invalid_token"));
}

async fn the_account_api_and_logout_take_bound_tokens(backend: Backend) {
    let app = app_or_skip!(backend);
    let key = ProofKey::ed25519();
    let token = bound_access(&app, &key).await;
    let sessions_url = htu(&app, "/v1/account/sessions");
    let proof = key.resource_proof("GET", &sessions_url, now(&app), &token, None);

    let listed = with_dpop(
        &app,
        reqwest::Method::GET,
        "/v1/account/sessions",
        &token,
        Some(proof),
    )
    .await;
    let as_bearer = app.get_bearer("/v1/account/sessions", &token).await;
    let logout_proof =
        key.resource_proof("POST", &htu(&app, "/v1/logout"), now(&app), &token, None);
    let logout = with_dpop(
        &app,
        reqwest::Method::POST,
        "/v1/logout",
        &token,
        Some(logout_proof),
    )
    .await;

    assert_eq!(listed.status(), 200);
    assert_eq!(as_bearer.status(), 401);
    assert_eq!(logout.status(), 204);
    // The session ended: the token no longer works, even with a proof.
    let after = key.resource_proof("GET", &sessions_url, now(&app), &token, None);
    let res = with_dpop(
        &app,
        reqwest::Method::GET,
        "/v1/account/sessions",
        &token,
        Some(after),
    )
    .await;
    assert_eq!(res.status(), 401);
}
both_backends!(the_account_api_and_logout_take_bound_tokens);

async fn introspection_shows_the_binding(backend: Backend) {
    let app = app_or_skip!(backend);
    let key = ProofKey::es256();
    let client = app.public_client().await;
    let email = new_user(&app).await;
    let body: Value = login_with(&app, &client, &email, Some(&key))
        .await
        .json()
        .await
        .expect("json");
    let rs = app.confidential_client().await;

    let access: Value = app
        .introspect(&rs, body["access_token"].as_str().expect("token"))
        .await
        .json()
        .await
        .expect("json");
    let refresh: Value = app
        .introspect(&rs, body["refresh_token"].as_str().expect("rt"))
        .await
        .json()
        .await
        .expect("json");

    assert_eq!(access["active"], true);
    assert_eq!(access["token_type"], "DPoP");
    assert_eq!(access["cnf"], json!({"jkt": key.jkt()}));
    assert_eq!(refresh["active"], true);
    assert_eq!(refresh["cnf"], json!({"jkt": key.jkt()}));
}
both_backends!(introspection_shows_the_binding);

async fn resources_ask_for_a_nonce_when_required(backend: Backend) {
    let Some(app) = spawn_on_with(backend, |s| s.dpop.require_nonce = true).await else {
        return;
    };
    let client = app.public_client().await;
    let email = new_user(&app).await;
    let key = ProofKey::es256();
    let refused = login_with(&app, &client, &email, Some(&key)).await;
    let nonce = refused
        .headers()
        .get("DPoP-Nonce")
        .and_then(|v| v.to_str().ok())
        .expect("nonce")
        .to_owned();
    let url = htu(&app, "/oauth/token");
    let mut c = ProofKey::claims("POST", &url, now(&app));
    c["nonce"] = nonce.clone().into();
    let form = [
        ("grant_type", "password"),
        ("username", email.as_str()),
        ("password", PASSWORD),
        ("client_id", client.id.as_str()),
        ("scope", "openid"),
    ];
    let body: Value = post_token_with(&app, &form, &[key.sign(&key.header(), &c)])
        .await
        .json()
        .await
        .expect("json");
    let token = body["access_token"].as_str().expect("token");
    let userinfo = htu(&app, "/userinfo");

    let without = key.resource_proof("GET", &userinfo, now(&app), token, None);
    let res = with_dpop(
        &app,
        reqwest::Method::GET,
        "/userinfo",
        token,
        Some(without),
    )
    .await;

    assert_eq!(res.status(), 401);
    assert!(challenge(&res).contains("use_dpop_nonce"));
    assert!(res.headers().contains_key("DPoP-Nonce"));
    let with = key.resource_proof("GET", &userinfo, now(&app), token, Some(&nonce));
    let res = with_dpop(&app, reqwest::Method::GET, "/userinfo", token, Some(with)).await;
    assert_eq!(res.status(), 200);
}
both_backends!(resources_ask_for_a_nonce_when_required);
