//! One request id per request: a sane `X-Request-Id` is echoed, anything
//! else is replaced by a fresh one, and every response carries it.

use crate::helpers::spawn_app;

fn request_id(res: &reqwest::Response) -> String {
    res.headers()
        .get("x-request-id")
        .expect("every response carries X-Request-Id")
        .to_str()
        .expect("ascii")
        .to_owned()
}

#[tokio::test]
async fn a_sane_request_id_is_echoed() {
    let app = spawn_app().await;

    let res = app
        .client
        .get(app.url("/healthz"))
        .header("X-Request-Id", "lb-7f3a.42:9")
        .send()
        .await
        .expect("request");

    assert_eq!(res.status(), 200);
    assert_eq!(request_id(&res), "lb-7f3a.42:9");
}

#[tokio::test]
async fn without_a_request_id_each_request_gets_a_fresh_one() {
    let app = spawn_app().await;

    let a = app.get_jwks().await;
    let b = app.get_jwks().await;

    let (a, b) = (request_id(&a), request_id(&b));
    assert!(uuid::Uuid::parse_str(&a).is_ok(), "{a}");
    assert!(uuid::Uuid::parse_str(&b).is_ok(), "{b}");
    assert_ne!(a, b);
}

#[tokio::test]
async fn an_unsafe_request_id_is_replaced() {
    let app = spawn_app().await;
    for bad in [
        "two words",
        "<script>alert(1)</script>",
        &"x".repeat(129),
        "",
    ] {
        let res = app
            .client
            .get(app.url("/healthz"))
            .header("X-Request-Id", bad)
            .send()
            .await
            .expect("request");

        let id = request_id(&res);
        assert_ne!(id, bad);
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    }
}

#[tokio::test]
async fn error_responses_carry_the_request_id_too() {
    let app = spawn_app().await;

    let not_found = app
        .client
        .get(app.url("/nowhere"))
        .header("X-Request-Id", "req-404")
        .send()
        .await
        .expect("request");
    let bad_grant = app
        .client
        .post(app.url("/oauth/token"))
        .header("X-Request-Id", "req-400")
        .form(&[("grant_type", "magic")])
        .send()
        .await
        .expect("request");
    let too_large = app
        .client
        .post(app.url("/oauth/token"))
        .header("X-Request-Id", "req-413")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 64 * 1024])
        .send()
        .await
        .expect("request");

    assert_eq!(not_found.status(), 404);
    assert_eq!(request_id(&not_found), "req-404");
    assert!(bad_grant.status().is_client_error());
    assert_eq!(request_id(&bad_grant), "req-400");
    assert_eq!(too_large.status(), 413);
    assert_eq!(request_id(&too_large), "req-413");
}
