use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::helpers::{spawn_app, str_field, TestApp};

fn decode_part(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).expect("segment");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("json")
}

/// Verifies `token` with a key built only from the served JWKS's `n` and `e`,
/// algorithm pinned to RS256: independent of latchkey's own verifier.
pub async fn verify_with_jwks(app: &TestApp, token: &str, aud: &str) -> Value {
    let jwks: Value = app.get_jwks().await.json().await.expect("jwks json");
    let kid = decode_part(token, 0)["kid"]
        .as_str()
        .expect("kid")
        .to_owned();
    let jwk = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("kid published");
    let key = DecodingKey::from_rsa_components(str_field(jwk, "n"), str_field(jwk, "e"))
        .expect("rsa key");
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[aud]);
    v.set_issuer(&[app.settings.issuer()]);
    v.leeway = 0;
    jsonwebtoken::decode::<Value>(token, &key, &v)
        .expect("token verifies against the JWKS")
        .claims
}

#[tokio::test]
async fn password_grant_issues_verifiable_rs256_access_token() {
    let app = spawn_app().await;
    let (client, email, body) = app.logged_in_user(None).await;

    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert!(str_field(&body, "refresh_token").starts_with("lk_rt_"));
    assert_eq!(body["scope"], "openid email profile");
    let token = str_field(&body, "access_token");

    let header = decode_part(token, 0);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "at+jwt");

    let claims = verify_with_jwks(&app, token, "latchkey").await;
    let mut names: Vec<&str> = claims
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "aud",
            "client_id",
            "exp",
            "iat",
            "iss",
            "jti",
            "scope",
            "sid",
            "sub"
        ]
    );
    assert!(uuid::Uuid::parse_str(str_field(&claims, "sub")).is_ok());
    assert!(uuid::Uuid::parse_str(str_field(&claims, "jti")).is_ok());
    assert_eq!(claims["client_id"], client.id.as_str());
    assert!(!token.contains(&URL_SAFE_NO_PAD.encode(&email)));
    assert!(!claims.to_string().contains(&email));
    let exp = claims["exp"].as_i64().expect("exp");
    let iat = claims["iat"].as_i64().expect("iat");
    assert_eq!(exp - iat, body["expires_in"].as_i64().expect("expires_in"));
}

#[tokio::test]
async fn token_response_is_not_cacheable_and_dated() {
    let app = spawn_app().await;
    let client = app.public_client().await;
    app.signup("erin@example.com", "correct horse battery")
        .await;
    let res = app
        .login(&client, "erin@example.com", "correct horse battery", None)
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.headers()["pragma"], "no-cache");
    assert!(res.headers().contains_key("date"));
}

#[tokio::test]
async fn access_token_stays_under_one_kibibyte() {
    let app = spawn_app().await;
    let client = app
        .create_client(
            latchkey::domain::types::ClientKind::Public,
            &[
                latchkey::domain::types::GrantType::Password,
                latchkey::domain::types::GrantType::RefreshToken,
            ],
            "openid email",
            Some("https://api.example.com/orders"),
        )
        .await;
    app.signup("size@example.com", "correct horse battery")
        .await;
    let res = app
        .login(
            &client,
            "size@example.com",
            "correct horse battery",
            Some("openid email"),
        )
        .await;
    let body: Value = res.json().await.expect("json");
    let token = str_field(&body, "access_token");
    println!("typical access token: {} bytes", token.len());
    assert!(token.len() <= 1024, "access token is {} bytes", token.len());
}

#[tokio::test]
async fn wrong_password_and_unknown_user_are_indistinguishable() {
    let app = spawn_app().await;
    let client = app.public_client().await;
    app.signup("frank@example.com", "correct horse battery")
        .await;

    let wrong = app
        .login(&client, "frank@example.com", "wrong password!", None)
        .await;
    let unknown = app
        .login(&client, "nobody@example.com", "wrong password!", None)
        .await;
    assert_eq!(wrong.status(), 400);
    assert_eq!(unknown.status(), 400);
    let a: Value = wrong.json().await.expect("json");
    let b: Value = unknown.json().await.expect("json");
    assert_eq!(a, b);
    assert_eq!(a["error"], "invalid_grant");
}

#[tokio::test]
async fn disabled_user_is_refused_and_enabled_user_can_log_in_again() {
    let app = spawn_app().await;
    let client = app.public_client().await;
    let res = app
        .signup("grace@example.com", "correct horse battery")
        .await;
    let id = latchkey::domain::types::UserId::parse(str_field(
        &res.json::<Value>().await.expect("json"),
        "id",
    ))
    .expect("uuid");

    app.services
        .set_user_disabled(id, true, "test")
        .await
        .expect("disabled");
    let res = app
        .login(&client, "grace@example.com", "correct horse battery", None)
        .await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "invalid_grant");

    app.services
        .set_user_disabled(id, false, "test")
        .await
        .expect("enabled");
    let res = app
        .login(&client, "grace@example.com", "correct horse battery", None)
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn openid_scope_adds_an_id_token_with_email_claims() {
    let app = spawn_app().await;
    let (client, email, body) = app.logged_in_user(Some("openid email")).await;
    let id_token = str_field(&body, "id_token");
    assert_eq!(decode_part(id_token, 0)["typ"], "JWT");
    let claims = verify_with_jwks(&app, id_token, &client.id).await;
    assert_eq!(claims["email"], email.as_str());
    assert_eq!(claims["email_verified"], false);
    for c in ["iss", "sub", "aud", "exp", "iat", "auth_time", "sid"] {
        assert!(claims.get(c).is_some(), "{c} missing");
    }
    let access = verify_with_jwks(&app, str_field(&body, "access_token"), "latchkey").await;
    assert_eq!(claims["sid"], access["sid"]);
    assert_eq!(claims["sub"], access["sub"]);
}

#[tokio::test]
async fn without_openid_there_is_no_id_token() {
    let app = spawn_app().await;
    let (_, _, body) = app.logged_in_user(Some("email")).await;
    assert!(body.get("id_token").is_none());
}

#[tokio::test]
async fn scope_outside_the_clients_is_invalid_scope() {
    let app = spawn_app().await;
    let client = app.public_client().await;
    app.signup("heidi@example.com", "correct horse battery")
        .await;
    let res = app
        .login(
            &client,
            "heidi@example.com",
            "correct horse battery",
            Some("openid admin"),
        )
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.expect("json")["error"],
        "invalid_scope"
    );
}

#[tokio::test]
async fn unknown_client_is_401_invalid_client_with_www_authenticate() {
    let app = spawn_app().await;
    let res = app
        .post_token(&[
            ("grant_type", "password"),
            ("username", "a@example.com"),
            ("password", "whatever1"),
            ("client_id", &uuid::Uuid::new_v4().to_string()),
        ])
        .await;
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"]
        .to_str()
        .expect("ascii")
        .starts_with("Basic"));
    assert_eq!(
        res.json::<Value>().await.expect("json")["error"],
        "invalid_client"
    );
}

#[tokio::test]
async fn unknown_grant_type_is_unsupported_grant_type() {
    let app = spawn_app().await;
    let client = app.public_client().await;
    let res = app
        .post_token(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", &client.id),
        ])
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.expect("json")["error"],
        "unsupported_grant_type"
    );
}
