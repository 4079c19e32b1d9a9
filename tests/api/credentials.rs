//! A session never outlives its credential. Many logins are in flight (each
//! has read the user and waits for a hashing slot) while the password
//! changes, the user is disabled or every session is revoked; afterwards no
//! refresh token they got refreshes and no access token introspects active.
//! On SQLite, on PostgreSQL, and with the logins spread over two PostgreSQL
//! instances while a third makes the change.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use latchkey::config::RawSettings;
use latchkey::domain::types::UserId;
use serde_json::{json, Value};

use crate::helpers::{new_shared, spawn_instance, str_field, Backend, TestApp, TestClient};

/// Logins in flight when the credential changes.
const LOGINS: usize = 24;
const PASSWORD: &str = "correct horse battery";

#[derive(Debug, Clone, Copy)]
enum Change {
    Password,
    Disable,
    RevokeSessions,
}

/// One hashing slot and a queue that never times out, so the logins pile up
/// behind the slot, each having read the user already; and attempt limits
/// high enough that all of them are let through to the hash.
fn slow_queue(s: &mut RawSettings) {
    s.passwords.max_concurrent_hashes = 1;
    s.passwords.queue_timeout_ms = 60_000;
    high_limits(s);
}

/// The attempt counters are shared through the database: every instance
/// must let the whole race through to the hash. And a slower hash (the
/// user's stored one names its cost), so the queue is still long when the
/// last login joins it.
fn high_limits(s: &mut RawSettings) {
    s.throttle.account_max_failures = 1000;
    s.throttle.address_max_failures = 1000;
    s.passwords.iterations = 6;
}

/// Logins that have read the user: queued for a slot, hashing, or answered.
fn logins_past_the_user_read(apps: &[TestApp], answered: &AtomicUsize) -> (usize, usize) {
    let queued: usize = apps.iter().map(|a| a.services.passwords.waiting()).sum();
    let hashing: usize = apps.iter().map(|a| a.services.passwords.in_flight()).sum();
    (queued, queued + hashing + answered.load(Ordering::SeqCst))
}

async fn sub_of(app: &TestApp, access_token: &str) -> UserId {
    let v: Value = app
        .get_bearer("/userinfo", access_token)
        .await
        .json()
        .await
        .expect("json");
    UserId::parse(str_field(&v, "sub")).expect("uuid")
}

/// Makes the change through `app`, which hashes on its own slots.
async fn make_change(app: &TestApp, change: Change, user: UserId, access_token: &str) {
    match change {
        Change::Password => {
            let res = app
                .client
                .post(app.url("/v1/account/password"))
                .bearer_auth(access_token)
                .json(&json!({
                    "current_password": PASSWORD,
                    "new_password": "a whole new password",
                }))
                .send()
                .await
                .expect("request");
            assert!(res.status().is_success(), "{}", res.status());
        }
        Change::Disable => app
            .services
            .set_user_disabled(user, true, "test")
            .await
            .expect("disabled"),
        Change::RevokeSessions => {
            app.services
                .revoke_user_sessions(user, "test")
                .await
                .expect("revoked");
        }
    }
}

/// Sends `LOGINS` password logins spread over `apps`; counts answers.
fn start_logins(
    apps: &[TestApp],
    client: &TestClient,
    email: &str,
    answered: &Arc<AtomicUsize>,
) -> Vec<tokio::task::JoinHandle<(u16, Value)>> {
    (0..LOGINS)
        .map(|i| {
            let app = &apps[i % apps.len()];
            let (http, url) = (app.client.clone(), app.url("/oauth/token"));
            let form = [
                ("grant_type", "password".to_owned()),
                ("username", email.to_owned()),
                ("password", PASSWORD.to_owned()),
                ("client_id", client.id.clone()),
            ];
            let answered = answered.clone();
            tokio::spawn(async move {
                let res = http.post(url).form(&form).send().await.expect("request");
                let status = res.status().as_u16();
                let body = res.json().await.unwrap_or(Value::Null);
                answered.fetch_add(1, Ordering::SeqCst);
                (status, body)
            })
        })
        .collect()
}

async fn logins_in_flight_get_no_usable_token(
    backend: Backend,
    login_instances: usize,
    change: Change,
) {
    // Arrange: login instances with one slow hashing queue each, and one
    // more instance that makes the change.
    let Some(shared) = new_shared(backend).await else {
        return;
    };
    let mut logins = Vec::new();
    for _ in 0..login_instances {
        logins.push(spawn_instance(&shared, slow_queue).await);
    }
    let admin = spawn_instance(&shared, high_limits).await;
    let (client, email, own) = admin.logged_in_user(None).await;
    let own_access = str_field(&own, "access_token").to_owned();
    let user = sub_of(&admin, &own_access).await;
    let rs = admin.confidential_client().await;

    // Act: every login reads the user and queues for a hash; then the
    // credential changes while they wait.
    let answered = Arc::new(AtomicUsize::new(0));
    let tasks = start_logins(&logins, &client, &email, &answered);
    let deadline = Instant::now() + StdDuration::from_secs(30);
    let queued_at_change = loop {
        let (queued, past_read) = logins_past_the_user_read(&logins, &answered);
        if past_read == LOGINS {
            break queued;
        }
        assert!(Instant::now() < deadline, "logins never reached the hash");
        tokio::time::sleep(StdDuration::from_millis(2)).await;
    };
    make_change(&admin, change, user, &own_access).await;
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("login task"));
    }

    // Assert: the race was mounted, and nothing it produced is usable.
    assert!(
        queued_at_change > 0,
        "no login was still waiting to hash when the {change:?} committed"
    );
    let mut usable = 0;
    for (_, body) in results.iter().filter(|(s, _)| *s == 200) {
        let access = str_field(body, "access_token");
        let refresh = str_field(body, "refresh_token");
        let refreshed = admin.refresh(&client, refresh).await.status();
        let res = admin.introspect(&rs, access).await;
        let active = res.json::<Value>().await.expect("json")["active"] == true;
        if refreshed == 200 || active {
            usable += 1;
        }
    }
    assert_eq!(
        usable, 0,
        "{usable} of {LOGINS} logins in flight during the {change:?} got a usable token"
    );
    for (status, _) in &results {
        assert!(
            [200, 400, 429].contains(status),
            "a login in flight answered {status}"
        );
    }
}

macro_rules! credential_race {
    ($name:ident, $change:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                logins_in_flight_get_no_usable_token(Backend::Sqlite, 1, $change).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                logins_in_flight_get_no_usable_token(Backend::Postgres, 1, $change).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn two_postgres_instances() {
                logins_in_flight_get_no_usable_token(Backend::Postgres, 2, $change).await
            }
        }
    };
}

credential_race!(password_change_ends_logins_in_flight, Change::Password);
credential_race!(disabling_ends_logins_in_flight, Change::Disable);
credential_race!(
    revoking_sessions_ends_logins_in_flight,
    Change::RevokeSessions
);
