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
    let iss = app.services.settings.issuer.clone();
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
