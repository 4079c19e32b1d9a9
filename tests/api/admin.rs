//! The admin API over HTTP: each endpoint end to end with an admin client's
//! token, every kind of caller that must be refused, paging under concurrent
//! inserts, audit records naming the admin client, and the OpenAPI document
//! held to the routes the server registers.

use std::collections::{BTreeSet, HashSet};

use chrono::Duration;
use latchkey::domain::clients::NewClient;
use latchkey::domain::types::{ClientId, ClientKind, GrantType, Scope, UserId};
use latchkey::store::{AuditEvent, UserRecord};
use reqwest::Method;
use serde_json::{json, Value};

use crate::dpop::signer::ProofKey;
use crate::dpop::{htu, now};
use crate::helpers::{str_field, Backend, TestApp, TestClient};
use crate::{app_or_skip, both_backends};

const PASSWORD: &str = "correct horse battery";

/// A client created as `clients create --admin` does (also allowed the
/// password grant, to show that a user's token of it gets no admin scope).
async fn admin_client(app: &TestApp) -> TestClient {
    let created = app
        .services
        .create_client(NewClient {
            name: "ops automation".into(),
            kind: ClientKind::Confidential,
            grants: vec![GrantType::ClientCredentials, GrantType::Password],
            scopes: Scope::parse("openid read").expect("scope"),
            audience: None,
            cookie_mode: false,
            origins: vec![],
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            first_party: false,
            introspect: false,
            require_dpop: false,
            admin: true,
            key_source: None,
        })
        .await
        .expect("admin client");
    TestClient {
        id: created.client.id.to_string(),
        secret: created.secret,
    }
}

async fn client_credentials(
    app: &TestApp,
    c: &TestClient,
    scope: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    app.client
        .post(app.url("/oauth/token"))
        .basic_auth(&c.id, c.secret.as_deref())
        .form(&form)
        .send()
        .await
        .expect("request")
}

async fn token_of(app: &TestApp, c: &TestClient, scope: Option<&str>) -> String {
    let res = client_credentials(app, c, scope).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    str_field(&body, "access_token").to_owned()
}

/// An admin client and a token carrying `latchkey:admin`.
async fn admin(app: &TestApp) -> (TestClient, String) {
    let c = admin_client(app).await;
    let token = token_of(app, &c, Some("latchkey:admin")).await;
    (c, token)
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.expect("request")
}

async fn json_of(res: reqwest::Response, status: u16) -> Value {
    let got = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "{body}");
    body
}

/// Asserts the contract's error shape and returns the code.
async fn error_of(res: reqwest::Response, status: u16) -> String {
    let body = json_of(res, status).await;
    assert!(body["error_description"].is_string(), "{body}");
    str_field(&body, "error").to_owned()
}

async fn events(app: &TestApp) -> Vec<AuditEvent> {
    app.store.list_audit(None, None, 1000).await.expect("audit")
}

fn has_event(events: &[AuditEvent], kind: &str, reason_has: &str) -> bool {
    events
        .iter()
        .any(|e| e.kind == kind && e.reason.as_deref().is_some_and(|r| r.contains(reason_has)))
}

async fn is_active(app: &TestApp, introspector: &TestClient, token: &str) -> bool {
    let body = json_of(app.introspect(introspector, token).await, 200).await;
    body["active"].as_bool().expect("active")
}

fn create_body(name: &str) -> Value {
    json!({
        "name": name,
        "kind": "confidential",
        "grants": ["client_credentials"],
        "scopes": ["read", "write"],
    })
}

