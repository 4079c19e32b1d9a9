//! Bad input gets a clear 4xx in the contract's JSON shape and changes
//! nothing.

use serde_json::Value;

use crate::helpers::{raw_http, raw_json_body, spawn_app};

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
    // RFC 6749 §5.2: a missing grant_type is a missing parameter; only an
    // unknown one is unsupported.
    let res = app.post_token(&[("client_id", &client.id)]).await;
    assert_json_error(res, 400, "invalid_request").await;
    let res = app
        .post_token(&[("grant_type", "implicit"), ("client_id", &client.id)])
        .await;
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

#[tokio::test]
async fn token_endpoint_takes_16_kib_and_refuses_one_byte_more() {
    let app = spawn_app().await;
    let form = |len: usize| {
        let head = "grant_type=password&username=";
        format!("{head}{}", "a".repeat(len - head.len()))
    };
    for (len, status, error) in [
        (16 * 1024, 400, "invalid_request"),
        (16 * 1024 + 1, 413, "invalid_request"),
    ] {
        let res = app
            .client
            .post(app.url("/oauth/token"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form(len))
            .send()
            .await
            .expect("request");
        assert_json_error(res, status, error).await;
    }
}

#[tokio::test]
async fn oversized_chunked_body_without_length_is_413() {
    let app = spawn_app().await;
    let chunk = "a".repeat(4096);
    let mut request = String::from(
        "POST /oauth/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    for _ in 0..5 {
        request.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    request.push_str("0\r\n\r\n");
    let (status, text) = raw_http(&app, request.as_bytes()).await;
    assert_eq!(status, 413, "{text}");
    assert_eq!(raw_json_body(&text)["error"], "invalid_request");
}

#[tokio::test]
async fn wrong_methods_are_json_405_naming_the_allowed_ones() {
    let app = spawn_app().await;
    for (method, path, allow) in [
        (reqwest::Method::GET, "/oauth/token", "POST"),
        (reqwest::Method::PUT, "/oauth/revoke", "POST"),
        (reqwest::Method::DELETE, "/userinfo", "GET, POST"),
        (reqwest::Method::POST, "/healthz", "GET"),
        (reqwest::Method::POST, "/.well-known/jwks.json", "GET"),
        (reqwest::Method::GET, "/v1/users", "POST"),
        (reqwest::Method::PATCH, "/v1/account/sessions/x", "DELETE"),
    ] {
        let res = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .expect("request");
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
        // RFC 9110 §15.5.6: a 405 carries `Allow`.
        let allowed = res
            .headers()
            .get("allow")
            .unwrap_or_else(|| panic!("{method} {path}: no Allow header"))
            .to_str()
            .expect("ascii");
        let mut allowed: Vec<&str> = allowed.split(',').map(str::trim).collect();
        allowed.sort_unstable();
        assert_eq!(allowed.join(", "), allow, "{method} {path}");
        assert_json_error(res, 405, "invalid_request").await;
    }
}

#[tokio::test]
async fn odd_session_ids_in_the_path_are_json_errors() {
    let app = spawn_app().await;
    let (_, _, login) = app.logged_in_user(None).await;
    let token = login["access_token"].as_str().expect("token");
    let long = "a".repeat(3000);
    for sid in [
        "not-a-uuid",
        "%ff%fe",
        "%00",
        "..%2f..%2fhealthz",
        "00000000-0000-0000-0000-000000000000",
        long.as_str(),
    ] {
        let res = app
            .client
            .delete(app.url(&format!("/v1/account/sessions/{sid}")))
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        assert_json_error(res, 404, "not_found").await;
    }
    let res = app
        .client
        .delete(app.url("/v1/account/sessions/%ff"))
        .send()
        .await
        .expect("request");
    assert_json_error(res, 401, "invalid_token").await;
}

#[tokio::test]
async fn query_strings_are_ignored_whatever_they_hold() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(app.url("/.well-known/jwks.json?%ff=%fe&a=1&a=2&=&&"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    let res = app
        .client
        .post(app.url("/oauth/token?grant_type=client_credentials"))
        .form(&[("client_id", "x")])
        .send()
        .await
        .expect("request");
    // The query string is not the body: grant_type is missing.
    assert_json_error(res, 400, "invalid_request").await;
}

#[tokio::test]
async fn malformed_headers_get_json_errors() {
    let app = spawn_app().await;
    // Bytes that are not UTF-8 in Authorization and Content-Type.
    let mut request = b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
        Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 29\r\n\
        Authorization: Basic \xff\xfe\r\n\r\ngrant_type=client_credentials"
        .to_vec();
    let (status, text) = raw_http(&app, &request).await;
    assert_eq!(status, 401, "{text}");
    assert_eq!(raw_json_body(&text)["error"], "invalid_client");
    request = b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
        Content-Type: application/\xffx-www-form-urlencoded\r\nContent-Length: 0\r\n\r\n"
        .to_vec();
    let (status, text) = raw_http(&app, &request).await;
    assert_eq!(status, 415, "{text}");
    assert_eq!(raw_json_body(&text)["error"], "invalid_request");
    for auth in ["Basic", "Basic !!!", "Basic Og==", "Bearer", "Bearer   "] {
        let res = app
            .client
            .post(app.url("/oauth/token"))
            .header("Authorization", auth)
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("request");
        assert!(
            [400, 401].contains(&res.status().as_u16()),
            "{auth}: {}",
            res.status()
        );
        let body: Value = res.json().await.expect("json");
        assert!(body["error"].is_string());
    }
    let res = app
        .client
        .get(app.url("/userinfo"))
        .header("Authorization", "Bearer a.b.c.d.e")
        .send()
        .await
        .expect("request");
    assert_json_error(res, 401, "invalid_token").await;
}

#[tokio::test]
async fn requests_the_http_parser_refuses_get_a_4xx_and_the_server_lives_on() {
    let app = spawn_app().await;
    // These never reach the application: actix-http's parser answers them
    // with a bare status (no body at all, so nothing in another shape).
    for request in [
        &b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"[..],
        &b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"[..],
        &b"GARBAGE\r\n\r\n"[..],
    ] {
        let (status, text) = raw_http(&app, request).await;
        assert!((400..500).contains(&status), "{text}");
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        assert!(body.is_empty(), "{text}");
    }
    let res = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn emails_and_passwords_beyond_their_bounds_are_refused() {
    let app = spawn_app().await;
    let client = app.public_client().await;
    let email_255 = format!("{}@example.com", "a".repeat(255 - "@example.com".len()));
    let email_254 = format!("{}@example.com", "a".repeat(254 - "@example.com".len()));
    assert_eq!(email_255.len(), 255);
    assert_json_error(
        app.signup(&email_255, "correct horse battery").await,
        400,
        "invalid_email",
    )
    .await;
    let password_257 = "é".repeat(128) + "x";
    assert_eq!(password_257.len(), 257);
    assert_json_error(
        app.signup("bounds@example.com", &password_257).await,
        400,
        "weak_password",
    )
    .await;
    let password_256 = "é".repeat(128);
    // The local part of email_254 is over 64 bytes: still refused.
    assert_json_error(
        app.signup(&email_254, &password_256).await,
        400,
        "invalid_email",
    )
    .await;
    assert_eq!(
        app.signup("bounds@example.com", &password_256)
            .await
            .status(),
        201
    );
    assert_json_error(
        app.login(&client, &email_255, "correct horse battery", None)
            .await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        app.login(&client, "bounds@example.com", &password_256, None)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn json_of_the_wrong_shape_is_400() {
    let app = spawn_app().await;
    for body in [
        r#"{"email": 1, "password": "correct horse battery"}"#,
        r#"{"email": "a@example.com"}"#,
        r#"{"email": "a@example.com", "password": "correct horse battery", "admin": true}"#,
        r#"[]"#,
        r#"null"#,
        &format!("{}{}", "[".repeat(5_000), "]".repeat(5_000)),
    ] {
        let res = app
            .client
            .post(app.url("/v1/users"))
            .header("Content-Type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("request");
        assert_json_error(res, 400, "invalid_request").await;
    }
}
