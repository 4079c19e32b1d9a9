//! Keys in the store (`keys.source = "store"`): instances that share nothing
//! but the database agree on one first key, see a rotation made by the
//! `latchkey` binary with no file copied, refuse a wrong KEK with a clear
//! error, rotate the KEK itself, take over a keys folder without breaking a
//! token, and keep serving JWKS and verification while the store is down.

use std::collections::HashSet;
use std::process::Command;
use std::sync::Arc;

use chrono::Duration;
use latchkey::config::RawSettings;
use latchkey::keys::sealed::generate_kek_text;
use latchkey::startup::Application;
use serde_json::Value;

use crate::helpers::kid_of;
use crate::helpers::{
    new_shared, spawn_instance, str_field, validated, Backend, SharedHandle, TestApp, TestClient,
};

/// Store mode under `kek`, with a keys folder of the instance's own (which
/// store mode never reads), so nothing is shared but the database.
fn store_mode(s: &mut RawSettings, kek: &str, own_dir: &std::path::Path) {
    s.keys.source = "store".into();
    s.keys.kek = kek.to_owned().into();
    s.keys.dir = own_dir.join("keys");
    s.keys.kek_file = own_dir.join("keys/master.key");
}

async fn store_instance(shared: &Arc<SharedHandle>, kek: &str) -> (TestApp, tempfile::TempDir) {
    let own = tempfile::tempdir().expect("tempdir");
    let path = own.path().to_owned();
    let kek = kek.to_owned();
    let app = spawn_instance(shared, move |s| store_mode(s, &kek, &path)).await;
    (app, own)
}

fn database_url(shared: &SharedHandle) -> String {
    match &shared.db {
        Some(db) => db.url.clone(),
        None => format!(
            "sqlite://{}",
            shared.data_dir.path().join("latchkey.db").display()
        ),
    }
}

/// Settings for a store-mode instance on `shared`'s database.
fn settings_on(shared: &SharedHandle, kek: &str, own: &std::path::Path) -> RawSettings {
    let mut s = crate::helpers::test_settings(&database_url(shared), own);
    store_mode(&mut s, kek, own);
    s
}