async fn clients_are_managed_end_to_end(backend: Backend) {
    let app = app_or_skip!(backend);
    let (admin, token) = admin(&app).await;
    let actor = format!("admin:{}", admin.id);

    // Create: the secret is in this answer only.
    let res = call(
        &app,
        Method::POST,
        "/admin/v1/clients",
        &token,
        Some(create_body("billing")),
    )
    .await;
    let location = res
        .headers()
        .get("Location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let created = json_of(res, 201).await;
    let id = str_field(&created, "client_id").to_owned();
    assert_eq!(
        location.as_deref(),
        Some(format!("/admin/v1/clients/{id}").as_str())
    );
    let secret = str_field(&created, "client_secret").to_owned();
    assert!(secret.starts_with("lk_cs_"));
    assert_eq!(created["admin"], false);
    let billing = TestClient {
        id: id.clone(),
        secret: Some(secret.clone()),
    };
    assert_eq!(
        client_credentials(&app, &billing, Some("read"))
            .await
            .status(),
        200
    );

    // Get and list: never a secret or a digest.
    let path = format!("/admin/v1/clients/{id}");
    let shown = json_of(call(&app, Method::GET, &path, &token, None).await, 200).await;
    assert_eq!(shown["name"], "billing");
    assert_eq!(shown["scopes"], json!(["read", "write"]));
    let text = shown.to_string();
    assert!(
        !text.contains(&secret) && !text.contains("secret_hash"),
        "{text}"
    );
    let listed = json_of(
        call(&app, Method::GET, "/admin/v1/clients", &token, None).await,
        200,
    )
    .await;
    let ids: Vec<&str> = listed["clients"]
        .as_array()
        .expect("clients")
        .iter()
        .map(|c| str_field(c, "client_id"))
        .collect();
    assert!(
        ids.contains(&id.as_str()) && ids.contains(&admin.id.as_str()),
        "{listed}"
    );
    assert!(!listed.to_string().contains("lk_cs_"));

    // Patch: only the given fields change; the narrowed scope holds at once.
    let patched = json_of(
        call(
            &app,
            Method::PATCH,
            &path,
            &token,
            Some(json!({"name": "billing-v2", "scopes": ["read"]})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        (patched["name"].clone(), patched["scopes"].clone()),
        (json!("billing-v2"), json!(["read"]))
    );
    assert_eq!(patched["grants"], json!(["client_credentials"]));
    assert_eq!(
        client_credentials(&app, &billing, Some("write"))
            .await
            .status(),
        400
    );

    // Rotate with an overlap: both secrets work, then only the new one.
    let rotated = json_of(
        call(
            &app,
            Method::POST,
            &format!("{path}/rotate-secret"),
            &token,
            Some(json!({"overlap_secs": 3600})),
        )
        .await,
        200,
    )
    .await;
    assert!(rotated["previous_secret_valid_until"].is_string());
    let renewed = TestClient {
        id: id.clone(),
        secret: Some(str_field(&rotated, "client_secret").to_owned()),
    };
    assert_ne!(renewed.secret, billing.secret);
    assert_eq!(client_credentials(&app, &billing, None).await.status(), 200);
    assert_eq!(client_credentials(&app, &renewed, None).await.status(), 200);
    app.advance_clock(Duration::hours(2));
    assert_eq!(client_credentials(&app, &billing, None).await.status(), 401);
    assert_eq!(client_credentials(&app, &renewed, None).await.status(), 200);
    // The admin token is long expired by now: take a fresh one.
    let token = token_of(&app, &admin, Some("latchkey:admin")).await;

    // Disable refuses the client; enable undoes it.
    let disable = call(&app, Method::POST, &format!("{path}/disable"), &token, None).await;
    assert_eq!(disable.status(), 204);
    assert_eq!(client_credentials(&app, &renewed, None).await.status(), 401);
    let shown = json_of(call(&app, Method::GET, &path, &token, None).await, 200).await;
    assert_eq!(shown["disabled"], true);
    let enable = call(&app, Method::POST, &format!("{path}/enable"), &token, None).await;
    assert_eq!(enable.status(), 204);
    assert_eq!(client_credentials(&app, &renewed, None).await.status(), 200);

    // Delete: gone, and its secret with it.
    let deleted = json_of(call(&app, Method::DELETE, &path, &token, None).await, 200).await;
    assert_eq!(deleted["deleted"], true);
    assert_eq!(
        error_of(call(&app, Method::GET, &path, &token, None).await, 404).await,
        "not_found"
    );
    assert_eq!(client_credentials(&app, &renewed, None).await.status(), 401);

    // Every change names the admin client, as the CLI's name `cli`.
    let log = events(&app).await;
    for kind in [
        "client_created",
        "client_updated",
        "client_secret_rotated",
        "client_disabled",
        "client_enabled",
        "client_deleted",
    ] {
        assert!(has_event(&log, kind, &actor), "{kind} by {actor}");
    }
    assert!(log
        .iter()
        .all(|e| !e.reason.as_deref().unwrap_or_default().contains("lk_cs_")));
}
both_backends!(clients_are_managed_end_to_end);

/// A public client, a user and their token response.
async fn user_session(app: &TestApp) -> (TestClient, String, Value) {
    app.logged_in_user(Some("openid email")).await
}

async fn deleting_a_client_revokes_its_sessions(backend: Backend) {
    let app = app_or_skip!(backend);
    let (_, token) = admin(&app).await;
    let (client, _, tokens) = user_session(&app).await;
    let rt = str_field(&tokens, "refresh_token");

    let deleted = json_of(
        call(
            &app,
            Method::DELETE,
            &format!("/admin/v1/clients/{}", client.id),
            &token,
            None,
        )
        .await,
        200,
    )
    .await;

    assert_eq!(deleted["sessions_ended"], 1);
    let refresh = app.refresh(&client, rt).await;
    assert!(
        matches!(refresh.status().as_u16(), 400 | 401),
        "{}",
        refresh.status()
    );
    let access = str_field(&tokens, "access_token");
    assert_eq!(app.get_bearer("/userinfo", access).await.status(), 401);
}
both_backends!(deleting_a_client_revokes_its_sessions);

async fn disabling_a_client_makes_its_live_tokens_inactive(backend: Backend) {
    let app = app_or_skip!(backend);
    let (_, token) = admin(&app).await;
    let introspector = app.confidential_client().await;
    let worker = app
        .create_client(
            ClientKind::Confidential,
            &[GrantType::ClientCredentials],
            "read",
            None,
        )
        .await;
    let live = token_of(&app, &worker, None).await;
    assert!(is_active(&app, &introspector, &live).await);

    let res = call(
        &app,
        Method::POST,
        &format!("/admin/v1/clients/{}/disable", worker.id),
        &token,
        None,
    )
    .await;

    assert_eq!(res.status(), 204);
    assert!(!is_active(&app, &introspector, &live).await);
}
both_backends!(disabling_a_client_makes_its_live_tokens_inactive);

async fn users_are_listed_searched_and_managed(backend: Backend) {
    let app = app_or_skip!(backend);
    let (admin, token) = admin(&app).await;
    let actor = format!("admin:{}", admin.id);
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let (client, email, tokens) = app.logged_in_user(Some("openid")).await;
    for other in [
        format!("ann-{tag}@example.com"),
        format!("anne-{tag}@example.org"),
    ] {
        assert_eq!(app.signup(&other, PASSWORD).await.status(), 201);
    }

    // Search by prefix, case-insensitively; a whole address finds one user.
    let search = |q: String| {
        let app = &app;
        let token = token.clone();
        async move {
            let url = format!("/admin/v1/users?email={}", urlencode(&q));
            let body = json_of(call(app, Method::GET, &url, &token, None).await, 200).await;
            body["users"]
                .as_array()
                .expect("users")
                .iter()
                .map(|u| str_field(u, "email").to_owned())
                .collect::<BTreeSet<_>>()
        }
    };
    assert_eq!(search(format!("ANN-{tag}")).await.len(), 1);
    assert_eq!(search("ann".into()).await.len(), 2);
    assert_eq!(
        search(email.to_uppercase()).await,
        BTreeSet::from([email.clone()])
    );
    assert!(search(format!("nobody-{tag}")).await.is_empty());
    // `%` and `_` are no wildcards.
    assert!(search("%".into()).await.is_empty());
    assert!(search("_".into()).await.is_empty());

    // Get: the opaque id, never a password hash.
    let id = app
        .store
        .find_user_by_email(&email)
        .await
        .expect("find")
        .expect("user")
        .id
        .to_string();
    let path = format!("/admin/v1/users/{id}");
    let shown = json_of(call(&app, Method::GET, &path, &token, None).await, 200).await;
    assert_eq!(
        (shown["id"].clone(), shown["email"].clone()),
        (json!(id), json!(email))
    );
    let text = shown.to_string();
    assert!(
        !text.contains("argon2") && !text.contains("password"),
        "{text}"
    );

    // Revoke sessions: the refresh token fails afterwards.
    let revoked = json_of(
        call(
            &app,
            Method::POST,
            &format!("{path}/revoke-sessions"),
            &token,
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(revoked["revoked"], 1);
    assert_eq!(
        app.refresh(&client, str_field(&tokens, "refresh_token"))
            .await
            .status(),
        400
    );

    // Disable: no login; enable: login again.
    assert_eq!(
        call(&app, Method::POST, &format!("{path}/disable"), &token, None)
            .await
            .status(),
        204
    );
    let shown = json_of(call(&app, Method::GET, &path, &token, None).await, 200).await;
    assert_eq!(shown["disabled"], true);
    assert_eq!(
        app.login(&client, &email, PASSWORD, None).await.status(),
        400
    );
    assert_eq!(
        call(&app, Method::POST, &format!("{path}/enable"), &token, None)
            .await
            .status(),
        204
    );
    assert_eq!(
        app.login(&client, &email, PASSWORD, None).await.status(),
        200
    );

    // Unknown or malformed ids are 404.
    for missing in [uuid::Uuid::new_v4().to_string(), "not-a-uuid".into()] {
        let res = call(
            &app,
            Method::POST,
            &format!("/admin/v1/users/{missing}/disable"),
            &token,
            None,
        )
        .await;
        assert_eq!(error_of(res, 404).await, "not_found");
    }

    let log = events(&app).await;
    for kind in ["sessions_revoked", "user_disabled", "user_enabled"] {
        assert!(has_event(&log, kind, &actor), "{kind} by {actor}");
    }
}
both_backends!(users_are_listed_searched_and_managed);

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Walks `path` page by page, returning the ids in order.
async fn walk(
    app: &TestApp,
    token: &str,
    path: &str,
    list: &str,
    id: &str,
    limit: u32,
) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}?limit={limit}&cursor={c}"),
            None => format!("{path}?limit={limit}"),
        };
        let body = json_of(call(app, Method::GET, &url, token, None).await, 200).await;
        let page = body[list].as_array().expect("page");
        assert!(page.len() <= limit as usize);
        ids.extend(page.iter().map(|r| str_field(r, id).to_owned()));
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return ids,
        }
    }
}

