use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn both_metadata_documents_advertise_every_endpoint() {
    let app = spawn_app().await;
    let oidc: Value = app
        .client
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let rfc8414: Value = app
        .client
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(oidc, rfc8414);
    let iss = app.settings.issuer().to_owned();
    assert_eq!(oidc["issuer"], iss.as_str());
    for (field, path) in [
        ("token_endpoint", "/oauth/token"),
        ("jwks_uri", "/.well-known/jwks.json"),
        ("revocation_endpoint", "/oauth/revoke"),
        ("introspection_endpoint", "/oauth/introspect"),
        ("userinfo_endpoint", "/userinfo"),
        ("authorization_endpoint", "/authorize"),
        ("end_session_endpoint", "/logout"),
    ] {
        assert_eq!(oidc[field], format!("{iss}{path}").as_str(), "{field}");
    }
    assert_eq!(
        oidc["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    let grants = oidc["grant_types_supported"].as_array().expect("array");
    for g in [
        "authorization_code",
        "password",
        "refresh_token",
        "client_credentials",
    ] {
        assert!(grants.iter().any(|x| x == g), "{g}");
    }
    // OIDC Discovery requires response_types_supported; strict clients
    // refuse a document without "code".
    assert_eq!(
        oidc["response_types_supported"],
        serde_json::json!(["code"])
    );
    assert_eq!(
        oidc["response_modes_supported"],
        serde_json::json!(["query"])
    );
    assert_eq!(
        oidc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        oidc["authorization_response_iss_parameter_supported"],
        serde_json::json!(true)
    );
    assert_eq!(
        oidc["prompt_values_supported"],
        serde_json::json!(["none", "login", "consent"])
    );
    for f in [
        "subject_types_supported",
        "response_types_supported",
        "token_endpoint_auth_methods_supported",
        "scopes_supported",
    ] {
        assert!(oidc.get(f).is_some(), "{f}");
    }
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app().await;
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .expect("request")
            .status(),
        200
    );
    assert_eq!(
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .expect("request")
            .status(),
        200
    );
}

#[tokio::test]
async fn every_response_carries_security_headers() {
    let app = spawn_app().await;
    for path in ["/healthz", "/.well-known/jwks.json", "/nope"] {
        let res = app.client.get(app.url(path)).send().await.expect("request");
        assert_eq!(res.headers()["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(res.headers()["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(res.headers()["x-frame-options"], "DENY", "{path}");
        assert!(!res.headers().contains_key("strict-transport-security"));
    }
}

/// latchkey's own entries (no standard names them) lead to working
/// endpoints: a client finds account recovery without hard-coding paths.
#[tokio::test]
async fn discovery_leads_to_the_recovery_endpoints() {
    let app = spawn_app().await;
    let doc: Value = app
        .client
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let iss = app.settings.issuer().to_owned();
    for (field, path) in [
        ("signup_endpoint", "/v1/users"),
        ("account_sessions_endpoint", "/v1/account/sessions"),
        ("account_password_endpoint", "/v1/account/password"),
        ("logout_endpoint", "/v1/logout"),
        ("email_verification_endpoint", "/v1/account/email/verify"),
        ("password_reset_endpoint", "/v1/account/password/reset"),
        (
            "password_reset_confirm_endpoint",
            "/v1/account/password/reset/confirm",
        ),
    ] {
        assert_eq!(doc[field], format!("{iss}{path}").as_str(), "{field}");
    }
    // Each advertised URL, relative to the issuer, answers as documented.
    let local = |field: &str| {
        let url = doc[field].as_str().expect("a URL");
        app.url(url.strip_prefix(iss.as_str()).expect("under the issuer"))
    };
    let post = |field: &str, body: Value| app.client.post(local(field)).json(&body).send();
    let email = serde_json::json!({ "email": "someone@example.com" });
    assert_eq!(
        post("password_reset_endpoint", email.clone())
            .await
            .expect("request")
            .status(),
        202
    );
    assert_eq!(
        post("email_verification_endpoint", email)
            .await
            .expect("request")
            .status(),
        202
    );
    let res = post(
        "password_reset_confirm_endpoint",
        serde_json::json!({ "token": "x".repeat(43), "new_password": "a long new password" }),
    )
    .await
    .expect("request");
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "invalid_grant");
}
