//! Key lifecycle on the real server: pre-publication, activation at the
//! scheduled moment, retirement, JWKS caching and hot reload.

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use chrono::Duration;
use latchkey::keys::{admin, manifest::Retention};
use serde_json::Value;

use crate::helpers::kid_of;
use crate::helpers::{
    new_shared, spawn_app, spawn_instance, str_field, test_settings, Backend, TestApp, TestClient,
};

/// New keys in these tests: RSA-2048, as the defaults make.
const RS256: admin::KeySpec = admin::KeySpec {
    algorithm: latchkey::tokens::jwt::Algorithm::Rs256,
    rsa_bits: 2048,
};

fn retention(app: &TestApp) -> Retention {
    let s = &app.settings;
    Retention {
        token_ttl: s.access_token_ttl(),
        max_age: s.jwks_max_age(),
        leeway: s.leeway(),
    }
}

async fn cc_token(app: &TestApp, client: &TestClient) -> String {
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    str_field(&res.json::<Value>().await.expect("json"), "access_token").to_owned()
}

async fn jwks(app: &TestApp) -> (HashSet<String>, i64) {
    let res = app.get_jwks().await;
    let cache = res.headers()["cache-control"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let max_age = cache
        .rsplit('=')
        .next()
        .and_then(|s| s.parse().ok())
        .expect("max-age");
    let body: Value = res.json().await.expect("json");
    let kids = body["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect();
    (kids, max_age)
}

fn rotate(app: &TestApp) -> String {
    let dir = app.settings.keys().dir.clone();
    let (kid, _) = admin::rotate(
        &dir,
        RS256,
        app.services.now(),
        app.settings.jwks_max_age() * 2,
        retention(app),
    )
    .expect("rotates");
    assert!(app.keys.reload().expect("reloads"));
    kid
}

#[tokio::test]
async fn a_verifier_honouring_cache_control_always_holds_the_signing_key() {
    let app = spawn_app().await;
    let rs = app.confidential_client().await;
    // The verifier caches the JWKS for max-age and refetches only then.
    let (mut cached, mut max_age) = jwks(&app).await;
    let mut fetched_at = 0i64;
    let old_kid = kid_of(&cc_token(&app, &rs).await);
    app.advance_clock(Duration::seconds(100));
    let new_kid = rotate(&app);
    let mut seen = HashSet::new();
    for step in 1..=40i64 {
        let t = 100 + step * 30;
        app.advance_clock(Duration::seconds(30));
        if t - fetched_at >= max_age {
            (cached, max_age) = jwks(&app).await;
            fetched_at = t;
        }
        let kid = kid_of(&cc_token(&app, &rs).await);
        assert!(
            cached.contains(&kid),
            "at +{t}s a token signed by {kid} is not in the cached JWKS"
        );
        seen.insert(kid);
    }
    assert!(
        seen.contains(&old_kid) && seen.contains(&new_kid),
        "the run crossed the activation"
    );
}

#[tokio::test]
async fn activation_switches_signing_and_old_tokens_verify_until_the_key_leaves() {
    let app = spawn_app().await;
    let rs = app.confidential_client().await;
    let (client, _, login) = app.logged_in_user(None).await;
    let old_token = cc_token(&app, &rs).await;
    let old_kid = kid_of(&old_token);
    let new_kid = rotate(&app);

    // Published at once, not yet signing.
    let (kids, _) = jwks(&app).await;
    assert!(kids.contains(&new_kid) && kids.contains(&old_kid));
    assert_eq!(kid_of(&cc_token(&app, &rs).await), old_kid);

    app.advance_clock(Duration::seconds(600));
    assert_eq!(kid_of(&cc_token(&app, &rs).await), new_kid);
    // A refresh of a session from before the rotation signs with the new key.
    let body: Value = app
        .refresh(&client, str_field(&login, "refresh_token"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(kid_of(str_field(&body, "access_token")), new_kid);

    // The retired key stays published for ttl + max-age + leeway (1260 s).
    app.advance_clock(Duration::seconds(1259));
    let (kids, max_age) = jwks(&app).await;
    assert!(kids.contains(&old_kid));
    assert!(
        max_age <= 1,
        "max-age {max_age} runs past the next change of the set"
    );
    app.advance_clock(Duration::seconds(1));
    let (kids, _) = jwks(&app).await;
    assert!(!kids.contains(&old_kid));
    let intro: Value = app
        .introspect(&rs, &old_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(intro["active"], false);
}

#[tokio::test]
async fn max_age_never_runs_past_the_next_change() {
    let app = spawn_app().await;
    rotate(&app);
    app.advance_clock(Duration::seconds(600 + 1260 - 100));
    let (_, max_age) = jwks(&app).await;
    assert!(max_age <= 100, "max-age {max_age}");
    // Test time also follows the wall clock: allow for a slow machine.
    assert!(max_age >= 60, "max-age {max_age}");
}

#[tokio::test]
async fn two_instances_switch_keys_at_the_same_moment_without_restart() {
    let shared = new_shared(Backend::Sqlite).await.expect("sqlite");
    let a = Arc::new(spawn_instance(&shared, |_| {}).await);
    let b = Arc::new(spawn_instance(&shared, |_| {}).await);
    let rs = a.confidential_client().await;
    let new_kid = rotate(&a);
    assert!(b.keys.reload().expect("reloads"));
    // Test time also follows the wall clock: leave slack for a slow machine.
    a.advance_clock(Duration::seconds(570));
    assert_ne!(kid_of(&cc_token(&a, &rs).await), new_kid);
    assert_ne!(kid_of(&cc_token(&b, &rs).await), new_kid);
    a.advance_clock(Duration::seconds(30));
    assert_eq!(kid_of(&cc_token(&a, &rs).await), new_kid);
    assert_eq!(kid_of(&cc_token(&b, &rs).await), new_kid);
}

#[tokio::test]
async fn a_running_server_picks_up_a_rotation_by_itself() {
    let app = crate::helpers::spawn_on_with(Backend::Sqlite, |s| s.keys.reload_interval_secs = 1)
        .await
        .expect("sqlite");
    let dir = app.settings.keys().dir.clone();
    let (kid, _) = admin::rotate(
        &dir,
        RS256,
        app.services.now(),
        Duration::seconds(600),
        retention(&app),
    )
    .expect("rotates");
    for _ in 0..100 {
        if jwks(&app).await.0.contains(&kid) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the new key was not published within 5 s");
}

#[tokio::test]
async fn emergency_retire_now_drops_the_key_at_once() {
    let app = spawn_app().await;
    let rs = app.confidential_client().await;
    let old_token = cc_token(&app, &rs).await;
    let old_kid = kid_of(&old_token);
    let new_kid = rotate(&app);
    let dir = app.settings.keys().dir.clone();
    admin::retire(&dir, &old_kid, app.services.now(), true, retention(&app)).expect("retires");
    app.keys.reload().expect("reloads");
    let (kids, _) = jwks(&app).await;
    assert!(!kids.contains(&old_kid));
    assert_eq!(kid_of(&cc_token(&app, &rs).await), new_kid);
    assert_eq!(
        app.introspect(&rs, &old_token)
            .await
            .json::<Value>()
            .await
            .expect("json")["active"],
        false
    );
}

#[test]
fn a_manifest_being_rewritten_is_never_seen_half_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("time");
    admin::ensure_initial_key(dir.path(), RS256, now).expect("first key");
    let path = dir.path().join("keys.toml");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        let path = path.clone();
        std::thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let text = std::fs::read_to_string(&path).expect("manifest readable");
                latchkey::keys::manifest::Manifest::parse(&text).expect("manifest complete");
                reads += 1;
            }
            reads
        })
    };
    let r = Retention {
        token_ttl: Duration::seconds(900),
        max_age: Duration::seconds(300),
        leeway: Duration::seconds(60),
    };
    for i in 0..5 {
        admin::rotate(
            dir.path(),
            RS256,
            now + Duration::seconds(i),
            Duration::seconds(600),
            r,
        )
        .expect("rotates");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.join().expect("reader") > 0);
}

#[tokio::test]
async fn a_key_readable_by_others_stops_start_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("time");
    let kid = admin::ensure_initial_key(dir.path(), RS256, now)
        .expect("key")
        .expect("created");
    std::fs::set_permissions(
        dir.path().join(format!("{kid}.pem")),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    let settings = test_settings(
        &format!("sqlite://{}", data.path().join("db").display()),
        dir.path(),
    );
    let err = latchkey::startup::Application::build(
        crate::helpers::validated(settings),
        Arc::new(latchkey::clock::TestClock::new()),
    )
    .await
    .err()
    .expect("start-up refused");
    assert!(
        format!("{err:#}").contains("readable by group or others"),
        "{err:#}"
    );
}
