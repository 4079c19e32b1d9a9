//! Table-driven forged and malformed tokens against every endpoint that
//! verifies one: introspection, userinfo and the account API. Every case is
//! refused; none causes a 5xx.

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use latchkey::keys::admin::{self, KeySpec};
use latchkey::keys::manifest::Retention;
use latchkey::tokens::jwt::{self, Algorithm, KeyPair};
use serde_json::{json, Value};

use crate::helpers::claims as payload;
use crate::helpers::{spawn_app, str_field};

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"))
}

/// A compact JWS with any header `alg`, signed by `pair`: what a forger who
/// holds some key, or none, can put together.
fn forge(alg: &str, kid: &str, claims: &Value, pair: &KeyPair) -> String {
    let input = format!(
        "{}.{}",
        b64(&json!({"alg": alg, "typ": "at+jwt", "kid": kid})),
        b64(claims)
    );
    let sig = pair.sign(input.as_bytes()).expect("signs");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// Publishes a key of `alg` beside the active RS256 key (it does not sign
/// yet, but verifies: a `next` key is published) and returns it.
fn publish_key(
    app: &crate::helpers::TestApp,
    alg: Algorithm,
) -> std::sync::Arc<latchkey::keys::LoadedKey> {
    let s = &app.settings;
    let (kid, _) = admin::rotate(
        &s.keys().dir,
        KeySpec {
            algorithm: alg,
            rsa_bits: 2048,
        },
        app.services.now(),
        s.jwks_max_age() * 2,
        Retention {
            token_ttl: s.access_token_ttl(),
            max_age: s.jwks_max_age(),
            leeway: s.leeway(),
        },
    )
    .expect("rotates");
    app.keys.reload().expect("reloads");
    app.keys
        .verification_key(&kid, alg, app.services.now())
        .expect("published")
}

#[tokio::test]
async fn forged_tokens_are_refused_everywhere() {
    let app = spawn_app().await;
    // A JWKS mid-migration: RS256 signs, an ES256 and an EdDSA key are
    // published, so every cross-algorithm forgery below names a real key.
    let ec = publish_key(&app, Algorithm::Es256);
    let ed = publish_key(&app, Algorithm::EdDsa);
    let (_, _, login) = app.logged_in_user(Some("openid email")).await;
    let rs = app.confidential_client().await;
    let good = str_field(&login, "access_token").to_owned();
    let claims = payload(&good);
    let key = app.keys.signing_key(app.services.now()).expect("key");
    let kid = key.entry.kid.clone();
    let sign_real =
        |kid: &str, typ: &str, c: &Value| jwt::sign(&key.pair, kid, typ, c).expect("signs");
    let now = app.services.now().timestamp();
    let with = |k: &str, v: Value| {
        let mut c = claims.clone();
        c[k] = v;
        c
    };

    let other_pair = KeyPair::from_pkcs8(
        &pem::parse(latchkey::keys::files::generate_pem(Algorithm::Rs256, 2048).expect("pem"))
            .expect("pem")
            .into_contents(),
    )
    .expect("key");
    let public_pem = match &key.pair {
        KeyPair::Rsa(pair) => {
            use aws_lc_rs::encoding::AsDer;
            use aws_lc_rs::signature::KeyPair as _;
            let der = pair.public_key().as_der().expect("der");
            pem::encode(&pem::Pem::new("PUBLIC KEY", der.as_ref().to_vec()))
        }
        other => panic!("the active key is RSA: {other:?}"),
    };
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
        // Each key verifies under its own algorithm only: a header naming
        // another algorithm than the key's is refused, whoever signed it.
        (
            "ES256 label on the RS256 kid, signed by the published ES256 key",
            forge("ES256", &kid, &claims, &ec.pair),
        ),
        (
            "ES256 label on the RS256 kid, signed by the RS256 key",
            forge("ES256", &kid, &claims, &key.pair),
        ),
        (
            "RS256 label on the ES256 kid, signed by the RS256 key",
            forge("RS256", &ec.entry.kid, &claims, &key.pair),
        ),
        (
            "RS256 label on the ES256 kid, signed by the ES256 key",
            forge("RS256", &ec.entry.kid, &claims, &ec.pair),
        ),
        (
            "EdDSA label on the ES256 kid, signed by the EdDSA key",
            forge("EdDSA", &ec.entry.kid, &claims, &ed.pair),
        ),
        (
            "ES256 label on the EdDSA kid, signed by the ES256 key",
            forge("ES256", &ed.entry.kid, &claims, &ec.pair),
        ),
        (
            "EdDSA label on the RS256 kid, signed by the EdDSA key",
            forge("EdDSA", &kid, &claims, &ed.pair),
        ),
        (
            "ES256 signed by an unpublished key under the ES256 kid",
            forge(
                "ES256",
                &ec.entry.kid,
                &claims,
                &KeyPair::from_pkcs8(
                    &KeyPair::generate_pkcs8(Algorithm::Es256, 0).expect("generates"),
                )
                .expect("parses"),
            ),
        ),
    ];

    // The baselines verify, so every refusal below is the forgery's doing:
    // the real RS256 token, and the same claims signed properly by the
    // published ES256 and EdDSA keys.
    for (name, token) in [
        ("RS256", good.clone()),
        ("ES256", forge("ES256", &ec.entry.kid, &claims, &ec.pair)),
        ("EdDSA", forge("EdDSA", &ed.entry.kid, &claims, &ed.pair)),
    ] {
        assert_eq!(
            app.get_bearer("/userinfo", &token).await.status(),
            200,
            "{name}"
        );
        let ok: Value = app
            .introspect(&rs, &token)
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(ok["active"], true, "{name}");
    }

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