async fn paging_walks_every_client_once_while_clients_are_added(backend: Backend) {
    let app = app_or_skip!(backend);
    let (admin, token) = admin(&app).await;
    let mut before = vec![admin.id.clone()];
    for i in 0..23 {
        // Some share a creation time, so the id breaks ties.
        if i % 3 == 0 {
            app.advance_clock(Duration::milliseconds(5));
        }
        let c = app
            .create_client(
                ClientKind::Confidential,
                &[GrantType::ClientCredentials],
                "read",
                None,
            )
            .await;
        before.push(c.id);
    }
    let services = app.services.clone();
    let adding = tokio::spawn(async move {
        for _ in 0..20 {
            services
                .create_client(NewClient {
                    name: "late".into(),
                    kind: ClientKind::Public,
                    grants: vec![GrantType::Password],
                    scopes: Scope::default(),
                    audience: None,
                    cookie_mode: false,
                    origins: vec![],
                    redirect_uris: vec![],
                    post_logout_redirect_uris: vec![],
                    first_party: false,
                    introspect: false,
                    require_dpop: false,
                    admin: false,
                    key_source: None,
                })
                .await
                .expect("client");
        }
    });

    let seen = walk(&app, &token, "/admin/v1/clients", "clients", "client_id", 4).await;
    adding.await.expect("task");

    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a client was served twice");
    for id in &before {
        assert!(unique.contains(id), "client {id} was skipped");
    }
    // After the inserts, a fresh walk sees every client exactly once.
    let all = walk(&app, &token, "/admin/v1/clients", "clients", "client_id", 7).await;
    assert_eq!(all.len(), before.len() + 20);
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), all.len());
}
both_backends!(paging_walks_every_client_once_while_clients_are_added);

