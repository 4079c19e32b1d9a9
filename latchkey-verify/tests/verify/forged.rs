//! The forged-token matrix of latchkey's own API suite
//! (`tests/api/forged.rs`), case for case, against the crate, plus the
//! checks only a JWKS verifier has (alg pinned per key, `crit`, typed
//! claims). Each case names the refusal it must get, and the untouched
//! token verifies, so every refusal is the forgery's doing.

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use latchkey_verify::test_util::{TestAlgorithm, TestIssuer, TestKey};
use latchkey_verify::Error;
use serde_json::{json, Value};

const AUD: &str = "orders";

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"))
}

#[tokio::test]
async fn forged_tokens_are_refused_with_the_right_reason() {
    let issuer = TestIssuer::start().await;
    let verifier = issuer.verifier(AUD).await;
    let key = issuer.signing_key();
    let kid = key.kid.clone();
    let header = TestIssuer::header(&key);
    let claims = issuer.claims(AUD);
    let good = key.sign_raw(&header, &claims);
    verifier.verify(&good).await.expect("the baseline verifies");

    let now = claims["iat"].as_i64().expect("iat");
    let with = |k: &str, v: Value| {
        let mut c = claims.clone();
        c[k] = v;
        c
    };
    let header_with = |k: &str, v: Value| {
        let mut h = header.clone();
        h[k] = v;
        h
    };
    let other = TestKey::generate(TestAlgorithm::Rs256);
    let hs_header = b64(&json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}));
    let hs_input = format!("{hs_header}.{}", b64(&claims));
    let hs_tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, key.public_pem().as_bytes()),
        hs_input.as_bytes(),
    );
    let parts: Vec<&str> = good.split('.').collect();

    let cases: Vec<(&str, String, Error)> = vec![
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&header_with("alg", json!("none"))),
                b64(&claims)
            ),
            Error::Algorithm,
        ),
        (
            "HS256 keyed with the public key",
            format!("{hs_input}.{}", URL_SAFE_NO_PAD.encode(hs_tag.as_ref())),
            Error::Algorithm,
        ),
        (
            "another key with the real kid",
            other.sign_raw(&header, &claims),
            Error::Signature,
        ),
        (
            "missing kid",
            key.sign_raw(&json!({"alg": "RS256", "typ": "at+jwt"}), &claims),
            Error::UnknownKey,
        ),
        (
            "tampered payload",
            format!(
                "{}.{}.{}",
                parts[0],
                b64(&with("scope", json!("admin"))),
                parts[2]
            ),
            Error::Signature,
        ),
        (
            "tampered header",
            format!(
                "{}.{}.{}",
                b64(&header_with("typ", json!("application/at+jwt"))),
                parts[1],
                parts[2]
            ),
            Error::Signature,
        ),
        (
            "wrong iss",
            key.sign_raw(&header, &with("iss", json!("https://evil.example"))),
            Error::Issuer,
        ),
        (
            "wrong aud",
            key.sign_raw(&header, &with("aud", json!("billing"))),
            Error::Audience,
        ),
        (
            "expired beyond leeway",
            key.sign_raw(&header, &with("exp", json!(now - 120))),
            Error::Expired,
        ),
        (
            "nbf in the future beyond leeway",
            key.sign_raw(&header, &with("nbf", json!(now + 120))),
            Error::NotYetValid,
        ),
        (
            "id_token as access token",
            key.sign_raw(&header_with("typ", json!("JWT")), &claims),
            Error::Type,
        ),
        (
            "header not JSON",
            format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode("not json"),
                parts[1],
                parts[2]
            ),
            Error::Malformed,
        ),
        (
            "huge",
            format!("{}.{}.{}", parts[0], "A".repeat(5000), parts[2]),
            Error::Malformed,
        ),
        // Beyond the server's matrix: what a JWKS verifier must add.
        (
            "no typ",
            key.sign_raw(&json!({"alg": "RS256", "kid": kid}), &claims),
            Error::Type,
        ),
        (
            "crit header",
            key.sign_raw(&header_with("crit", json!(["exp"])), &claims),
            Error::Malformed,
        ),
        (
            "RS512 named on an RS256 key",
            key.sign_raw(&header_with("alg", json!("RS512")), &claims),
            Error::Algorithm,
        ),
        (
            "kid the issuer never published",
            other.sign_raw(&header_with("kid", json!(other.kid)), &claims),
            Error::UnknownKey,
        ),
        (
            "iat in the future beyond leeway",
            key.sign_raw(&header, &with("iat", json!(now + 120))),
            Error::NotYetValid,
        ),
        (
            "sub is an email, not a UUID",
            key.sign_raw(&header, &with("sub", json!("ada@example.com"))),
            Error::Claims,
        ),
        (
            "no exp",
            key.sign_raw(&header, &{
                let mut c = claims.clone();
                c.as_object_mut().expect("object").remove("exp");
                c
            }),
            Error::Claims,
        ),
        (
            "aud array without ours",
            key.sign_raw(&header, &with("aud", json!(["billing", "latchkey"]))),
            Error::Audience,
        ),
        ("empty", String::new(), Error::Malformed),
        (
            "two segments",
            format!("{}.{}", parts[0], parts[1]),
            Error::Malformed,
        ),
    ];
    for (name, token, expected) in cases {
        assert_eq!(
            verifier.verify(&token).await.err(),
            Some(expected),
            "{name}"
        );
    }

    // Within the leeway, and an `aud` array that holds ours, still verify.
    verifier
        .verify(&key.sign_raw(&header, &with("exp", json!(now - 30))))
        .await
        .expect("expired within leeway");
    verifier
        .verify(&key.sign_raw(&header, &with("aud", json!(["billing", AUD]))))
        .await
        .expect("aud array containing ours");
    verifier
        .verify(&key.sign_raw(&header_with("typ", json!("application/at+jwt")), &claims))
        .await
        .expect("the media-type spelling of at+jwt");
}

#[tokio::test]
async fn scope_checks_are_exact() {
    let issuer = TestIssuer::start().await;
    let verifier = issuer.verifier(AUD).await;
    let token = issuer.token(AUD).scope("orders:read profile").sign();
    let claims = verifier.verify(&token).await.expect("valid");
    assert!(claims.has_scope("orders:read"));
    assert!(!claims.has_scope("orders:write"));
    assert!(!claims.has_scope("orders"));
    assert_eq!(
        claims.require_scope("orders:write"),
        Err(Error::InsufficientScope {
            required: "orders:write"
        })
    );
}
