//! `GET /metrics`: Prometheus text whose values move as requests are made.
//! Each server has its own registry, so these tests assert exact values.

use chrono::Duration;
use serde_json::Value;

use crate::helpers::{spawn_app, spawn_on_with, str_field, Backend, TestApp};

async fn scrape_at(app: &TestApp, base: &str) -> String {
    let res = app
        .client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    let content_type = res.headers()["content-type"].to_str().expect("ascii");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    res.text().await.expect("text")
}

async fn scrape(app: &TestApp) -> String {
    scrape_at(app, &app.address).await
}

/// The value of one series (`name{labels}` exactly as rendered), 0 when absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            line.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

fn requests(method: &str, route: &str, status: u16) -> String {
    format!(
        r#"latchkey_http_requests_total{{method="{method}",route="{route}",status="{status}"}}"#
    )
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern_grants_and_refresh_outcomes() {
    let app = spawn_app().await;
    let (client, email, login) = app.logged_in_user(None).await;
    let first = str_field(&login, "refresh_token");
    let res = app.login(&client, &email, "wrong password!", None).await;
    assert_eq!(res.status(), 400);
    let res = app.refresh(&client, first).await;
    assert_eq!(res.status(), 200);
    let rotated: Value = res.json().await.expect("json");
    // The same token again within the grace period: a replay.
    assert_eq!(app.refresh(&client, first).await.status(), 200);
    let sid = uuid::Uuid::new_v4();
    let res = app
        .client
        .delete(app.url(&format!("/v1/account/sessions/{sid}")))
        .bearer_auth(str_field(&rotated, "access_token"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 404);
    let res = app
        .client
        .get(app.url("/no/such/path?token=lk_rt_secret"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 404);

    let text = scrape(&app).await;

    assert_eq!(value(&text, &requests("POST", "/v1/users", 201)), 1.0);
    assert_eq!(value(&text, &requests("POST", "/oauth/token", 200)), 3.0);
    assert_eq!(value(&text, &requests("POST", "/oauth/token", 400)), 1.0);
    assert_eq!(
        value(
            &text,
            &requests("DELETE", "/v1/account/sessions/{sid}", 404)
        ),
        1.0
    );
    assert_eq!(value(&text, &requests("GET", "unmatched", 404)), 1.0);
    assert_eq!(
        value(
            &text,
            r#"latchkey_http_request_duration_seconds_count{method="POST",route="/oauth/token",status="200"}"#
        ),
        3.0
    );
    assert!(
        !text.contains(&sid.to_string()) && !text.contains("/no/such") && !text.contains("lk_rt_"),
        "raw paths never become labels"
    );
    assert_eq!(
        value(&text, r#"latchkey_tokens_issued_total{grant="password"}"#),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"latchkey_tokens_issued_total{grant="refresh_token"}"#
        ),
        2.0
    );
    assert_eq!(
        value(&text, r#"latchkey_refresh_total{outcome="rotated"}"#),
        1.0
    );
    assert_eq!(
        value(&text, r#"latchkey_refresh_total{outcome="grace_replay"}"#),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"latchkey_login_failures_total{reason="bad_credentials"}"#
        ),
        1.0
    );
    assert!(
        value(
            &text,
            r#"latchkey_store_operation_duration_seconds_count{operation="rotate_session"}"#
        ) >= 2.0
    );
}

#[tokio::test]
async fn metrics_tell_refresh_failures_and_throttling_apart() {
    let app = spawn_on_with(Backend::Sqlite, |s| s.tokens.refresh_grace_secs = 0)
        .await
        .expect("sqlite");
    let (client, email, login) = app.logged_in_user(None).await;
    let first = str_field(&login, "refresh_token");
    let res = app.refresh(&client, first).await;
    assert_eq!(res.status(), 200);
    let newest: Value = res.json().await.expect("json");
    assert_eq!(app.refresh(&client, first).await.status(), 400);
    // The family is revoked now: the newest token is refused as revoked.
    let newest = str_field(&newest, "refresh_token");
    assert_eq!(app.refresh(&client, newest).await.status(), 400);
    assert_eq!(app.refresh(&client, "lk_rt_garbage").await.status(), 400);
    for _ in 0..5 {
        assert_eq!(
            app.login(&client, &email, "wrong!!!!", None).await.status(),
            400
        );
    }
    let res = app.login(&client, &email, "wrong!!!!", None).await;
    assert_eq!(res.status(), 429);

    let text = scrape(&app).await;

    for (outcome, n) in [
        ("rotated", 1.0),
        ("reuse_revoked", 1.0),
        ("revoked", 1.0),
        ("unknown", 1.0),
    ] {
        let series = format!(r#"latchkey_refresh_total{{outcome="{outcome}"}}"#);
        assert_eq!(value(&text, &series), n, "{series}");
    }
    assert_eq!(
        value(
            &text,
            r#"latchkey_login_failures_total{reason="bad_credentials"}"#
        ),
        5.0
    );
    assert_eq!(
        value(
            &text,
            r#"latchkey_login_failures_total{reason="throttled"}"#
        ),
        1.0
    );
    assert_eq!(value(&text, "latchkey_throttled_total"), 1.0);
}

#[tokio::test]
async fn gauges_show_the_pool_the_hashing_slots_and_the_signing_key_age() {
    let app = spawn_app().await;
    app.logged_in_user(None).await;
    app.advance_clock(Duration::seconds(100));

    let text = scrape(&app).await;

    assert_eq!(value(&text, "latchkey_store_pool_max_connections"), 8.0);
    assert!(value(&text, "latchkey_store_pool_connections") >= 1.0);
    assert!(text.contains("latchkey_store_pool_idle_connections "));
    assert_eq!(value(&text, "latchkey_password_hash_slots"), 2.0);
    assert_eq!(value(&text, "latchkey_password_hashes_in_flight"), 0.0);
    assert_eq!(value(&text, "latchkey_password_hash_queue_depth"), 0.0);
    assert!(value(&text, "latchkey_signing_key_age_seconds") >= 100.0);
    assert_eq!(value(&text, r#"latchkey_keys{state="active"}"#), 1.0);
    assert_eq!(value(&text, r#"latchkey_keys{state="next"}"#), 0.0);
}

#[tokio::test]
async fn store_failures_are_counted_by_operation() {
    let app = spawn_app().await;
    app.store.close().await;

    let res = app.signup("ada@example.com", "correct horse battery").await;
    assert_eq!(res.status(), 503);
    let text = scrape(&app).await;

    assert_eq!(
        value(
            &text,
            r#"latchkey_store_errors_total{operation="reserve_login_attempt",kind="unavailable"}"#
        ),
        1.0
    );
    assert_eq!(value(&text, &requests("POST", "/v1/users", 503)), 1.0);
}

#[tokio::test]
async fn metrics_can_live_on_a_listener_of_their_own() {
    let app = spawn_on_with(Backend::Sqlite, |s| {
        s.metrics.listen = "127.0.0.1:0".into();
    })
    .await
    .expect("sqlite");
    let metrics = app.metrics_address.clone().expect("a metrics listener");
    assert_eq!(app.signup("ada@example.com", "x").await.status(), 400);

    let public = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("request");
    assert_eq!(public.status(), 404);
    let text = scrape_at(&app, &metrics).await;
    assert_eq!(value(&text, &requests("POST", "/v1/users", 400)), 1.0);
    let other = app
        .client
        .get(format!("{metrics}/v1/account/sessions"))
        .send()
        .await
        .expect("request");
    assert_eq!(
        other.status(),
        404,
        "the metrics listener serves nothing else"
    );
}
