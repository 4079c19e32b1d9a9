//! A client's life after registration, over HTTP: a secret rotated with an
//! overlap, a client suspended and re-enabled, changed and deleted; each
//! change audited, and honoured by every instance within the poll bound.

use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use latchkey::domain::client_lifecycle::ClientChanges;
use latchkey::domain::types::{ClientId, ClientKind, GrantType, Scope};
use latchkey::store::AuditEvent;
use serde_json::Value;

use crate::helpers::{new_shared, spawn_instance, str_field, Backend, TestApp, TestClient};
use crate::{app_or_skip, both_backends};

const PASSWORD: &str = "correct horse battery";

fn id(c: &TestClient) -> ClientId {
    ClientId::parse(&c.id).expect("client id")
}

async fn client_credentials(app: &TestApp, client: &TestClient) -> reqwest::Response {
    app.client
        .post(app.url("/oauth/token"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("request")
}

async fn status_of_client_credentials(app: &TestApp, client: &TestClient) -> u16 {
    client_credentials(app, client).await.status().as_u16()
}

async fn events(app: &TestApp) -> Vec<AuditEvent> {
    app.store.list_audit(None, None, 1000).await.expect("audit")
}

/// A confidential client that logs users in with the password grant,
/// refreshes, and uses client_credentials; plus a signed-up user.
async fn server_client_and_user(app: &TestApp) -> (TestClient, String) {
    let client = app
        .create_client(
            ClientKind::Confidential,
            &[
                GrantType::Password,
                GrantType::RefreshToken,
                GrantType::ClientCredentials,
            ],
            "openid email read",
            None,
        )
        .await;
    let email = format!("user-{}@example.com", uuid::Uuid::new_v4().simple());
    assert_eq!(app.signup(&email, PASSWORD).await.status(), 201);
    (client, email)
}

async fn password_login(app: &TestApp, client: &TestClient, email: &str) -> reqwest::Response {
    app.client
        .post(app.url("/oauth/token"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[
            ("grant_type", "password"),
            ("username", email),
            ("password", PASSWORD),
            ("scope", "openid email"),
        ])
        .send()
        .await
        .expect("request")
}

async fn confidential_refresh(app: &TestApp, client: &TestClient, rt: &str) -> reqwest::Response {
    app.client
        .post(app.url("/oauth/token"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
        .send()
        .await
        .expect("request")
}

async fn revoke(app: &TestApp, client: &TestClient, token: &str) -> reqwest::Response {
    app.client
        .post(app.url("/oauth/revoke"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("token", token)])
        .send()
        .await
        .expect("request")
}

async fn is_active(app: &TestApp, introspector: &TestClient, token: &str) -> bool {
    let res = app.introspect(introspector, token).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    body["active"].as_bool().expect("active")
}

async fn rotation_overlap_keeps_both_secrets_then_only_the_new_one(backend: Backend) {
    let app = app_or_skip!(backend);
    let old = app.confidential_client().await;
    assert_eq!(status_of_client_credentials(&app, &old).await, 200);

    let rotated = app
        .services
        .rotate_client_secret(id(&old), Duration::hours(1), "cli")
        .await
        .expect("rotated");
    let new = TestClient {
        id: old.id.clone(),
        secret: Some(rotated.secret.clone()),
    };
    assert_ne!(old.secret, new.secret);
    assert_eq!(status_of_client_credentials(&app, &old).await, 200);
    assert_eq!(status_of_client_credentials(&app, &new).await, 200);

    app.advance_clock(Duration::hours(1) + Duration::seconds(1));
    assert_eq!(status_of_client_credentials(&app, &old).await, 401);
    assert_eq!(status_of_client_credentials(&app, &new).await, 200);

    // The record names the actor and the overlap, never a secret.
    let evs = events(&app).await;
    let ev = evs
        .iter()
        .find(|e| e.kind == "client_secret_rotated")
        .expect("audited");
    let reason = ev.reason.as_deref().unwrap_or("");
    assert!(reason.contains("by cli"), "{reason}");
    assert!(!format!("{evs:?}").contains(&rotated.secret));
    assert!(!format!("{evs:?}").contains(old.secret.as_deref().expect("secret")));
}
both_backends!(rotation_overlap_keeps_both_secrets_then_only_the_new_one);

async fn rotation_without_overlap_ends_the_old_secret_and_an_older_one(backend: Backend) {
    let app = app_or_skip!(backend);
    let first = app.confidential_client().await;
    let second = app
        .services
        .rotate_client_secret(id(&first), Duration::hours(1), "cli")
        .await
        .expect("rotated");
    // A second rotation keeps only the secret it replaces: the first ends.
    let third = app
        .services
        .rotate_client_secret(id(&first), Duration::hours(1), "cli")
        .await
        .expect("rotated");
    let with = |s: &str| TestClient {
        id: first.id.clone(),
        secret: Some(s.to_owned()),
    };
    assert_eq!(status_of_client_credentials(&app, &first).await, 401);
    assert_eq!(
        status_of_client_credentials(&app, &with(&second.secret)).await,
        200
    );
    assert_eq!(
        status_of_client_credentials(&app, &with(&third.secret)).await,
        200
    );

    let fourth = app
        .services
        .rotate_client_secret(id(&first), Duration::zero(), "cli")
        .await
        .expect("rotated");
    assert!(fourth.previous_valid_until.is_none());
    assert_eq!(
        status_of_client_credentials(&app, &with(&third.secret)).await,
        401
    );
    assert_eq!(
        status_of_client_credentials(&app, &with(&second.secret)).await,
        401
    );
    assert_eq!(
        status_of_client_credentials(&app, &with(&fourth.secret)).await,
        200
    );

    // A public client has no secret to rotate.
    let public = app.public_client().await;
    assert!(app
        .services
        .rotate_client_secret(id(&public), Duration::zero(), "cli")
        .await
        .is_err());
}
both_backends!(rotation_without_overlap_ends_the_old_secret_and_an_older_one);

async fn a_disabled_client_is_refused_everywhere_and_its_tokens_are_inactive(backend: Backend) {
    let app = app_or_skip!(backend);
    let (client, email) = server_client_and_user(&app).await;
    let introspector = app.confidential_client().await;
    let login: Value = password_login(&app, &client, &email)
        .await
        .json()
        .await
        .expect("json");
    let access = str_field(&login, "access_token").to_owned();
    let refresh = str_field(&login, "refresh_token").to_owned();
    let cc: Value = client_credentials(&app, &client)
        .await
        .json()
        .await
        .expect("json");
    let cc_access = str_field(&cc, "access_token").to_owned();
    assert!(is_active(&app, &introspector, &access).await);
    assert!(is_active(&app, &introspector, &cc_access).await);

    app.services
        .set_client_disabled(id(&client), true, "cli")
        .await
        .expect("disabled");

    // Every grant, refresh, introspection and revocation call is refused.
    assert_eq!(password_login(&app, &client, &email).await.status(), 401);
    assert_eq!(status_of_client_credentials(&app, &client).await, 401);
    assert_eq!(
        confidential_refresh(&app, &client, &refresh).await.status(),
        401
    );
    assert_eq!(app.introspect(&client, &access).await.status(), 401);
    assert_eq!(revoke(&app, &client, &refresh).await.status(), 401);
    // Its live access tokens are inactive, and refused by userinfo and the
    // account API.
    assert!(!is_active(&app, &introspector, &access).await);
    assert!(!is_active(&app, &introspector, &cc_access).await);
    assert_eq!(app.get_bearer("/userinfo", &access).await.status(), 401);
    assert_eq!(
        app.get_bearer("/v1/account/sessions", &access)
            .await
            .status(),
        401
    );

    // Enabling undoes it: the same tokens work again.
    app.services
        .set_client_disabled(id(&client), false, "cli")
        .await
        .expect("enabled");
    assert!(is_active(&app, &introspector, &access).await);
    assert_eq!(app.get_bearer("/userinfo", &access).await.status(), 200);
    assert_eq!(
        confidential_refresh(&app, &client, &refresh).await.status(),
        200
    );
    assert_eq!(status_of_client_credentials(&app, &client).await, 200);

    let kinds: Vec<_> = events(&app)
        .await
        .into_iter()
        .filter(|e| e.client_id == Some(id(&client)))
        .map(|e| e.kind)
        .collect();
    assert!(kinds.contains(&"client_disabled".to_owned()), "{kinds:?}");
    assert!(kinds.contains(&"client_enabled".to_owned()), "{kinds:?}");
}
both_backends!(a_disabled_client_is_refused_everywhere_and_its_tokens_are_inactive);

async fn deleting_a_client_revokes_every_session_of_it(backend: Backend) {
    let app = app_or_skip!(backend);
    let (client, email) = server_client_and_user(&app).await;
    let introspector = app.confidential_client().await;
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let login: Value = password_login(&app, &client, &email)
            .await
            .json()
            .await
            .expect("json");
        tokens.push((
            str_field(&login, "access_token").to_owned(),
            str_field(&login, "refresh_token").to_owned(),
        ));
    }
    // Another client's session of the same user is untouched.
    let (other, _, other_login) = app.logged_in_user(None).await;

    let ended = app
        .services
        .delete_client(id(&client), "cli")
        .await
        .expect("deleted");
    assert_eq!(ended, 2);

    for (access, refresh) in &tokens {
        assert!(!is_active(&app, &introspector, access).await);
        assert_eq!(app.get_bearer("/userinfo", access).await.status(), 401);
        assert_eq!(
            confidential_refresh(&app, &client, refresh).await.status(),
            401
        );
    }
    assert_eq!(
        app.refresh(&other, str_field(&other_login, "refresh_token"))
            .await
            .status(),
        200
    );
    assert!(matches!(
        app.services.get_client(id(&client)).await,
        Err(latchkey::domain::error::DomainError::NotFound)
    ));
    let evs = events(&app).await;
    let ev = evs
        .iter()
        .find(|e| e.kind == "client_deleted")
        .expect("audited");
    assert_eq!(ev.client_id, Some(id(&client)));
    assert!(
        ev.reason
            .as_deref()
            .unwrap_or("")
            .contains("2 live sessions"),
        "{ev:?}"
    );
    // A second delete finds nothing.
    assert!(matches!(
        app.services.delete_client(id(&client), "cli").await,
        Err(latchkey::domain::error::DomainError::NotFound)
    ));
}
both_backends!(deleting_a_client_revokes_every_session_of_it);

async fn updating_a_client_changes_what_it_may_do_and_is_audited(backend: Backend) {
    let app = app_or_skip!(backend);
    let client = app.confidential_client().await;
    let scoped = |scope: &'static str| {
        let app = &app;
        let client = &client;
        async move {
            app.client
                .post(app.url("/oauth/token"))
                .basic_auth(&client.id, client.secret.as_deref())
                .form(&[("grant_type", "client_credentials"), ("scope", scope)])
                .send()
                .await
                .expect("request")
                .status()
                .as_u16()
        }
    };
    assert_eq!(scoped("write").await, 200);

    let updated = app
        .services
        .update_client(
            id(&client),
            ClientChanges {
                name: Some("renamed".into()),
                scopes: Some(Scope::parse("read").expect("scope")),
                audience: Some(Some("https://api.example".into())),
                ..ClientChanges::default()
            },
            "cli",
        )
        .await
        .expect("updated");
    assert_eq!(updated.name, "renamed");
    assert_eq!(scoped("write").await, 400);
    let res = client_credentials(&app, &client).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["scope"], "read");

    // A change registration would refuse changes nothing.
    let refused = app
        .services
        .update_client(
            id(&client),
            ClientChanges {
                grants: Some(vec![]),
                ..ClientChanges::default()
            },
            "cli",
        )
        .await;
    assert!(refused.is_err());
    let public = app.public_client().await;
    assert!(app
        .services
        .update_client(
            id(&public),
            ClientChanges {
                grants: Some(vec![GrantType::ClientCredentials]),
                ..ClientChanges::default()
            },
            "cli",
        )
        .await
        .is_err());
    assert_eq!(
        app.services
            .get_client(id(&client))
            .await
            .expect("c")
            .scopes,
        ["read"]
    );

    let evs = events(&app).await;
    let updates: Vec<_> = evs.iter().filter(|e| e.kind == "client_updated").collect();
    assert_eq!(updates.len(), 1, "{updates:?}");
    let reason = updates[0].reason.as_deref().unwrap_or("");
    assert!(reason.contains("by cli"), "{reason}");
    assert!(reason.contains("name") && reason.contains("scopes") && reason.contains("audience"));
}
both_backends!(updating_a_client_changes_what_it_may_do_and_is_audited);

async fn listing_pages_through_every_client_disabled_ones_too(backend: Backend) {
    let app = app_or_skip!(backend);
    let mut made = Vec::new();
    for _ in 0..5 {
        made.push(app.public_client().await.id);
    }
    app.services
        .set_client_disabled(ClientId::parse(&made[0]).expect("id"), true, "cli")
        .await
        .expect("disabled");
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = app.services.list_clients(after, 2).await.expect("page");
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        seen.extend(page.iter().map(|c| c.id.to_string()));
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "pages are in id order");
    for m in &made {
        assert!(seen.contains(m), "{m} listed");
    }
}
both_backends!(listing_pages_through_every_client_disabled_ones_too);

/// Polls (bounded) until `check` holds on `app`.
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < StdDuration::from_secs(10),
            "{what}: not seen within 10 s"
        );
        tokio::time::sleep(StdDuration::from_millis(25)).await;
    }
    eprintln!("{what} after {:?}", start.elapsed());
}

