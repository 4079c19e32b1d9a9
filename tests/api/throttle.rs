//! Failed-login throttling: per account and per client address, counted in
//! the store (so shared by instances), 429 with `Retry-After`, exponential
//! lockouts for accounts, reset on success, and `X-Forwarded-For` believed
//! only from trusted proxies.

use chrono::Duration;
use serde_json::Value;

use crate::helpers::{new_shared, spawn_instance, spawn_on_with, Backend, TestApp, TestClient};

const PASSWORD: &str = "correct horse battery";

async fn app_with(account_max: i64, address_max: i64, trusted_proxies: &[&str]) -> TestApp {
    let proxies: Vec<String> = trusted_proxies.iter().map(|p| p.to_string()).collect();
    spawn_on_with(Backend::Sqlite, move |s| {
        s.throttle.account_max_failures = account_max;
        s.throttle.address_max_failures = address_max;
        s.server.trusted_proxies = proxies;
    })
    .await
    .expect("SQLite")
}

async fn login_from(
    app: &TestApp,
    client: &TestClient,
    email: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let header = forwarded_for.map(|xff| ("X-Forwarded-For", xff));
    app.login_with_header(client, email, password, header).await
}

/// Asserts a 429 `too_many_requests` and returns its `Retry-After`.
async fn assert_throttled(res: reqwest::Response) -> i64 {
    assert_eq!(res.status(), 429);
    let retry: i64 = res.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "too_many_requests");
    retry
}

/// One failed login (a different unknown account each time) forwarded
/// from each of `addresses` in turn, through the trusted proxy.
async fn fail_from_each(app: &TestApp, client: &TestClient, addresses: &[&str]) {
    for (i, address) in addresses.iter().enumerate() {
        let email = format!("unknown-{i}-{}@example.com", uuid::Uuid::new_v4().simple());
        let res = login_from(app, client, &email, "wrong password!", Some(address)).await;
        assert_eq!(res.status(), 400);
    }
}

async fn fail_times(app: &TestApp, client: &TestClient, email: &str, n: usize) {
    for _ in 0..n {
        let res = app.login(client, email, "wrong password!", None).await;
        assert_eq!(res.status(), 400);
    }
}

