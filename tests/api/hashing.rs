//! Bounded password hashing: at most `max_concurrent_hashes` argon2 runs at
//! once; a login that cannot get a slot within the queue timeout gets 503
//! `temporarily_unavailable` with `Retry-After`, never another 5xx.

use futures_util::future::join_all;
use serde_json::Value;

use crate::helpers::{spawn_on_with, Backend};

#[tokio::test]
async fn logins_beyond_the_hashing_slots_get_503_with_retry_after() {
    let app = spawn_on_with(Backend::Sqlite, |s| {
        s.raw.passwords.max_concurrent_hashes = 1;
        s.raw.passwords.queue_timeout_ms = 1;
        // Sixteen logins of one account at once would otherwise be over
        // the account's attempt limit; this is about the hashing slots.
        s.raw.throttle.account_max_failures = 1000;
    })
    .await
    .expect("SQLite");
    let client = app.public_client().await;
    // Sign-up hashes too, and may itself be refused while slots are busy.
    assert_eq!(
        app.signup("flood@example.com", "correct horse battery")
            .await
            .status(),
        201
    );

    let logins =
        (0..16).map(|_| app.login(&client, "flood@example.com", "correct horse battery", None));
    let responses = join_all(logins).await;

    let mut unavailable = 0;
    for res in responses {
        match res.status().as_u16() {
            200 => {}
            503 => {
                unavailable += 1;
                assert!(res.headers().contains_key("retry-after"));
                let body: Value = res.json().await.expect("json");
                assert_eq!(body["error"], "temporarily_unavailable");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(
        unavailable > 0,
        "one slot and a 1 ms queue must refuse some"
    );
    // Once the flood is over, logins work again.
    let res = app
        .login(&client, "flood@example.com", "correct horse battery", None)
        .await;
    assert_eq!(res.status(), 200);
}
