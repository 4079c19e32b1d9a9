use aws_lc_rs::digest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

use crate::helpers::{spawn_app, str_field};

#[tokio::test]
async fn jwks_publishes_public_members_only_with_thumbprint_kids() {
    let app = spawn_app().await;
    let res = app.get_jwks().await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    let keys = body["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    let k = &keys[0];
    let mut members: Vec<&str> = k
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    members.sort_unstable();
    assert_eq!(members, ["alg", "e", "kid", "kty", "n", "use"]);
    assert_eq!(k["kty"], "RSA");
    assert_eq!(k["alg"], "RS256");
    assert_eq!(k["use"], "sig");
    // RFC 7638 thumbprint, computed here independently.
    let canonical = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        str_field(k, "e"),
        str_field(k, "n")
    );
    let thumb = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()));
    assert_eq!(k["kid"], thumb.as_str());
    // 2048-bit modulus.
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(str_field(k, "n"))
            .expect("b64")
            .len(),
        256
    );
}

#[tokio::test]
async fn jwks_is_cacheable_with_an_etag_and_answers_304() {
    let app = spawn_app().await;
    let res = app.get_jwks().await;
    let cache = res.headers()["cache-control"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(cache, "public, max-age=300");
    let etag = res.headers()["etag"].to_str().expect("ascii").to_owned();
    let res = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 304);
    assert_eq!(res.headers()["etag"].to_str().expect("ascii"), etag);
    let res = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .header("If-None-Match", "\"other\"")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_weak_etag_from_a_cdn_still_gets_its_304() {
    // RFC 9110 §13.1.2: If-None-Match compares weakly.
    let app = spawn_app().await;
    let etag = app.get_jwks().await.headers()["etag"]
        .to_str()
        .expect("ascii")
        .to_owned();
    for sent in [format!("W/{etag}"), format!("\"x\", W/{etag}")] {
        let res = app
            .client
            .get(app.url("/.well-known/jwks.json"))
            .header("If-None-Match", &sent)
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 304, "{sent}");
    }
}
