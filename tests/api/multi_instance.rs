//! Three instances on one PostgreSQL database and one keys folder behave as
//! one server: a mixed workload in round robin (sign-up, login, refresh
//! chains that hop between instances, revocation and logout on one instance
//! seen by introspection on another, a key rotation mid-run) with no error
//! and no lost session.

use chrono::Duration;
use latchkey::domain::types::SessionId;
use latchkey::keys::{admin, manifest::Retention};
use serde_json::{json, Value};

use crate::helpers::{kid_of, sid_of};
use crate::helpers::{new_shared, spawn_instance, str_field, Backend, TestApp, TestClient};

const INSTANCES: usize = 3;
const USERS: usize = 6;
const ROUNDS: usize = 6;
/// The round before which the key rotation happens.
const ROTATION_ROUND: usize = 3;

/// One user's session as the workload sees it.
struct Chain {
    sid: SessionId,
    refresh_token: String,
    access_token: String,
    refreshes: i64,
    ended: bool,
}

async fn active(app: &TestApp, rs: &TestClient, token: &str) -> bool {
    let res = app.introspect(rs, token).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    body["active"].as_bool().expect("active")
}

async fn tokens(res: reqwest::Response) -> Value {
    assert_eq!(res.status(), 200, "a request of the workload failed");
    res.json().await.expect("json")
}

/// Publishes a new key in the shared folder, has every instance re-read it
/// (as each does by itself within `keys.reload_interval_secs`), and moves
/// the shared clock past its activation. Returns the new kid.
fn rotate_keys(apps: &[TestApp]) -> String {
    let s = &apps[0].settings;
    let retention = Retention {
        token_ttl: s.access_token_ttl(),
        max_age: s.jwks_max_age(),
        leeway: s.leeway(),
    };
    let delay = s.jwks_max_age() * 2;
    let (kid, _) = admin::rotate(
        &s.keys().dir,
        s.key_spec(),
        apps[0].services.now(),
        delay,
        retention,
    )
    .expect("rotates");
    for app in apps {
        // The background reload may have been first; either way the new
        // ring is in place after this.
        app.keys.reload().expect("reloads");
    }
    apps[0].advance_clock(delay + Duration::seconds(1));
    kid
}

async fn sign_up_and_log_in(apps: &[TestApp], client: &TestClient) -> Vec<Chain> {
    let mut chains = Vec::new();
    for u in 0..USERS {
        let email = format!("user{u}-{}@example.com", uuid::Uuid::new_v4().simple());
        let res = apps[u % INSTANCES]
            .signup(&email, "correct horse battery")
            .await;
        assert_eq!(res.status(), 201);
        let login = apps[(u + 1) % INSTANCES]
            .login(client, &email, "correct horse battery", None)
            .await;
        let body = tokens(login).await;
        let access_token = str_field(&body, "access_token").to_owned();
        chains.push(Chain {
            sid: sid_of(&access_token),
            refresh_token: str_field(&body, "refresh_token").to_owned(),
            access_token,
            refreshes: 0,
            ended: false,
        });
    }
    chains
}

#[tokio::test]
async fn three_instances_on_one_database_behave_as_one_server() {
    let Some(shared) = new_shared(Backend::Postgres).await else {
        return;
    };
    let mut apps = Vec::new();
    for _ in 0..INSTANCES {
        apps.push(spawn_instance(&shared, |_| {}).await);
    }
    let client = apps[0].public_client().await;
    let rs = apps[1].confidential_client().await;
    let mut chains = sign_up_and_log_in(&apps, &client).await;
    let old_kid = kid_of(&chains[0].access_token);
    let mut new_kid = None;

    for round in 0..ROUNDS {
        if round == ROTATION_ROUND {
            new_kid = Some(rotate_keys(&apps));
            for (u, chain) in chains.iter().enumerate().filter(|(_, c)| !c.ended) {
                assert_eq!(kid_of(&chain.access_token), old_kid);
                let verifier = &apps[u % INSTANCES];
                assert!(
                    active(verifier, &rs, &chain.access_token).await,
                    "a token signed before the rotation still verifies"
                );
            }
        }
        for (u, chain) in chains.iter_mut().enumerate().filter(|(_, c)| !c.ended) {
            let app = &apps[(round + u) % INSTANCES];
            let body = tokens(app.refresh(&client, &chain.refresh_token).await).await;
            chain.refresh_token = str_field(&body, "refresh_token").to_owned();
            chain.access_token = str_field(&body, "access_token").to_owned();
            chain.refreshes += 1;
            let verifier = &apps[(round + u + 1) % INSTANCES];
            assert!(active(verifier, &rs, &chain.access_token).await);
            assert!(active(verifier, &rs, &chain.refresh_token).await);
        }
        if round == 1 {
            // RFC 7009 revocation on one instance, seen by the others at once.
            let c = &mut chains[0];
            let res = apps[0]
                .client
                .post(apps[0].url("/oauth/revoke"))
                .form(&[
                    ("token", c.refresh_token.as_str()),
                    ("client_id", &client.id),
                ])
                .send()
                .await
                .expect("request");
            assert_eq!(res.status(), 200);
            assert!(!active(&apps[1], &rs, &c.access_token).await);
            assert!(!active(&apps[2], &rs, &c.refresh_token).await);
            let res = apps[2].refresh(&client, &c.refresh_token).await;
            assert_eq!(res.status(), 400);
            c.ended = true;
        }
        if round == ROTATION_ROUND + 1 {
            // Logout on one instance, seen by the others at once.
            let c = &mut chains[1];
            let res = apps[1]
                .client
                .post(apps[1].url("/v1/logout"))
                .json(&json!({ "refresh_token": c.refresh_token }))
                .send()
                .await
                .expect("request");
            assert_eq!(res.status(), 204);
            assert!(!active(&apps[2], &rs, &c.access_token).await);
            assert!(!active(&apps[0], &rs, &c.refresh_token).await);
            c.ended = true;
        }
    }

    let new_kid = new_kid.expect("the run rotated the keys");
    assert_ne!(new_kid, old_kid);
    for (u, chain) in chains.iter().enumerate() {
        let session = apps[u % INSTANCES]
            .store
            .find_session(chain.sid)
            .await
            .expect("store")
            .expect("no session is lost");
        assert_eq!(session.revoked_at.is_some(), chain.ended, "user {u}");
        assert_eq!(
            session.generation, chain.refreshes,
            "one rotation per refresh"
        );
        if !chain.ended {
            assert_eq!(
                kid_of(&chain.access_token),
                new_kid,
                "signed by the new key"
            );
            for app in &apps {
                assert!(active(app, &rs, &chain.access_token).await);
                let res = app.get_bearer("/userinfo", &chain.access_token).await;
                assert_eq!(res.status(), 200);
            }
        }
    }
    let audit = apps[2]
        .store
        .list_audit(None, None, 1000)
        .await
        .expect("audit");
    let count = |kind: &str| audit.iter().filter(|e| e.kind == kind).count();
    assert_eq!(count("user_signed_up"), USERS);
    assert_eq!(count("login_succeeded"), USERS);
    assert_eq!(count("session_revoked"), 2);
    assert_eq!(count("refresh_token_reused"), 0);
}