fn stored_user(email: &str) -> UserRecord {
    UserRecord {
        id: UserId::new_random(),
        email: email.to_owned(),
        password_hash: "$argon2id$unused".into(),
        disabled: false,
        credentials_version: 0,
        email_verified: false,
        created_at: chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("time"),
    }
}

async fn paging_walks_every_user_once_while_users_sign_up(backend: Backend) {
    let app = app_or_skip!(backend);
    let (_, token) = admin(&app).await;
    let mut before = Vec::new();
    for i in 0..17 {
        let u = stored_user(&format!("page-{i}@example.com"));
        app.store.insert_user(&u).await.expect("user");
        before.push(u.id.to_string());
    }
    let store = app.store.clone();
    let adding = tokio::spawn(async move {
        for i in 0..15 {
            store
                .insert_user(&stored_user(&format!("late-{i}@example.com")))
                .await
                .expect("user");
        }
    });

    let seen = walk(&app, &token, "/admin/v1/users", "users", "id", 3).await;
    adding.await.expect("task");

    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a user was served twice");
    for id in &before {
        assert!(unique.contains(id), "user {id} was skipped");
    }
    // The search pages too, and a page's cursor carries on within it.
    let url = "/admin/v1/users?email=page-&limit=5";
    let first = json_of(call(&app, Method::GET, url, &token, None).await, 200).await;
    assert_eq!(first["users"].as_array().expect("users").len(), 5);
    let cursor = str_field(&first, "next_cursor");
    let rest = json_of(
        call(
            &app,
            Method::GET,
            &format!("/admin/v1/users?email=page-&limit=200&cursor={cursor}"),
            &token,
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(rest["users"].as_array().expect("users").len(), 12);
    assert!(rest["next_cursor"].is_null());
}
both_backends!(paging_walks_every_user_once_while_users_sign_up);

async fn callers_without_the_admin_scope_are_refused(backend: Backend) {
    let app = app_or_skip!(backend);
    let (admin, good) = admin(&app).await;
    let path = "/admin/v1/clients";
    assert_eq!(
        call(&app, Method::GET, path, &good, None).await.status(),
        200
    );

    // No token: 401 with a challenge.
    let res = app.client.get(app.url(path)).send().await.expect("request");
    let www = res
        .headers()
        .get("WWW-Authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(www.starts_with("Bearer"), "{www}");
    assert_eq!(error_of(res, 401).await, "invalid_token");

    // The admin client's own token without the scope: 403 insufficient_scope.
    let narrow = token_of(&app, &admin, Some("read")).await;
    let res = call(&app, Method::GET, path, &narrow, None).await;
    let www = res
        .headers()
        .get("WWW-Authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(www.contains("insufficient_scope"), "{www}");
    assert_eq!(error_of(res, 403).await, "insufficient_scope");

    // A user's token; and the admin client's own password grant cannot
    // put the scope in one.
    let (_, _, user) = app.logged_in_user(Some("openid")).await;
    let res = call(
        &app,
        Method::GET,
        path,
        str_field(&user, "access_token"),
        None,
    )
    .await;
    assert_eq!(error_of(res, 403).await, "insufficient_scope");
    let email = crate::dpop::new_user(&app).await;
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&admin.id, admin.secret.as_deref())
        .form(&[
            ("grant_type", "password"),
            ("username", &email),
            ("password", PASSWORD),
            ("scope", "openid latchkey:admin"),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(error_of(res, 400).await, "invalid_scope");

    // A forged token: the admin token with its payload swapped.
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let narrow_payload = narrow.split('.').nth(1).expect("payload").to_owned();
    parts[1] = narrow_payload;
    let forged = parts.join(".");
    assert_eq!(
        error_of(call(&app, Method::GET, path, &forged, None).await, 401).await,
        "invalid_token"
    );
    assert_eq!(
        error_of(call(&app, Method::GET, path, "garbage", None).await, 401).await,
        "invalid_token"
    );

    // An expired token.
    app.advance_clock(Duration::hours(1));
    assert_eq!(
        error_of(call(&app, Method::GET, path, &good, None).await, 401).await,
        "invalid_token"
    );
    let fresh = token_of(&app, &admin, Some("latchkey:admin")).await;
    assert_eq!(
        call(&app, Method::GET, path, &fresh, None).await.status(),
        200
    );

    // A disabled admin client: its live token dies with it.
    let id = ClientId::parse(&admin.id).expect("id");
    app.services
        .set_client_disabled(id, true, "cli")
        .await
        .expect("disable");
    assert_eq!(
        error_of(call(&app, Method::GET, path, &fresh, None).await, 401).await,
        "invalid_token"
    );
}
both_backends!(callers_without_the_admin_scope_are_refused);

async fn only_admin_clients_obtain_the_admin_scope(backend: Backend) {
    let app = app_or_skip!(backend);
    let (_, token) = admin(&app).await;
    let plain = app
        .create_client(
            ClientKind::Confidential,
            &[GrantType::ClientCredentials],
            "read",
            None,
        )
        .await;

    let res = client_credentials(&app, &plain, Some("latchkey:admin")).await;
    assert_eq!(error_of(res, 400).await, "invalid_scope");
    let res = client_credentials(&app, &plain, Some("read latchkey:admin")).await;
    assert_eq!(error_of(res, 400).await, "invalid_scope");

    // Nor can the API hand the scope or the flag to a client.
    let before = json_of(
        call(
            &app,
            Method::GET,
            "/admin/v1/clients?limit=200",
            &token,
            None,
        )
        .await,
        200,
    )
    .await;
    let mut with_scope = create_body("sneaky");
    with_scope["scopes"] = json!(["latchkey:admin"]);
    let mut with_flag = create_body("sneaky");
    with_flag["admin"] = json!(true);
    for body in [with_scope, with_flag] {
        let res = call(&app, Method::POST, "/admin/v1/clients", &token, Some(body)).await;
        assert_eq!(error_of(res, 400).await, "invalid_request");
    }
    let res = call(
        &app,
        Method::PATCH,
        &format!("/admin/v1/clients/{}", plain.id),
        &token,
        Some(json!({"scopes": ["read", "latchkey:admin"]})),
    )
    .await;
    assert_eq!(error_of(res, 400).await, "invalid_request");
    assert_eq!(
        client_credentials(&app, &plain, Some("latchkey:admin"))
            .await
            .status(),
        400
    );
    let after = json_of(
        call(
            &app,
            Method::GET,
            "/admin/v1/clients?limit=200",
            &token,
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(before, after);
}
both_backends!(only_admin_clients_obtain_the_admin_scope);

async fn bad_input_is_refused_in_the_contract_shape_and_changes_nothing(backend: Backend) {
    let app = app_or_skip!(backend);
    let (_, token) = admin(&app).await;
    let target = app
        .create_client(
            ClientKind::Confidential,
            &[GrantType::ClientCredentials],
            "read",
            None,
        )
        .await;
    let path = format!("/admin/v1/clients/{}", target.id);
    let snapshot = || async {
        json_of(
            call(
                &app,
                Method::GET,
                "/admin/v1/clients?limit=200",
                &token,
                None,
            )
            .await,
            200,
        )
        .await
    };
    let before = snapshot().await;
    let page = json_of(
        call(&app, Method::GET, "/admin/v1/clients?limit=1", &token, None).await,
        200,
    )
    .await;
    let cursor = str_field(&page, "next_cursor").to_owned();
    let users_page = format!("/admin/v1/users?cursor={cursor}");

    let cases: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::GET,
            format!("/admin/v1/clients?cursor={}x", cursor),
            None,
        ),
        (
            Method::GET,
            format!("/admin/v1/clients?cursor={}", &cursor[..cursor.len() - 2]),
            None,
        ),
        (Method::GET, "/admin/v1/clients?cursor=%00%ff".into(), None),
        (
            Method::GET,
            "/admin/v1/clients?cursor=bm90LWEtY3Vyc29y".into(),
            None,
        ),
        (Method::GET, users_page, None),
        (Method::GET, "/admin/v1/clients?limit=0".into(), None),
        (Method::GET, "/admin/v1/clients?limit=201".into(), None),
        (Method::GET, "/admin/v1/clients?limit=ten".into(), None),
        (
            Method::GET,
            "/admin/v1/clients?limit=1&limit=2".into(),
            None,
        ),
        (Method::GET, "/admin/v1/clients?sort=name".into(), None),
        (
            Method::GET,
            format!("/admin/v1/users?email={}", "a".repeat(300)),
            None,
        ),
        (
            Method::POST,
            "/admin/v1/clients".into(),
            Some(json!({"name": "x"})),
        ),
        (
            Method::POST,
            "/admin/v1/clients".into(),
            Some(json!({"name": "x", "kind": "robot", "grants": ["password"]})),
        ),
        (
            Method::POST,
            "/admin/v1/clients".into(),
            Some(json!({"name": "x", "kind": "public", "grants": ["telepathy"]})),
        ),
        (
            Method::POST,
            "/admin/v1/clients".into(),
            Some(json!({"name": "x", "kind": "public", "grants": ["client_credentials"]})),
        ),
        (
            Method::POST,
            "/admin/v1/clients".into(),
            Some(json!({"name": "x", "kind": "public", "grants": ["password"], "scopes": ["a b"]})),
        ),
        (
            Method::PATCH,
            path.clone(),
            Some(json!({"grants": ["telepathy"]})),
        ),
        (Method::PATCH, path.clone(), Some(json!({"colour": "blue"}))),
        (
            Method::PATCH,
            path.clone(),
            Some(json!({"cookie_mode": true})),
        ),
        (Method::PATCH, path.clone(), Some(json!({"name": 7}))),
        (
            Method::POST,
            format!("{path}/rotate-secret"),
            Some(json!({"overlap_secs": -1})),
        ),
        (
            Method::POST,
            format!("{path}/rotate-secret"),
            Some(json!({"overlap_secs": 400 * 86_400})),
        ),
    ];
    for (method, url, body) in cases {
        let res = call(&app, method.clone(), &url, &token, body.clone()).await;
        let code = error_of(res, 400).await;
        assert_eq!(code, "invalid_request", "{method} {url} {body:?}");
    }
    // Not JSON at all.
    let res = app
        .client
        .post(app.url("/admin/v1/clients"))
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 400);
    let res = app
        .client
        .post(app.url("/admin/v1/clients"))
        .bearer_auth(&token)
        .form(&[("name", "x")])
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 415);
    // Another method on a known path.
    let res = call(&app, Method::PUT, &path, &token, None).await;
    assert_eq!(error_of(res, 405).await, "invalid_request");

    assert_eq!(snapshot().await, before);
    assert_eq!(client_credentials(&app, &target, None).await.status(), 200);
}
both_backends!(bad_input_is_refused_in_the_contract_shape_and_changes_nothing);

async fn a_dpop_bound_admin_token_works_with_its_proof_only(backend: Backend) {
    let app = app_or_skip!(backend);
    let admin = admin_client(&app).await;
    let key = ProofKey::es256();
    let proof = key.proof("POST", &htu(&app, "/oauth/token"), now(&app));
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&admin.id, admin.secret.as_deref())
        .header("DPoP", proof)
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "latchkey:admin"),
        ])
        .send()
        .await
        .expect("request");
    let body = json_of(res, 200).await;
    assert_eq!(body["token_type"], "DPoP");
    let token = str_field(&body, "access_token");
    let url = htu(&app, "/admin/v1/clients");

    let with_proof = app
        .client
        .get(app.url("/admin/v1/clients"))
        .header("Authorization", format!("DPoP {token}"))
        .header(
            "DPoP",
            key.resource_proof("GET", &url, now(&app), token, None),
        )
        .send()
        .await
        .expect("request");
    let as_bearer = call(&app, Method::GET, "/admin/v1/clients", token, None).await;
    let other_key = app
        .client
        .get(app.url("/admin/v1/clients"))
        .header("Authorization", format!("DPoP {token}"))
        .header(
            "DPoP",
            ProofKey::es256().resource_proof("GET", &url, now(&app), token, None),
        )
        .send()
        .await
        .expect("request");

    assert_eq!(with_proof.status(), 200);
    assert_eq!(as_bearer.status(), 401);
    assert_eq!(other_key.status(), 401);
}
both_backends!(a_dpop_bound_admin_token_works_with_its_proof_only);

