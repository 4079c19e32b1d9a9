//! Bad input gets a clear 4xx in the contract's JSON shape and changes
//! nothing.

use serde_json::Value;

use crate::helpers::spawn_app;

async fn assert_json_error(res: reqwest::Response, status: u16, error: &str) {
    assert_eq!(res.status(), status);
    assert!(res.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("application/json"));
    let body: Value = res.json().await.expect("json body");
    assert_eq!(body["error"], error);
    assert!(body["error_description"].is_string());
}

#[tokio::test]
async fn repeated_parameter_is_invalid_request() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=password&grant_type=password&username=a%40b.example&password=x")
        .send()
        .await
        .expect("request");
    assert_json_error(res, 400, "invalid_request").await;
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let app = spawn_app().await;
    let big = format!("grant_type=password&username={}", "a".repeat(17 * 1024));
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .expect("request");
    assert_json_error(res, 413, "invalid_request").await;
    let res = app
        .client
        .post(app.url("/v1/users"))
        .header("Content-Type", "application/json")
        .body(format!("{{\"email\":\"{}\"}}", "a".repeat(20_000)))
        .send()
        .await
        .expect("request");
    assert_json_error(res, 413, "invalid_request").await;
}

#[tokio::test]
async fn wrong_content_types_are_415() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .json(&serde_json::json!({"grant_type": "password"}))
        .send()
        .await
        .expect("request");
    assert_json_error(res, 415, "invalid_request").await;
    let res = app
        .client
        .post(app.url("/v1/users"))
        .form(&[("email", "a@b.example")])
        .send()
        .await
        .expect("request");
    assert_json_error(res, 415, "invalid_request").await;
}

#[tokio::test]
async fn malformed_json_and_invalid_utf8_are_400() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(app.url("/v1/users"))
        .header("Content-Type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .expect("request");
    assert_json_error(res, 400, "invalid_request").await;
    let res = app
        .client
        .post(app.url("/v1/users"))
        .header("Content-Type", "application/json")
        .body(vec![0xff, 0xfe, 0x7b])
        .send()
        .await
        .expect("request");
    assert_json_error(res, 400, "invalid_request").await;
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=password&username=%ff%fe")
        .send()
        .await
        .expect("request");
    assert_json_error(res, 400, "invalid_request").await;
}

#[tokio::test]
async fn missing_parameters_are_invalid_request() {
    let app = spawn_app().await;
    let client = app.public_client().await;
    let res = app
        .post_token(&[("grant_type", "password"), ("client_id", &client.id)])
        .await;
    assert_json_error(res, 400, "invalid_request").await;
    let res = app.post_token(&[("client_id", &client.id)]).await;
    assert_json_error(res, 400, "unsupported_grant_type").await;
}

#[tokio::test]
async fn absurdly_long_password_at_login_is_refused_without_hashing() {
    let app = spawn_app().await;
    let client = app.public_client().await;
    let long = "p".repeat(10_000);
    let res = app.login(&client, "a@example.com", &long, None).await;
    assert_json_error(res, 400, "invalid_grant").await;
}

#[tokio::test]
async fn unknown_routes_are_json_404() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(app.url("/nope"))
        .send()
        .await
        .expect("request");
    assert_json_error(res, 404, "not_found").await;
}