/// Runs the `latchkey` binary on `shared`'s database in store mode.
fn latchkey(shared: &SharedHandle, kek: &str, args: &[&str]) -> (bool, String, String) {
    let own = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env("LATCHKEY__DATABASE__URL", database_url(shared))
        .env("LATCHKEY__KEYS__SOURCE", "store")
        .env("LATCHKEY__KEYS__KEK", kek)
        .env("LATCHKEY__KEYS__DIR", own.path().join("keys"))
        .env("LATCHKEY__LOG__LEVEL", "warn")
        .output()
        .expect("binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn jwks_kids(app: &TestApp) -> HashSet<String> {
    let res = app.get_jwks().await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    body["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
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

async fn is_active(app: &TestApp, client: &TestClient, token: &str) -> bool {
    let res = app.introspect(client, token).await;
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.expect("json")["active"] == true
}

async fn several_instances_on_an_empty_store_create_one_first_key(backend: Backend) {
    let Some(shared) = new_shared(backend).await else {
        return;
    };
    let kek = generate_kek_text().expect("kek");
    // `latchkey migrate` first, as docs/deploy.md has it: instances racing
    // to create the schema is another matter.
    latchkey::store::connect(&database_url(&shared), 2, std::time::Duration::from_secs(5))
        .await
        .expect("connects")
        .migrate()
        .await
        .expect("migrates");
    let mut starting = Vec::new();
    for _ in 0..4 {
        let (shared, kek) = (shared.clone(), kek.clone());
        starting.push(tokio::spawn(
            async move { store_instance(&shared, &kek).await },
        ));
    }
    let mut apps = Vec::new();
    for s in starting {
        apps.push(s.await.expect("instance starts"));
    }
    let (version, keys) = apps[0].0.services.list_stored_keys().await.expect("lists");
    assert_eq!(keys.len(), 1, "exactly one first key: {keys:?}");
    let kid = keys[0].entry.kid.clone();
    for (app, _) in &apps {
        assert_eq!(jwks_kids(app).await, HashSet::from([kid.clone()]));
        assert_eq!(app.keys.version(), version);
    }
    // One refresh-token secret too: a token issued by one instance
    // refreshes on every other.
    let (client, _, body) = apps[0].0.logged_in_user(None).await;
    let mut refresh = str_field(&body, "refresh_token").to_owned();
    for (app, _) in &apps[1..] {
        let res = app.refresh(&client, &refresh).await;
        assert_eq!(res.status(), 200);
        refresh = str_field(&res.json::<Value>().await.expect("json"), "refresh_token").to_owned();
    }
}
crate::both_backends!(several_instances_on_an_empty_store_create_one_first_key);

async fn rotation_by_the_cli_reaches_two_running_instances(backend: Backend) {
    let Some(shared) = new_shared(backend).await else {
        return;
    };
    let kek = generate_kek_text().expect("kek");
    let own_a = tempfile::tempdir().expect("tempdir");
    let own_b = tempfile::tempdir().expect("tempdir");
    let (pa, pb) = (own_a.path().to_owned(), own_b.path().to_owned());
    let (ka, kb) = (kek.clone(), kek.clone());
    let a = spawn_instance(&shared, move |s| {
        store_mode(s, &ka, &pa);
        s.keys.reload_interval_secs = 1;
    })
    .await;
    let b = spawn_instance(&shared, move |s| {
        store_mode(s, &kb, &pb);
        s.keys.reload_interval_secs = 1;
    })
    .await;
    let rs = a.confidential_client().await;
    let old_kid = kid_of(&cc_token(&a, &rs).await);

    let (ok, out, err) = latchkey(
        &shared,
        &kek,
        &["keys", "rotate", "--activate-in", "600", "--json"],
    );
    assert!(ok, "{err}");
    let new_kid = str_field(&serde_json::from_str(&out).expect("json"), "kid").to_owned();

    // Each instance notices by itself (its poll of the store's version): no
    // file was copied, nothing was restarted.
    for app in [&a, &b] {
        let mut seen = false;
        for _ in 0..300 {
            if jwks_kids(app).await.contains(&new_kid) {
                seen = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(seen, "the new key reached the instance's JWKS");
    }
    // Test time also follows the wall clock: leave slack for a slow machine.
    a.advance_clock(Duration::seconds(570));
    assert_eq!(kid_of(&cc_token(&a, &rs).await), old_kid);
    a.advance_clock(Duration::seconds(31));
    // Right after activation, a token signed by one instance verifies and
    // introspects on the other.
    let token = cc_token(&a, &rs).await;
    assert_eq!(kid_of(&token), new_kid);
    assert!(is_active(&b, &rs, &token).await);
    let (client, _, body) = a.logged_in_user(Some("openid email")).await;
    let access = str_field(&body, "access_token");
    assert_eq!(kid_of(access), new_kid);
    assert_eq!(b.get_bearer("/userinfo", access).await.status(), 200);
    let res = b.refresh(&client, str_field(&body, "refresh_token")).await;
    assert_eq!(res.status(), 200);
    let on_b = str_field(&res.json::<Value>().await.expect("json"), "access_token").to_owned();
    assert_eq!(kid_of(&on_b), new_kid);
    assert!(is_active(&a, &rs, &on_b).await);

    // `keys list --json` shows the store's version, which both have reached.
    let (ok, out, err) = latchkey(&shared, &kek, &["keys", "list", "--json"]);
    assert!(ok, "{err}");
    let list: Value = serde_json::from_str(&out).expect("json");
    let version = list["store_version"].as_i64().expect("version");
    for app in [&a, &b] {
        let ready: Value = app
            .client
            .get(app.url("/readyz"))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json");
        assert_eq!(ready["keys_version"].as_i64(), Some(version), "{ready}");
    }
    let states: Vec<(String, String)> = list["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| {
            (
                str_field(k, "kid").to_owned(),
                str_field(k, "state").to_owned(),
            )
        })
        .collect();
    assert!(states.contains(&(old_kid, "active".into())), "{states:?}");
    assert!(states.contains(&(new_kid, "next".into())), "{states:?}");
}
crate::both_backends!(rotation_by_the_cli_reaches_two_running_instances);

async fn a_wrong_kek_is_refused_with_a_clear_error(backend: Backend) {
    let Some(shared) = new_shared(backend).await else {
        return;
    };
    let right = generate_kek_text().expect("kek");
    let (_a, _own) = store_instance(&shared, &right).await;
    let own = tempfile::tempdir().expect("tempdir");
    let wrong = generate_kek_text().expect("kek");
    let err = Application::build(
        validated(settings_on(&shared, &wrong, own.path())),
        Arc::new(shared.clock.clone()),
    )
    .await
    .err()
    .expect("refused");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("key-encryption key") && msg.contains("not configured"),
        "{msg}"
    );
    assert!(!msg.contains(&wrong) && !msg.contains(&right), "{msg}");
    // The binary says the same on one line and exits non-zero.
    let (ok, _, stderr) = latchkey(&shared, &wrong, &["keys", "rotate"]);
    assert!(!ok);
    assert!(stderr.contains("not configured"), "{stderr}");
    // No KEK at all (a fresh instance that never got the Secret).
    let own = tempfile::tempdir().expect("tempdir");
    let mut s = settings_on(&shared, "", own.path());
    s.keys.kek = String::new().into();
    let err = Application::build(validated(s), Arc::new(shared.clock.clone()))
        .await
        .err()
        .expect("refused");
    assert!(format!("{err:#}").contains("keys.kek"), "{err:#}");
}
crate::both_backends!(a_wrong_kek_is_refused_with_a_clear_error);

async fn a_second_kek_and_rewrap_rotate_the_kek(backend: Backend) {
    let Some(shared) = new_shared(backend).await else {
        return;
    };
    let old = generate_kek_text().expect("kek");
    let new = generate_kek_text().expect("kek");
    let (a, _own_a) = store_instance(&shared, &old).await;
    let rs = a.confidential_client().await;
    let token = cc_token(&a, &rs).await;

    // New first, old second: the new one seals, both open.
    let both = format!("{new},{old}");
    let (ok, out, err) = latchkey(&shared, &both, &["keys", "rewrap", "--json"]);
    assert!(ok, "{err}");
    let resealed: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(resealed["resealed"], 2, "the key and the refresh secret");
    // Nothing left under the old KEK: an instance with only the new one
    // starts, verifies what the old ring signed, and refreshes.
    let (b, _own_b) = store_instance(&shared, &new).await;
    assert!(is_active(&b, &rs, &token).await);
    let (client, _, body) = a.logged_in_user(None).await;
    let res = b.refresh(&client, str_field(&body, "refresh_token")).await;
    assert_eq!(res.status(), 200);
    // The old KEK alone no longer opens anything.
    let own = tempfile::tempdir().expect("tempdir");
    assert!(Application::build(
        validated(settings_on(&shared, &old, own.path())),
        Arc::new(shared.clock.clone())
    )
    .await
    .is_err());
    // A second rewrap has nothing to do.
    let (ok, out, err) = latchkey(&shared, &both, &["keys", "rewrap", "--json"]);
    assert!(ok, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).expect("json")["resealed"],
        0
    );
}
crate::both_backends!(a_second_kek_and_rewrap_rotate_the_kek);

async fn keys_import_keeps_every_token_valid(backend: Backend) {
    let Some(shared) = new_shared(backend).await else {
        return;
    };
    // A folder-mode deployment with a rotated folder and live tokens.
    let folder = spawn_instance(&shared, |_| {}).await;
    let dir = folder.settings.keys().dir.clone();
    let rs = folder.confidential_client().await;
    let old_access = cc_token(&folder, &rs).await;
    let (client, _, body) = folder.logged_in_user(Some("openid email")).await;
    let refresh = str_field(&body, "refresh_token").to_owned();
    let access = str_field(&body, "access_token").to_owned();
    // Mid-rotation: a second key published, not yet signing.
    let st = &folder.settings;
    let retention = latchkey::keys::manifest::Retention {
        token_ttl: st.access_token_ttl(),
        max_age: st.jwks_max_age(),
        leeway: st.leeway(),
    };
    let (next_kid, activates_at) = latchkey::keys::admin::rotate(
        &dir,
        st.key_spec(),
        folder.services.now(),
        Duration::seconds(600),
        retention,
    )
    .expect("rotates");
    assert!(folder.services.reload_keys().await.expect("reloads"));
    let folder_kids = jwks_kids(&folder).await;
    assert_eq!(folder_kids.len(), 2);

    let kek = generate_kek_text().expect("kek");
    let dir_arg = dir.display().to_string();
    let (ok, out, err) = latchkey(&shared, &kek, &["keys", "import", &dir_arg, "--json"]);
    assert!(ok, "{err}");
    let imported: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(imported["imported"].as_array().map(Vec::len), Some(2));

    // A store-mode instance: same kids and schedule, every token still valid.
    let (store, _own) = store_instance(&shared, &kek).await;
    assert_eq!(jwks_kids(&store).await, folder_kids);
    assert!(is_active(&store, &rs, &old_access).await);
    assert_eq!(store.get_bearer("/userinfo", &access).await.status(), 200);
    let res = store.refresh(&client, &refresh).await;
    assert_eq!(res.status(), 200);
    let (_, keys) = store.services.list_stored_keys().await.expect("lists");
    let next = keys
        .iter()
        .find(|k| k.entry.kid == next_kid)
        .expect("the next key");
    // (Stored to the millisecond.)
    assert_eq!(
        next.entry.activates_at.timestamp_millis(),
        activates_at.timestamp_millis()
    );
    // Both sides switch at the same moment: tokens signed by either verify
    // on the other.
    store.advance_clock(Duration::seconds(601));
    let on_store = cc_token(&store, &rs).await;
    let on_folder = cc_token(&folder, &rs).await;
    assert_eq!(kid_of(&on_store), next_kid);
    assert_eq!(kid_of(&on_folder), next_kid);
    assert!(is_active(&folder, &rs, &on_store).await);
    assert!(is_active(&store, &rs, &on_folder).await);
    // Importing again is refused: the store already has keys.
    let (ok, _, err) = latchkey(&shared, &kek, &["keys", "import", &dir_arg]);
    assert!(!ok);
    assert!(err.contains("already holds keys"), "{err}");
}
crate::both_backends!(keys_import_keeps_every_token_valid);

async fn a_store_instance_refuses_to_start_beside_an_unimported_folder(backend: Backend) {
    let Some(shared) = new_shared(backend).await else {
        return;
    };
    let folder = spawn_instance(&shared, |_| {}).await;
    let mut s = settings_on(
        &shared,
        &generate_kek_text().expect("kek"),
        shared.keys_dir.path(),
    );
    s.keys.dir = folder.settings.keys().dir.clone();
    let err = Application::build(validated(s), Arc::new(shared.clock.clone()))
        .await
        .err()
        .expect("refused");
    assert!(format!("{err:#}").contains("keys import"), "{err:#}");
}
crate::both_backends!(a_store_instance_refuses_to_start_beside_an_unimported_folder);

#[tokio::test]
async fn a_fresh_store_setup_creates_its_kek_file_private() {
    use std::os::unix::fs::PermissionsExt;
    let shared = new_shared(Backend::Sqlite).await.expect("sqlite");
    let own = tempfile::tempdir().expect("tempdir");
    let path = own.path().to_owned();
    let app = spawn_instance(&shared, move |s| {
        store_mode(s, "", &path);
        s.keys.kek = String::new().into();
    })
    .await;
    let kek_file = own.path().join("keys/master.key");
    let mode = std::fs::metadata(&kek_file)
        .expect("created")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(jwks_kids(&app).await.len(), 1);
    // A second instance on this machine reads the same file.
    let path = own.path().to_owned();
    let again = spawn_instance(&shared, move |s| {
        store_mode(s, "", &path);
        s.keys.kek = String::new().into();
    })
    .await;
    assert_eq!(jwks_kids(&again).await, jwks_kids(&app).await);
}

/// Client changes polled once a minute (the most the settings allow), so
/// that a poll noticing the test's own new client cannot empty the client
/// cache in the middle of an outage test.
fn quiet_client_poll(s: &mut RawSettings) {
    s.clients.change_poll_ms = 60_000;
}

/// With the store cut off, the ring in use stays: JWKS answers with the same
/// keys, tokens verify, a key still signs; the poll resumes afterwards.
async fn store_outage_keeps_jwks_and_verification(
    app: &TestApp,
    cut: impl FnOnce(),
    restore: impl FnOnce(),
) {
    let rs = app.confidential_client().await;
    let token = cc_token(app, &rs).await;
    // The instance polls every minute here (`quiet_client_poll`): noting the
    // version now keeps a poll from clearing the cache warmed below.
    app.services
        .poll_client_changes()
        .await
        .expect("the client version");
    // Warms the client cache, as traffic would have.
    app.services
        .verify_access_token(&token)
        .await
        .expect("verifies");
    let kids = jwks_kids(app).await;
    let version = app.keys.version();

    cut();
    assert!(
        app.services.reload_keys().await.is_err(),
        "the store is really out of reach"
    );
    assert_eq!(jwks_kids(app).await, kids);
    app.services
        .verify_access_token(&token)
        .await
        .expect("verifies during the outage");
    assert!(app.keys.signing_key(app.services.now()).is_ok());
    assert_eq!(app.keys.version(), version);

    restore();
    let mut reloaded = false;
    for _ in 0..50 {
        if app.services.reload_keys().await.is_ok() {
            reloaded = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(reloaded, "the poll works again once the store is back");
    assert_eq!(jwks_kids(app).await, kids);
}

#[tokio::test]
async fn postgres_outage_keeps_the_stored_ring_serving() {
    use crate::outage::{via_proxy, CuttableProxy};
    let Some(shared) = new_shared(Backend::Postgres).await else {
        return;
    };
    let real_url = shared.db.as_ref().expect("postgres").url.clone();
    let (upstream, _) = via_proxy(&real_url, 0);
    let proxy = CuttableProxy::start(upstream).await;
    let (_, proxied) = via_proxy(&real_url, proxy.port);
    let kek = generate_kek_text().expect("kek");
    let own = tempfile::tempdir().expect("tempdir");
    let path = own.path().to_owned();
    let app = spawn_instance(&shared, move |s| {
        store_mode(s, &kek, &path);
        quiet_client_poll(s);
        s.database.url = proxied.into();
        s.database.acquire_timeout_secs = 1;
    })
    .await;
    store_outage_keeps_jwks_and_verification(&app, || proxy.cut(), || proxy.restore()).await;
}

#[tokio::test]
async fn sqlite_outage_keeps_the_stored_ring_serving() {
    let shared = new_shared(Backend::Sqlite).await.expect("sqlite");
    let kek = generate_kek_text().expect("kek");
    let own = tempfile::tempdir().expect("tempdir");
    let path = own.path().to_owned();
    let app = spawn_instance(&shared, move |s| {
        store_mode(s, &kek, &path);
        quiet_client_poll(s);
        s.database.acquire_timeout_secs = 1;
    })
    .await;
    let file = shared.data_dir.path().join("latchkey.db");
    let away = shared.data_dir.path().join("latchkey.db.away");
    store_outage_keeps_jwks_and_verification(
        &app,
        || std::fs::rename(&file, &away).expect("move the database away"),
        || std::fs::rename(&away, &file).expect("bring it back"),
    )
    .await;
}
