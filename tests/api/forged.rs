//! Table-driven forged and malformed tokens against every endpoint that
//! verifies one: introspection, userinfo and the account API. Every case is
//! refused; none causes a 5xx.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::hmac;
use aws_lc_rs::signature::{KeyPair as _, RsaKeyPair};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use latchkey::tokens::jwt;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, str_field};

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"))
}

fn payload(token: &str) -> Value {
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).expect("payload"))
            .expect("b64"),
    )
    .expect("json")
}

#[tokio::test]
async fn forged_tokens_are_refused_everywhere() {
    let app = spawn_app().await;
    let (_, _, login) = app.logged_in_user(Some("openid email")).await;
    let rs = app.confidential_client().await;
    let good = str_field(&login, "access_token").to_owned();
    let claims = payload(&good);
    let key = app
        .services
        .keys
        .signing_key(app.services.now())
        .expect("key");
    let kid = key.entry.kid.clone();
    let sign_real =
        |kid: &str, typ: &str, c: &Value| jwt::sign(&key.pair, kid, typ, c).expect("signs");
    let now = app.services.now().timestamp();
    let with = |k: &str, v: Value| {
        let mut c = claims.clone();
        c[k] = v;
        c
    };

    let other_pair = RsaKeyPair::from_pkcs8(
        &pem::parse(latchkey::keys::files::generate_pem(2048).expect("pem"))
            .expect("pem")
            .into_contents(),
    )
    .expect("key");
    let public_pem = pem::encode(&pem::Pem::new(
        "PUBLIC KEY",
        key.pair
            .public_key()
            .as_der()
            .expect("der")
            .as_ref()
            .to_vec(),
    ));
    let hs_header = b64(&json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}));
    let hs_signing_input = format!("{hs_header}.{}", b64(&claims));
    let hs_tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, public_pem.as_bytes()),
        hs_signing_input.as_bytes(),
    );
    let parts: Vec<&str> = good.split('.').collect();

    let cases: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "at+jwt", "kid": kid})),
                b64(&claims)
            ),
        ),
        (
            "HS256 keyed with the public key",
            format!(
                "{hs_signing_input}.{}",
                URL_SAFE_NO_PAD.encode(hs_tag.as_ref())
            ),
        ),
        (
            "another key with the real kid",
            jwt::sign(&other_pair, &kid, "at+jwt", &claims).expect("signs"),
        ),
        ("unknown kid", sign_real("no-such-kid", "at+jwt", &claims)),
        (
            "missing kid",
            format!(
                "{}.{}.{}",
                b64(&json!({"alg": "RS256", "typ": "at+jwt"})),
                parts[1],
                parts[2]
            ),
        ),
        (
            "tampered payload",
            format!(
                "{}.{}.{}",
                parts[0],
                b64(&with("scope", json!("admin"))),
                parts[2]
            ),
        ),
        (
            "tampered header",
            format!(
                "{}.{}.{}",
                b64(&json!({"alg": "RS256", "typ": "at+jwt", "kid": kid, "x": 1})),
                parts[1],
                parts[2]
            ),
        ),
        (
            "wrong iss",
            sign_real(&kid, "at+jwt", &with("iss", json!("https://evil.example"))),
        ),
        (
            "wrong aud",
            sign_real(&kid, "at+jwt", &with("aud", json!("someone-else"))),
        ),
        (
            "expired beyond leeway",
            sign_real(&kid, "at+jwt", &with("exp", json!(now - 61))),
        ),
        (
            "nbf in the future beyond leeway",
            sign_real(&kid, "at+jwt", &with("nbf", json!(now + 120))),
        ),
        (
            "id_token as access token",
            str_field(&login, "id_token").to_owned(),
        ),
        ("truncated", good[..good.len() - 10].to_owned()),
        ("extra segments", format!("{good}.extra")),
        ("non-base64", format!("{}.!!!.{}", parts[0], parts[2])),
        (
            "header not JSON",
            format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode("not json"),
                parts[1],
                parts[2]
            ),
        ),
        (
            "huge",
            format!("{}.{}.{}", parts[0], "A".repeat(8_000), parts[2]),
        ),
    ];

    // The baseline verifies, so every refusal below is the forgery's doing.
    assert_eq!(app.get_bearer("/userinfo", &good).await.status(), 200);
    let ok: Value = app.introspect(&rs, &good).await.json().await.expect("json");
    assert_eq!(ok["active"], true);

    for (name, token) in &cases {
        let res = app.introspect(&rs, token).await;
        assert_eq!(res.status(), 200, "introspection of {name}");
        assert_eq!(
            res.json::<Value>().await.expect("json"),
            json!({"active": false}),
            "introspection of {name}"
        );

        let res = app
            .client
            .get(app.url("/userinfo"))
            .header("Authorization", format!("Bearer {token}"))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 401, "userinfo with {name}");
        let www = res
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap_or("").to_owned())
            .unwrap_or_default();
        assert!(www.starts_with("Bearer"), "userinfo with {name}: {www}");

        let res = app
            .client
            .get(app.url("/v1/account/sessions"))
            .header("Authorization", format!("Bearer {token}"))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 401, "account API with {name}");
    }
}

#[tokio::test]
async fn expired_token_within_leeway_still_verifies_and_beyond_does_not() {
    let app = spawn_app().await;
    let (_, _, login) = app.logged_in_user(None).await;
    let at = str_field(&login, "access_token");
    app.advance_clock(chrono::Duration::seconds(900 + 59));
    assert_eq!(app.get_bearer("/userinfo", at).await.status(), 200);
    app.advance_clock(chrono::Duration::seconds(2));
    let res = app.get_bearer("/userinfo", at).await;
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"]
        .to_str()
        .expect("ascii")
        .contains("invalid_token"));
}
