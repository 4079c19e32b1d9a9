//! N simultaneous refreshes with one token: the database lets exactly one
//! rotate; nobody gets a 5xx.

use std::sync::Arc;

use futures_util::future::join_all;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::sid_of;
use crate::helpers::{new_shared, spawn_instance, str_field, Backend, TestApp, TestClient};

const RACERS: usize = 32;

async fn race(apps: &[Arc<TestApp>], client: &TestClient, rt: &str) -> Vec<(u16, Value)> {
    let futures = (0..RACERS).map(|i| {
        let app = apps[i % apps.len()].clone();
        let client = client.clone();
        let rt = rt.to_owned();
        async move {
            let res = app.refresh(&client, &rt).await;
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    });
    join_all(futures).await
}

async fn assert_race_within_grace(apps: &[Arc<TestApp>]) {
    let (client, _, login) = apps[0].logged_in_user(None).await;
    let sid = sid_of(str_field(&login, "access_token"));
    let results = race(apps, &client, str_field(&login, "refresh_token")).await;

    assert!(
        results.iter().all(|(s, _)| *s == 200),
        "statuses: {:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    let first = &results[0].1["refresh_token"];
    assert!(
        results.iter().all(|(_, b)| &b["refresh_token"] == first),
        "the family forked"
    );
    let session = apps[0]
        .store
        .find_session(sid)
        .await
        .expect("store")
        .expect("session");
    assert_eq!(session.generation, 1, "exactly one rotation");
}

async fn assert_race_outside_grace(apps: &[Arc<TestApp>]) {
    let (client, _, login) = apps[0].logged_in_user(None).await;
    let sid = sid_of(str_field(&login, "access_token"));
    let results = race(apps, &client, str_field(&login, "refresh_token")).await;

    assert!(results.iter().all(|(s, _)| *s < 500), "a racer got a 5xx");
    let winners: Vec<_> = results.iter().filter(|(s, _)| *s == 200).collect();
    assert_eq!(winners.len(), 1, "exactly one racer rotates");
    assert!(results
        .iter()
        .filter(|(s, _)| *s != 200)
        .all(|(s, b)| *s == 400 && b["error"] == "invalid_grant"));
    let session = apps[0]
        .store
        .find_session(sid)
        .await
        .expect("store")
        .expect("session");
    assert_eq!(session.generation, 1, "exactly one rotation");
    assert!(session.revoked_at.is_some(), "reuse revoked the family");
    let audit = apps[0]
        .store
        .list_audit(None, None, 1000)
        .await
        .expect("audit");
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.kind == "refresh_token_reused")
            .count(),
        1,
        "one audit record per family revocation"
    );
}

async fn concurrent_refreshes_within_grace_share_one_rotation(backend: Backend) {
    let Some(shared) = new_shared(backend).await else {
        return;
    };
    let app = Arc::new(spawn_instance(&shared, |s| s.database.max_connections = 16).await);
    assert_race_within_grace(&[app]).await;
}
both_backends!(concurrent_refreshes_within_grace_share_one_rotation);

async fn concurrent_refreshes_without_grace_rotate_once_and_revoke(backend: Backend) {
    let Some(shared) = new_shared(backend).await else {
        return;
    };
    let app = Arc::new(spawn_instance(&shared, |s| s.tokens.refresh_grace_secs = 0).await);
    assert_race_outside_grace(&[app]).await;
}
both_backends!(concurrent_refreshes_without_grace_rotate_once_and_revoke);

#[tokio::test]
async fn concurrent_refreshes_across_two_instances_on_postgres() {
    let Some(shared) = new_shared(Backend::Postgres).await else {
        return;
    };
    let a = Arc::new(spawn_instance(&shared, |_| {}).await);
    let b = Arc::new(spawn_instance(&shared, |_| {}).await);
    assert_race_within_grace(&[a.clone(), b.clone()]).await;

    let Some(shared) = new_shared(Backend::Postgres).await else {
        return;
    };
    let a = Arc::new(spawn_instance(&shared, |s| s.tokens.refresh_grace_secs = 0).await);
    let b = Arc::new(spawn_instance(&shared, |s| s.tokens.refresh_grace_secs = 0).await);
    assert_race_outside_grace(&[a, b]).await;
}

#[tokio::test]
async fn a_refresh_token_from_one_instance_works_on_another() {
    let Some(shared) = new_shared(Backend::Postgres).await else {
        return;
    };
    let a = spawn_instance(&shared, |_| {}).await;
    let b = spawn_instance(&shared, |_| {}).await;
    let (client, _, login) = a.logged_in_user(None).await;
    let res = b.refresh(&client, str_field(&login, "refresh_token")).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    let res = a.refresh(&client, str_field(&body, "refresh_token")).await;
    assert_eq!(res.status(), 200);
    let res = a
        .get_bearer("/userinfo", str_field(&body, "access_token"))
        .await;
    assert_eq!(res.status(), 200);
}