#[tokio::test]
async fn failed_logins_beyond_the_account_limit_get_429_with_retry_after() {
    let app = app_with(3, 1000, &[]).await;
    let client = app.public_client().await;
    assert_eq!(
        app.signup("locked@example.com", PASSWORD).await.status(),
        201
    );
    fail_times(&app, &client, "locked@example.com", 3).await;

    // Even the right password is refused now, before it is checked.
    let retry = assert_throttled(
        app.login(&client, "locked@example.com", PASSWORD, None)
            .await,
    )
    .await;
    assert!((1..=900).contains(&retry), "{retry}");
    // Unknown accounts lock the same way, so a lock reveals nothing.
    fail_times(&app, &client, "nobody@example.com", 3).await;
    assert_throttled(
        app.login(&client, "nobody@example.com", PASSWORD, None)
            .await,
    )
    .await;
    // Other accounts are untouched.
    assert_eq!(app.signup("free@example.com", PASSWORD).await.status(), 201);
    assert_eq!(
        app.login(&client, "free@example.com", PASSWORD, None)
            .await
            .status(),
        200
    );

    app.advance_clock(Duration::seconds(900));
    assert_eq!(
        app.login(&client, "locked@example.com", PASSWORD, None)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn each_further_account_lockout_lasts_twice_as_long() {
    let app = app_with(2, 1000, &[]).await;
    let client = app.public_client().await;
    let mut lengths = Vec::new();
    for _ in 0..4 {
        fail_times(&app, &client, "guess@example.com", 2).await;
        let retry = assert_throttled(
            app.login(&client, "guess@example.com", PASSWORD, None)
                .await,
        )
        .await;
        lengths.push(retry);
        app.advance_clock(Duration::seconds(retry));
    }
    assert_eq!(lengths, [900, 1800, 3600, 7200]);
}

#[tokio::test]
async fn a_successful_login_resets_the_account_counter() {
    let app = app_with(3, 1000, &[]).await;
    let client = app.public_client().await;
    assert_eq!(
        app.signup("reset@example.com", PASSWORD).await.status(),
        201
    );
    fail_times(&app, &client, "reset@example.com", 2).await;
    assert_eq!(
        app.login(&client, "reset@example.com", PASSWORD, None)
            .await
            .status(),
        200
    );
    // Two more failures: only two counted since the success.
    fail_times(&app, &client, "reset@example.com", 2).await;
    assert_eq!(
        app.login(&client, "reset@example.com", PASSWORD, None)
            .await
            .status(),
        200
    );
    // A success after a lockout also starts the doubling over.
    fail_times(&app, &client, "reset@example.com", 3).await;
    let first = assert_throttled(
        app.login(&client, "reset@example.com", PASSWORD, None)
            .await,
    )
    .await;
    app.advance_clock(Duration::seconds(first));
    assert_eq!(
        app.login(&client, "reset@example.com", PASSWORD, None)
            .await
            .status(),
        200
    );
    fail_times(&app, &client, "reset@example.com", 3).await;
    let again = assert_throttled(
        app.login(&client, "reset@example.com", PASSWORD, None)
            .await,
    )
    .await;
    assert_eq!((first, again), (900, 900));
}

#[tokio::test]
async fn the_address_limit_spans_accounts_and_ignores_forwarded_for_from_untrusted_peers() {
    let app = app_with(1000, 3, &[]).await;
    let client = app.public_client().await;
    // A client cannot dodge its address limit by claiming to be a proxy.
    for (i, xff) in ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
        .iter()
        .enumerate()
    {
        let res = login_from(
            &app,
            &client,
            &format!("u{i}@example.com"),
            "wrong password!",
            Some(xff),
        )
        .await;
        assert_eq!(res.status(), 400);
    }
    let res = login_from(
        &app,
        &client,
        "u9@example.com",
        PASSWORD,
        Some("198.51.100.4"),
    )
    .await;
    let retry = assert_throttled(res).await;
    assert!((1..=900).contains(&retry), "{retry}");
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit() {
    let app = app_with(1000, 2, &["127.0.0.1"]).await;
    let client = app.public_client().await;
    assert_eq!(
        app.signup("proxied@example.com", PASSWORD).await.status(),
        201
    );
    fail_from_each(&app, &client, &["203.0.113.7", "203.0.113.7"]).await;
    let res = login_from(
        &app,
        &client,
        "proxied@example.com",
        PASSWORD,
        Some("203.0.113.7"),
    )
    .await;
    assert_throttled(res).await;
    // What the client itself wrote to the left of the proxy's entry is not
    // believed: this is still 203.0.113.7.
    let res = login_from(
        &app,
        &client,
        "proxied@example.com",
        PASSWORD,
        Some("192.0.2.1, 203.0.113.7"),
    )
    .await;
    assert_throttled(res).await;
    // Another client behind the same proxy is not affected.
    let res = login_from(
        &app,
        &client,
        "proxied@example.com",
        PASSWORD,
        Some("203.0.113.8"),
    )
    .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn an_ipv6_client_is_limited_per_64_whatever_address_it_picks() {
    let app = app_with(1000, 2, &["127.0.0.1"]).await;
    let client = app.public_client().await;
    assert_eq!(app.signup("six@example.com", PASSWORD).await.status(), 201);
    fail_from_each(&app, &client, &["2001:db8:1:2::1", "2001:db8:1:2:ffff::9"]).await;
    // A third address in the same /64 is the same client.
    let res = login_from(
        &app,
        &client,
        "six@example.com",
        PASSWORD,
        Some("2001:db8:1:2:1234:5678:9abc:def0"),
    )
    .await;
    assert_throttled(res).await;
    // The next /64 is someone else.
    let res = login_from(
        &app,
        &client,
        "six@example.com",
        PASSWORD,
        Some("2001:db8:1:3::1"),
    )
    .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn throttling_is_shared_by_two_instances_on_postgres() {
    let Some(shared) = new_shared(Backend::Postgres).await else {
        return;
    };
    let tweak = |s: &mut latchkey::config::RawSettings| s.throttle.account_max_failures = 4;
    let a = spawn_instance(&shared, tweak).await;
    let b = spawn_instance(&shared, tweak).await;
    let client = a.public_client().await;
    assert_eq!(a.signup("shared@example.com", PASSWORD).await.status(), 201);
    // Failures land on both instances, two at a time concurrently.
    for _ in 0..2 {
        let (ra, rb) = tokio::join!(
            a.login(&client, "shared@example.com", "wrong password!", None),
            b.login(&client, "shared@example.com", "wrong password!", None),
        );
        assert_eq!((ra.status().as_u16(), rb.status().as_u16()), (400, 400));
    }
    assert_throttled(a.login(&client, "shared@example.com", PASSWORD, None).await).await;
    assert_throttled(b.login(&client, "shared@example.com", PASSWORD, None).await).await;
}

async fn ended_failure_counters_are_purged(backend: Backend) {
    let Some(app) = spawn_on_with(backend, |_| {}).await else {
        return;
    };
    let client = app.public_client().await;
    // A password typed into the email field, and an account locked out.
    let typo = "correcthorsebattery@example.com";
    assert_eq!(
        login_from(&app, &client, typo, "x", None).await.status(),
        400
    );
    let locked = "locked@example.com";
    for _ in 0..5 {
        login_from(&app, &client, locked, "wrong", None).await;
    }
    let store = &app.store;
    let key = |email: &str| format!("account:{email}");
    assert!(store
        .login_failures(&key(typo))
        .await
        .expect("read")
        .is_some());

    // The longest window (sign-ups': an hour) ends: the typo goes; the
    // lockout is remembered (it doubles the next one) until a quiet day
    // after it ended.
    app.advance_clock(Duration::seconds(3601));
    app.services.purge_once().await.expect("purge");
    assert!(store
        .login_failures(&key(typo))
        .await
        .expect("read")
        .is_none());
    assert!(store
        .login_failures(&key(locked))
        .await
        .expect("read")
        .is_some());
    app.advance_clock(Duration::days(1));
    app.services.purge_once().await.expect("purge");
    assert!(store
        .login_failures(&key(locked))
        .await
        .expect("read")
        .is_none());
}
crate::both_backends!(ended_failure_counters_are_purged);