/// The document, fetched from the running server (no token needed).
async fn openapi(app: &TestApp) -> Value {
    let res = app
        .client
        .get(app.url("/admin/v1/openapi.json"))
        .send()
        .await
        .expect("request");
    json_of(res, 200).await
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if [
                "get", "post", "put", "patch", "delete", "head", "options", "trace",
            ]
            .contains(&method.as_str())
            {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[tokio::test]
async fn the_openapi_document_covers_exactly_the_registered_admin_routes() {
    let app = crate::helpers::spawn_app().await;
    let doc = openapi(&app).await;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );

    let registered: BTreeSet<(String, String)> = latchkey::http::admin::registered_routes()
        .into_iter()
        .map(|(m, p)| (m.to_string(), p))
        .collect();
    assert_eq!(documented(&doc), registered);
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn every_documented_operation_answers_on_the_running_server() {
    let app = crate::helpers::spawn_app().await;
    let (_, token) = admin(&app).await;
    let doc = openapi(&app).await;

    for (method, path) in documented(&doc) {
        // A real id for each operation (some remove what they name).
        let url = if path.starts_with("/admin/v1/clients/{id}") {
            let c = app
                .create_client(
                    ClientKind::Confidential,
                    &[GrantType::ClientCredentials],
                    "read",
                    None,
                )
                .await;
            path.replace("{id}", &c.id)
        } else if path.starts_with("/admin/v1/users/{id}") {
            let u = stored_user(&format!(
                "doc-{}@example.com",
                uuid::Uuid::new_v4().simple()
            ));
            app.store.insert_user(&u).await.expect("user");
            path.replace("{id}", &u.id.to_string())
        } else {
            path.clone()
        };
        assert!(!url.contains('{'), "{url}");
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let body = (method == Method::POST || method == Method::PATCH).then(|| json!({}));
        let res = call(&app, method.clone(), &url, &token, body).await;
        let status = res.status().as_u16();
        assert!(status != 404 && status != 405, "{method} {url}: {status}");
        assert!(status < 500, "{method} {url}: {status}");
    }
}

/// `latchkey clients create --admin` on a fresh SQLite file.
fn create_with_cli(dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["clients", "create", "--name", "ops", "--json", "--admin"])
        .args(extra)
        .env_remove("DATABASE_URL")
        .env(
            "LATCHKEY__DATABASE__URL",
            format!("sqlite://{}", dir.join("cli.db").display()),
        )
        .env("LATCHKEY__KEYS__DIR", dir.join("keys"))
        .env("LATCHKEY__LOG__LEVEL", "warn")
        .output()
        .expect("binary runs")
}

#[test]
fn the_cli_creates_admin_clients_and_refuses_unfit_ones() {
    let dir = tempfile::tempdir().expect("tempdir");

    let ok = create_with_cli(
        dir.path(),
        &[
            "--kind",
            "confidential",
            "--grants",
            "client_credentials",
            "--scopes",
            "read",
        ],
    );
    let public = create_with_cli(dir.path(), &["--kind", "public", "--grants", "password"]);
    let no_cc = create_with_cli(
        dir.path(),
        &["--kind", "confidential", "--grants", "password"],
    );

    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let created: Value = serde_json::from_slice(&ok.stdout).expect("json");
    assert_eq!(created["admin"], true);
    assert_eq!(created["scopes"], json!(["read", "latchkey:admin"]));
    for refused in [public, no_cc] {
        assert!(!refused.status.success());
        let err = String::from_utf8_lossy(&refused.stderr);
        assert!(err.contains("--admin needs a confidential client"), "{err}");
    }
}

async fn a_key_client_is_created_with_its_public_keys_and_no_secret(backend: Backend) {
    let app = app_or_skip!(backend);
    let (_, token) = admin(&app).await;
    let key = ProofKey::es256();
    let mut body = create_body("orders");
    body["jwks"] = json!({ "keys": [key.jwk] });

    let created = json_of(
        call(&app, Method::POST, "/admin/v1/clients", &token, Some(body)).await,
        201,
    )
    .await;

    assert_eq!(created["auth_method"], "private_key_jwt");
    assert!(created["client_secret"].is_null(), "{created}");
    assert_eq!(created["jwks"]["keys"][0]["x"], key.jwk["x"]);
    let path = format!(
        "/admin/v1/clients/{}/rotate-secret",
        str_field(&created, "client_id")
    );
    let res = call(&app, Method::POST, &path, &token, None).await;
    assert_eq!(error_of(res, 400).await, "invalid_request");
    for (case, keys) in [
        (
            "both",
            json!({"jwks_uri": "https://keys.example/jwks", "jwks": {"keys": [key.jwk]}}),
        ),
        (
            "plain http",
            json!({"jwks_uri": "http://keys.example/jwks"}),
        ),
        (
            "not a key",
            json!({"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}),
        ),
    ] {
        let mut body = create_body("bad-keys");
        for (k, v) in keys.as_object().expect("object") {
            body[k] = v.clone();
        }
        let res = call(&app, Method::POST, "/admin/v1/clients", &token, Some(body)).await;
        assert_eq!(res.status(), 400, "{case}");
    }
}
both_backends!(a_key_client_is_created_with_its_public_keys_and_no_secret);
