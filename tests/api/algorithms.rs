//! The signing algorithms end to end: servers whose keys are ES256 or EdDSA,
//! their tokens checked by an independent verifier from the served JWKS, and
//! a move from RS256 to ES256 on the ordinary rotation schedule, during which
//! the JWKS holds keys of both algorithms and each verifies its own tokens.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{DecodingKey, Validation};
use latchkey::keys::admin::{self, KeySpec};
use latchkey::keys::manifest::Retention;
use latchkey::tokens::jwt::Algorithm;
use serde_json::Value;

use crate::helpers::{spawn_app, spawn_on_with, str_field, Backend, TestApp};

fn header(token: &str) -> Value {
    let part = token.split('.').next().expect("header");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("b64")).expect("json")
}

/// Verifies `token` with jsonwebtoken from the JWK the served JWKS publishes
/// for its kid, pinned to the algorithm that JWK names (not the header's).
pub(crate) async fn verify_from_jwks(app: &TestApp, token: &str, aud: &str) -> Value {
    let jwks: Value = app.get_jwks().await.json().await.expect("jwks");
    let kid = header(token)["kid"].as_str().expect("kid").to_owned();
    let jwk = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("kid published")
        .clone();
    let alg: jsonwebtoken::Algorithm = str_field(&jwk, "alg").parse().expect("alg");
    let jwk: Jwk = serde_json::from_value(jwk).expect("a JWK jsonwebtoken reads");
    let key = DecodingKey::from_jwk(&jwk).expect("decoding key");
    let mut v = Validation::new(alg);
    v.set_audience(&[aud]);
    v.set_issuer(&[app.settings.issuer()]);
    jsonwebtoken::decode::<Value>(token, &key, &v)
        .expect("verifies against the JWKS")
        .claims
}

fn retention(app: &TestApp) -> Retention {
    let s = &app.settings;
    Retention {
        token_ttl: s.access_token_ttl(),
        max_age: s.jwks_max_age(),
        leeway: s.leeway(),
    }
}

async fn server_with(alg: &'static str) -> TestApp {
    spawn_on_with(Backend::Sqlite, |s| s.keys.algorithm = alg.into())
        .await
        .expect("SQLite is always available")
}

#[tokio::test]
async fn es256_and_eddsa_keys_sign_every_token_and_verify_everywhere() {
    for (name, kty, crv) in [("ES256", "EC", "P-256"), ("EdDSA", "OKP", "Ed25519")] {
        let app = server_with(name).await;
        let jwks: Value = app.get_jwks().await.json().await.expect("jwks");
        let jwk = &jwks["keys"][0];
        assert_eq!(
            (
                jwk["kty"].as_str(),
                jwk["crv"].as_str(),
                jwk["alg"].as_str()
            ),
            (Some(kty), Some(crv), Some(name))
        );
        assert!(jwk.get("d").is_none() && jwk.get("n").is_none());

        let (client, _, login) = app.logged_in_user(Some("openid email")).await;
        let access = str_field(&login, "access_token");
        let id_token = str_field(&login, "id_token");
        for token in [access, id_token] {
            assert_eq!(header(token)["alg"], name);
            assert_eq!(header(token)["kid"], jwk["kid"]);
        }
        // Far below RS256's ~340 base64url characters of signature alone.
        assert!(access.len() < 700, "{name} access token: {}", access.len());
        let claims = verify_from_jwks(&app, access, "latchkey").await;
        assert_eq!(claims["client_id"], client.id.as_str());
        verify_from_jwks(&app, id_token, &client.id).await;
        assert_eq!(app.get_bearer("/userinfo", access).await.status(), 200);

        let res = app
            .refresh(&client, str_field(&login, "refresh_token"))
            .await;
        assert_eq!(res.status(), 200, "{name} refresh");
        let body: Value = res.json().await.expect("json");
        assert_eq!(header(str_field(&body, "access_token"))["alg"], name);
    }
}

#[tokio::test]
async fn discovery_names_the_configured_algorithm_and_rs256() {
    let app = server_with("ES256").await;
    let doc: Value = app
        .client
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["ES256", "RS256"])
    );
}

#[tokio::test]
async fn rotation_from_rs256_to_es256_keeps_the_schedule_and_both_keys_verify() {
    let app = spawn_app().await;
    let rs = app.confidential_client().await;
    let (client, _, login) = app.logged_in_user(None).await;
    let old_token = str_field(&login, "access_token").to_owned();
    let old_kid = header(&old_token)["kid"].as_str().expect("kid").to_owned();
    assert_eq!(header(&old_token)["alg"], "RS256");

    // Act: rotate to an ES256 key on the ordinary schedule.
    let max_age = app.settings.jwks_max_age();
    let rotated_at = app.services.now();
    let (new_kid, activates_at) = admin::rotate(
        &app.settings.keys().dir,
        KeySpec {
            algorithm: Algorithm::Es256,
            rsa_bits: 2048,
        },
        rotated_at,
        max_age * 2,
        retention(&app),
    )
    .expect("rotates");
    assert!(app.keys.reload().expect("reloads"));
    assert_eq!(activates_at, rotated_at + max_age * 2);

    // Published at once beside the RSA key, each JWK naming its algorithm.
    let jwks: Value = app.get_jwks().await.json().await.expect("jwks");
    let mut published: Vec<(String, String, String)> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| {
            (
                str_field(k, "kid").to_owned(),
                str_field(k, "kty").to_owned(),
                str_field(k, "alg").to_owned(),
            )
        })
        .collect();
    published.sort();
    let mut expected = vec![
        (old_kid.clone(), "RSA".to_owned(), "RS256".to_owned()),
        (new_kid.clone(), "EC".to_owned(), "ES256".to_owned()),
    ];
    expected.sort();
    assert_eq!(published, expected);

    // Until activation the RSA key still signs; a refresh then crosses it.
    let res = app
        .refresh(&client, str_field(&login, "refresh_token"))
        .await;
    let body: Value = res.json().await.expect("json");
    assert_eq!(header(str_field(&body, "access_token"))["alg"], "RS256");
    app.advance_clock(max_age * 2);
    let res = app
        .refresh(&client, str_field(&body, "refresh_token"))
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    let new_token = str_field(&body, "access_token").to_owned();
    assert_eq!(header(&new_token)["alg"], "ES256");
    assert_eq!(header(&new_token)["kid"], new_kid.as_str());

    // Both verify, each with its own key, independently and at latchkey.
    for token in [&old_token, &new_token] {
        verify_from_jwks(&app, token, "latchkey").await;
        let v: Value = app.introspect(&rs, token).await.json().await.expect("json");
        assert_eq!(v["active"], true);
    }

    // The RSA key leaves the JWKS once its tokens cannot be valid any more;
    // the ES256 key goes on signing.
    app.advance_clock(retention(&app).token_ttl + max_age + app.settings.leeway());
    let jwks: Value = app.get_jwks().await.json().await.expect("jwks");
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| str_field(k, "kid"))
        .collect();
    assert_eq!(kids, [new_kid.as_str()]);
    let v: Value = app
        .introspect(&rs, &old_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v["active"], false);
}
