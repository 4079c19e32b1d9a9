//! Bounded password hashing: at most `max_concurrent_hashes` argon2 runs at
//! once; a login that cannot get a slot within the queue timeout gets 503
//! `temporarily_unavailable` with `Retry-After`, never another 5xx.

use futures_util::future::join_all;
use serde_json::Value;

use crate::helpers::{spawn_on_with, Backend};

#[tokio::test]
async fn logins_beyond_the_hashing_slots_get_503_with_retry_after() {
    let app = spawn_on_with(Backend::Sqlite, |s| {
        s.passwords.max_concurrent_hashes = 1;
        s.passwords.queue_timeout_ms = 1;
        // Sixteen logins of one account at once would otherwise be over
        // the account's attempt limit; this is about the hashing slots.
        s.throttle.account_max_failures = 1000;
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

/// The email and password of a user signed up on `app`.
async fn signed_up(app: &crate::helpers::TestApp) -> (String, &'static str) {
    let email = format!("old-{}@example.com", uuid::Uuid::new_v4().simple());
    let password = "correct horse battery";
    assert_eq!(app.signup(&email, password).await.status(), 201);
    (email, password)
}

async fn stored_user(app: &crate::helpers::TestApp, email: &str) -> latchkey::store::UserRecord {
    app.store
        .find_user_by_email(email)
        .await
        .expect("store")
        .expect("the user")
}

/// Raising the argon2 settings upgrades an account's stored hash at its next
/// successful login: with the old, cheaper hash it would answer faster than
/// an unknown email does (verified against a dummy hash of the configured
/// cost). The upgrade keeps every session: the password did not change.
async fn a_weaker_stored_hash_is_upgraded_at_the_next_login(backend: Backend, via_page: bool) {
    let Some(shared) = crate::helpers::new_shared(backend).await else {
        return;
    };
    let before = crate::helpers::spawn_instance(&shared, |_| {}).await;
    let (email, password) = signed_up(&before).await;
    let client = before.public_client().await;
    let res = before.login(&client, &email, password, None).await;
    assert_eq!(res.status(), 200);
    let first: Value = res.json().await.expect("json");
    let old = stored_user(&before, &email).await;
    assert!(
        old.password_hash.contains("m=19456,t=2,p=1$"),
        "{}",
        old.password_hash
    );
    before.stop().await;

    // The same database, with stronger settings.
    let app = crate::helpers::spawn_instance(&shared, |s| s.passwords.iterations = 3).await;
    if via_page {
        use crate::authorize::{code_client, pkce, sign_in, Browser};
        let code_client =
            code_client(&app, latchkey::domain::types::ClientKind::Public, true).await;
        let (_, challenge) = pkce();
        let mut browser = Browser::new(&app);
        let res = sign_in(&mut browser, &code_client, &email, &challenge).await;
        assert!(res.status().is_redirection(), "{}", res.status());
        let (_, params) = crate::authorize::location_params(&res);
        assert!(params.contains_key("code"), "{params:?}");
    } else {
        assert_eq!(
            app.login(&client, &email, password, None).await.status(),
            200
        );
    }

    let upgraded = stored_user(&app, &email).await;
    assert!(
        upgraded
            .password_hash
            .starts_with("$argon2id$v=19$m=19456,t=3,p=1$"),
        "{}",
        upgraded.password_hash
    );
    assert_eq!(upgraded.credentials_version, old.credentials_version);
    // The session started before the upgrade still refreshes.
    let res = app
        .refresh(
            &client,
            first["refresh_token"].as_str().expect("refresh token"),
        )
        .await;
    assert_eq!(res.status(), 200);
    // The upgraded hash verifies the same password, and only it.
    assert_eq!(
        app.login(&client, &email, password, None).await.status(),
        200
    );
    assert_eq!(
        app.login(&client, &email, "not the password", None)
            .await
            .status(),
        400
    );
    // A hash at the configured cost is left alone.
    assert_eq!(
        stored_user(&app, &email).await.password_hash,
        upgraded.password_hash
    );
}

async fn a_weaker_stored_hash_is_upgraded_at_the_next_password_grant(backend: Backend) {
    a_weaker_stored_hash_is_upgraded_at_the_next_login(backend, false).await;
}
crate::both_backends!(a_weaker_stored_hash_is_upgraded_at_the_next_password_grant);

async fn a_weaker_stored_hash_is_upgraded_at_the_next_page_login(backend: Backend) {
    a_weaker_stored_hash_is_upgraded_at_the_next_login(backend, true).await;
}
crate::both_backends!(a_weaker_stored_hash_is_upgraded_at_the_next_page_login);

/// Logins that verified the old password and upgrade its hash race a
/// password change: the change wins. An upgrade written after it would
/// bring the old password back.
async fn a_password_change_wins_over_hash_upgrades_in_flight(backend: Backend) {
    let Some(shared) = crate::helpers::new_shared(backend).await else {
        return;
    };
    let roomy = |s: &mut latchkey::config::RawSettings| {
        s.passwords.max_concurrent_hashes = 4;
        s.passwords.queue_timeout_ms = 60_000;
        s.throttle.account_max_failures = 1000;
        s.throttle.address_max_failures = 1000;
    };
    let before = crate::helpers::spawn_instance(&shared, roomy).await;
    let (email, password) = signed_up(&before).await;
    let client = before.public_client().await;
    let res = before.login(&client, &email, password, None).await;
    let access: Value = res.json().await.expect("json");
    let access = access["access_token"].as_str().expect("token").to_owned();
    before.stop().await;

    let app = crate::helpers::spawn_instance(&shared, |s| {
        roomy(s);
        s.passwords.iterations = 3;
    })
    .await;
    let logins = (0..12).map(|_| app.login(&client, &email, password, None));
    let change = async {
        app.client
            .post(app.url("/v1/account/password"))
            .bearer_auth(&access)
            .json(&serde_json::json!({
                "current_password": password,
                "new_password": "a whole new password",
            }))
            .send()
            .await
            .expect("request")
    };
    let (_, changed) = tokio::join!(join_all(logins), change);
    assert!(changed.status().is_success(), "{}", changed.status());

    assert_eq!(
        app.login(&client, &email, password, None).await.status(),
        400,
        "the old password came back"
    );
    assert_eq!(
        app.login(&client, &email, "a whole new password", None)
            .await
            .status(),
        200
    );
}
crate::both_backends!(a_password_change_wins_over_hash_upgrades_in_flight);
