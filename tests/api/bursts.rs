//! Lockouts hold against a burst: 40 guesses sent at once, on one instance
//! or spread over two, get at most the limit plus the hashing slots
//! verified, per account and per address, and the right password is then
//! refused with 429. The password-change endpoint is no unthrottled oracle,
//! and one host cannot monopolise the hashing slots with sign-ups.

use futures_util::future::join_all;
use latchkey::config::RawSettings;
use serde_json::{json, Value};

use crate::helpers::{new_shared, spawn_instance, str_field, Backend, TestApp, TestClient};

const BURST: usize = 40;
const PASSWORD: &str = "correct horse battery";
/// Hashing slots per instance in the test settings.
const SLOTS: usize = 2;

async fn instances(
    backend: Backend,
    n: usize,
    tweak: fn(&mut RawSettings),
) -> Option<Vec<TestApp>> {
    let shared = new_shared(backend).await?;
    let mut apps = Vec::new();
    for _ in 0..n {
        apps.push(spawn_instance(&shared, tweak).await);
    }
    Some(apps)
}

async fn login(app: &TestApp, client: &TestClient, email: &str, password: &str) -> u16 {
    app.login(client, email, password, None)
        .await
        .status()
        .as_u16()
}

/// Answers of a burst: (verified and wrong, refused before hashing).
fn tally(statuses: &[u16]) -> (usize, usize) {
    for s in statuses {
        assert!([400, 429, 503].contains(s), "a guess answered {s}");
    }
    let count = |code| statuses.iter().filter(|s| **s == code).count();
    (count(400), count(429))
}

async fn assert_throttled(res: reqwest::Response) {
    assert_eq!(res.status(), 429);
    let wait: i64 = res
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(wait > 0);
}

async fn burst_on_one_account(backend: Backend, n: usize) {
    let Some(apps) = instances(backend, n, |_| {}).await else {
        return;
    };
    let client = apps[0].public_client().await;
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    assert_eq!(apps[0].signup(&email, PASSWORD).await.status(), 201);
    let limit = apps[0].settings.policy().throttle.account.max_failures as usize;

    let guesses = (0..BURST).map(|i| {
        let app = &apps[i % n];
        let (client, email) = (&client, &email);
        async move { login(app, client, email, &format!("wrong guess {i}")).await }
    });
    let statuses = join_all(guesses).await;

    let (verified, refused) = tally(&statuses);
    assert!(
        verified <= limit + SLOTS * n,
        "{verified} of {BURST} parallel guesses were verified (limit {limit}, {} slots)",
        SLOTS * n
    );
    assert!(refused > 0);
    for app in &apps {
        assert_throttled(app.login(&client, &email, PASSWORD, None).await).await;
    }
}

async fn burst_from_one_address(backend: Backend, n: usize) {
    let Some(apps) = instances(backend, n, |s| s.throttle.address_max_failures = 8).await else {
        return;
    };
    let client = apps[0].public_client().await;
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    assert_eq!(apps[0].signup(&email, PASSWORD).await.status(), 201);

    // One guess for each of 40 accounts: no account reaches its limit.
    let guesses = (0..BURST).map(|i| {
        let app = &apps[i % n];
        let client = &client;
        async move {
            let target = format!("target{i}@example.com");
            login(app, client, &target, "wrong guess").await
        }
    });
    let statuses = join_all(guesses).await;

    let (verified, _) = tally(&statuses);
    assert!(
        verified <= 8 + SLOTS * n,
        "{verified} of {BURST} parallel guesses from one address were verified (limit 8)"
    );
    assert_throttled(apps[0].login(&client, &email, PASSWORD, None).await).await;
}

macro_rules! on_every_setup {
    ($name:ident, $case:ident) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $case(Backend::Sqlite, 1).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $case(Backend::Postgres, 1).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn two_postgres_instances() {
                $case(Backend::Postgres, 2).await
            }
        }
    };
}

on_every_setup!(
    a_burst_on_one_account_verifies_at_most_the_limit,
    burst_on_one_account
);
on_every_setup!(
    a_burst_from_one_address_verifies_at_most_the_limit,
    burst_from_one_address
);

async fn change_password(app: &TestApp, access: &str, current: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/account/password"))
        .bearer_auth(access)
        .json(&json!({ "current_password": current, "new_password": "a whole new password" }))
        .send()
        .await
        .expect("request")
}

async fn password_change_is_no_unthrottled_oracle(backend: Backend, n: usize) {
    let Some(apps) = instances(backend, n, |_| {}).await else {
        return;
    };
    let (client, email, tokens) = apps[0].logged_in_user(None).await;
    let access = str_field(&tokens, "access_token");
    let limit = apps[0].settings.policy().throttle.account.max_failures as usize;

    // A stolen access token guessing the password, 40 guesses at once.
    let guesses = (0..BURST).map(|i| {
        let app = &apps[i % n];
        async move {
            change_password(app, access, &format!("wrong guess {i}"))
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = join_all(guesses).await;

    let (verified, refused) = tally(&statuses);
    assert!(
        verified <= limit + SLOTS * n,
        "{verified} of {BURST} current-password guesses were verified (limit {limit})"
    );
    assert!(refused > 0);
    // Even the right one is refused now, and so is a login: one account limit.
    assert_throttled(change_password(&apps[0], access, PASSWORD).await).await;
    assert_throttled(apps[0].login(&client, &email, PASSWORD, None).await).await;
}

mod the_password_change_counts_against_the_account_limit {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        password_change_is_no_unthrottled_oracle(Backend::Sqlite, 1).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        password_change_is_no_unthrottled_oracle(Backend::Postgres, 1).await
    }
}

async fn sign_ups_from_one_address_are_limited(backend: Backend) {
    let Some(apps) = instances(backend, 1, |s| s.throttle.signup_max_per_address = 3).await else {
        return;
    };
    let app = &apps[0];

    let sign_ups = (0..10).map(|i| async move {
        let email = format!("new{i}-{}@example.com", uuid::Uuid::new_v4().simple());
        app.signup(&email, PASSWORD).await.status().as_u16()
    });
    let statuses = join_all(sign_ups).await;

    let created = statuses.iter().filter(|s| **s == 201).count();
    assert_eq!(created, 3, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| [201, 429].contains(s)),
        "{statuses:?}"
    );
    let res = app.signup("one-more@example.com", PASSWORD).await;
    let wait = res.headers().get("retry-after").cloned();
    assert_eq!(res.status(), 429);
    let body: Value = res.json().await.expect("json");
    assert!(body["error"].is_string(), "{body}");
    assert!(wait.is_some());
}

mod sign_ups_per_address_are_limited {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        sign_ups_from_one_address_are_limited(Backend::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        sign_ups_from_one_address_are_limited(Backend::Postgres).await
    }
}