/// Disable, enable, delete and rotation made through one instance's
/// services are honoured by another instance on the same database within
/// the poll interval.
#[tokio::test]
async fn lifecycle_changes_on_one_instance_hold_on_the_other() {
    let Some(shared) = new_shared(Backend::Postgres).await else {
        return;
    };
    let fast_poll = |s: &mut latchkey::config::RawSettings| s.clients.change_poll_ms = 100;
    let a = spawn_instance(&shared, fast_poll).await;
    let b = spawn_instance(&shared, fast_poll).await;
    let (client, email) = server_client_and_user(&a).await;
    let introspector = a.confidential_client().await;
    let login: Value = password_login(&b, &client, &email)
        .await
        .json()
        .await
        .expect("json");
    let access = str_field(&login, "access_token").to_owned();
    assert_eq!(status_of_client_credentials(&b, &client).await, 200);
    assert!(is_active(&b, &introspector, &access).await);
    let (on_b, old) = (&b, &client);

    a.services
        .set_client_disabled(id(&client), true, "cli")
        .await
        .expect("disabled");
    until("disable on b", || async move {
        status_of_client_credentials(on_b, old).await == 401
    })
    .await;
    assert!(!is_active(&b, &introspector, &access).await);

    a.services
        .set_client_disabled(id(&client), false, "cli")
        .await
        .expect("enabled");
    until("enable on b", || async move {
        status_of_client_credentials(on_b, old).await == 200
    })
    .await;
    assert!(is_active(&b, &introspector, &access).await);

    let rotated = a
        .services
        .rotate_client_secret(id(&client), Duration::zero(), "cli")
        .await
        .expect("rotated");
    until("rotation on b", || async move {
        status_of_client_credentials(on_b, old).await == 401
    })
    .await;
    let new = TestClient {
        id: client.id.clone(),
        secret: Some(rotated.secret),
    };
    assert_eq!(status_of_client_credentials(&b, &new).await, 200);
    let new_ref = &new;

    a.services
        .delete_client(id(&client), "cli")
        .await
        .expect("deleted");
    until("delete on b", || async move {
        status_of_client_credentials(on_b, new_ref).await == 401
    })
    .await;
    assert!(!is_active(&b, &introspector, &access).await);
}

