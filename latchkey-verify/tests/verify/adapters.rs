//! Both adapters on the wire: status, `WWW-Authenticate` and JSON body for
//! no token, a bad token, a missing scope, two Authorization headers and a
//! good token; and the axum layer.

use actix_web::{test as actix_test, web, App, HttpResponse};
use axum::body::Body;
use axum::http::Request;
use latchkey_verify::test_util::TestIssuer;
use latchkey_verify::Verifier;
use serde_json::Value;
use tower::ServiceExt;

latchkey_verify::scope!(OrdersRead = "orders:read");

const AUD: &str = "orders";

/// What every case must answer: status, challenge and `error` in the body.
struct Case {
    name: &'static str,
    authorization: Vec<String>,
    status: u16,
    challenge: Option<&'static str>,
    error: Option<&'static str>,
}

fn cases(issuer: &TestIssuer) -> Vec<Case> {
    let good = issuer.token(AUD).scope("orders:read").sign();
    let unscoped = issuer.token(AUD).scope("profile").sign();
    let other_aud = issuer.token("billing").scope("orders:read").sign();
    vec![
        Case {
            name: "no token",
            authorization: vec![],
            status: 401,
            challenge: Some("Bearer"),
            error: Some("invalid_token"),
        },
        Case {
            name: "bad token",
            authorization: vec!["Bearer not.a.token".into()],
            status: 401,
            challenge: Some("Bearer error=\"invalid_token\""),
            error: Some("invalid_token"),
        },
        Case {
            name: "another audience",
            authorization: vec![format!("Bearer {other_aud}")],
            status: 401,
            challenge: Some("Bearer error=\"invalid_token\""),
            error: Some("invalid_token"),
        },
        Case {
            name: "missing scope",
            authorization: vec![format!("Bearer {unscoped}")],
            status: 403,
            challenge: Some("Bearer error=\"insufficient_scope\""),
            error: Some("insufficient_scope"),
        },
        Case {
            name: "two authorization headers",
            authorization: vec![format!("Bearer {good}"), format!("Bearer {good}")],
            status: 400,
            challenge: Some("Bearer error=\"invalid_request\""),
            error: Some("invalid_request"),
        },
        Case {
            name: "basic instead of bearer",
            authorization: vec!["Basic YTpi".into()],
            status: 400,
            challenge: Some("Bearer error=\"invalid_request\""),
            error: Some("invalid_request"),
        },
        Case {
            name: "good token",
            authorization: vec![format!("bearer {good}")],
            status: 200,
            challenge: None,
            error: None,
        },
    ]
}

fn check(case: &Case, status: u16, challenge: Option<&str>, body: &Value) {
    assert_eq!(status, case.status, "{}", case.name);
    match case.challenge {
        Some("Bearer") => assert_eq!(challenge, Some("Bearer"), "{}", case.name),
        Some(prefix) => assert!(
            challenge.is_some_and(|c| c.starts_with(prefix)),
            "{}: {challenge:?}",
            case.name
        ),
        None => assert_eq!(challenge, None, "{}", case.name),
    }
    match case.error {
        Some(error) => {
            assert_eq!(body["error"], error, "{}", case.name);
            assert!(body["error_description"].is_string(), "{}", case.name);
        }
        None => assert!(body["sub"].is_string(), "{}: {body}", case.name),
    }
}

async fn actix_orders(auth: latchkey_verify::actix::RequireScope<OrdersRead>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "sub": auth.claims().sub }))
}

#[actix_web::test]
async fn actix_extractor_answers_rfc6750() {
    let issuer = TestIssuer::start().await;
    let verifier = issuer.verifier(AUD).await;
    let app = actix_test::init_service(
        App::new()
            .app_data(web::Data::new(verifier))
            .route("/orders", web::get().to(actix_orders)),
    )
    .await;
    for case in cases(&issuer) {
        let mut req = actix_test::TestRequest::get().uri("/orders");
        for value in &case.authorization {
            req = req.append_header(("authorization", value.as_str()));
        }
        let res = actix_test::call_service(&app, req.to_request()).await;
        let status = res.status().as_u16();
        let challenge = res
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body: Value = actix_test::read_body_json(res).await;
        check(&case, status, challenge.as_deref(), &body);
    }
}

#[actix_web::test]
async fn actix_without_a_verifier_fails_closed() {
    let issuer = TestIssuer::start().await;
    let app =
        actix_test::init_service(App::new().route("/orders", web::get().to(actix_orders))).await;
    let good = issuer.token(AUD).scope("orders:read").sign();
    let req = actix_test::TestRequest::get()
        .uri("/orders")
        .append_header(("authorization", format!("Bearer {good}")))
        .to_request();
    let res = actix_test::call_service(&app, req).await;
    assert_eq!(res.status().as_u16(), 500);
}

async fn axum_orders(auth: latchkey_verify::axum::RequireScope<OrdersRead>) -> axum::Json<Value> {
    axum::Json(serde_json::json!({ "sub": auth.claims().sub }))
}

async fn axum_call(app: axum::Router, case: &Case) -> (u16, Option<String>, Value) {
    let mut req = Request::get("/orders");
    for value in &case.authorization {
        req = req.header("authorization", value.as_str());
    }
    let res = app
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = res.status().as_u16();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 16)
        .await
        .expect("body");
    (
        status,
        challenge,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn axum_extractor_answers_rfc6750() {
    let issuer = TestIssuer::start().await;
    let verifier = issuer.verifier(AUD).await;
    let app = axum::Router::new()
        .route("/orders", axum::routing::get(axum_orders))
        .with_state::<()>(verifier);
    for case in cases(&issuer) {
        let (status, challenge, body) = axum_call(app.clone(), &case).await;
        check(&case, status, challenge.as_deref(), &body);
    }
}

#[tokio::test]
async fn axum_layer_refuses_before_the_handler_and_hands_over_the_claims() {
    let issuer = TestIssuer::start().await;
    let verifier: Verifier = issuer.verifier(AUD).await;
    // The handler's own extractor must use the layer's claims: the state's
    // verifier trusts another issuer, so verifying again would refuse.
    let elsewhere = TestIssuer::start().await;
    let app = axum::Router::new()
        .route("/orders", axum::routing::get(axum_orders))
        .layer(latchkey_verify::axum::VerifyLayer::new(verifier).require_scope("orders:read"))
        .with_state::<()>(elsewhere.verifier(AUD).await);
    for case in cases(&issuer) {
        let (status, challenge, body) = axum_call(app.clone(), &case).await;
        check(&case, status, challenge.as_deref(), &body);
    }
}