/// Logins in flight while the client is deleted: each gets a clean answer
/// (tokens, or the contract's error), never a 500, and no token handed out
/// survives the delete.
async fn logins_racing_a_client_delete_get_clean_answers_and_no_usable_token(backend: Backend) {
    let app = app_or_skip!(backend);
    let (client, email) = server_client_and_user(&app).await;
    let introspector = app.confidential_client().await;
    let logins = futures_util::future::join_all((0..24).map(|_| async {
        let res = password_login(&app, &client, &email).await;
        let status = res.status().as_u16();
        let body: Value = res.json().await.expect("json");
        (status, body)
    }));
    // Some logins are past client authentication and waiting for a hashing
    // slot when the delete commits.
    let delete = async {
        tokio::time::sleep(StdDuration::from_millis(20)).await;
        app.services
            .delete_client(id(&client), "cli")
            .await
            .expect("deleted")
    };
    let (logins, _) = tokio::join!(logins, delete);

    let mut issued = Vec::new();
    for (status, body) in logins {
        match status {
            200 => issued.push((
                str_field(&body, "access_token").to_owned(),
                str_field(&body, "refresh_token").to_owned(),
            )),
            // Failed client authentications count against the address.
            400 | 401 | 429 => assert!(
                matches!(
                    body["error"].as_str(),
                    Some("invalid_client" | "invalid_grant" | "too_many_requests")
                ),
                "{body}"
            ),
            other => panic!("a login racing the delete got {other}: {body}"),
        }
    }
    for (access, refresh) in &issued {
        assert!(!is_active(&app, &introspector, access).await);
        assert_eq!(
            confidential_refresh(&app, &client, refresh).await.status(),
            401
        );
    }
}
both_backends!(logins_racing_a_client_delete_get_clean_answers_and_no_usable_token);
