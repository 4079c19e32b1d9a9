//! The audit log: every security event is recorded with its user, client,
//! session and client address, never a secret; old events are purged.

use chrono::Duration;
use latchkey::domain::types::UserId;
use latchkey::store::AuditEvent;
use serde_json::{json, Value};

use crate::helpers::{spawn_on_with, str_field, Backend, TestApp};
use crate::{app_or_skip, both_backends};

const PASSWORD: &str = "correct horse battery";

async fn events(app: &TestApp) -> Vec<AuditEvent> {
    app.store.list_audit(None, None, 1000).await.expect("audit")
}

fn one<'a>(events: &'a [AuditEvent], kind: &str, reason_part: &str) -> &'a AuditEvent {
    let found: Vec<_> = events
        .iter()
        .filter(|e| e.kind == kind && e.reason.as_deref().unwrap_or("").contains(reason_part))
        .collect();
    assert_eq!(found.len(), 1, "{kind} ({reason_part}) in {events:#?}");
    found[0]
}

async fn every_security_event_over_http_is_audited_with_its_address(backend: Backend) {
    let app = app_or_skip!(backend);
    let (client, email, login) = app.logged_in_user(None).await;
    let user = app
        .store
        .find_user_by_email(&email)
        .await
        .expect("store")
        .expect("user")
        .id;
    let first = str_field(&login, "refresh_token").to_owned();
    // A failed login, a second session revoked through RFC 7009, a third
    // deleted through the account API, a password change, reuse, logout.
    assert_eq!(
        app.login(&client, &email, "not the password", None)
            .await
            .status(),
        400
    );
    let second: Value = app
        .login(&client, &email, PASSWORD, None)
        .await
        .json()
        .await
        .expect("json");
    let res = app
        .client
        .post(app.url("/oauth/revoke"))
        .form(&[
            ("token", str_field(&second, "refresh_token")),
            ("client_id", &client.id),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    let third: Value = app
        .login(&client, &email, PASSWORD, None)
        .await
        .json()
        .await
        .expect("json");
    let third_sid = crate::helpers::sid_of(str_field(&third, "access_token"));
    let access = str_field(&login, "access_token");
    let res = app
        .client
        .delete(app.url(&format!("/v1/account/sessions/{third_sid}")))
        .bearer_auth(access)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 204);
    let res = app
        .client
        .post(app.url("/v1/account/password"))
        .bearer_auth(access)
        .json(&json!({ "current_password": PASSWORD, "new_password": "a new long passphrase" }))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 204);
    let fourth: Value = app
        .login(&client, &email, "a new long passphrase", None)
        .await
        .json()
        .await
        .expect("json");
    let r1 = str_field(&fourth, "refresh_token");
    let second: Value = app.refresh(&client, r1).await.json().await.expect("json");
    let r2 = str_field(&second, "refresh_token");
    assert_eq!(app.refresh(&client, r2).await.status(), 200);
    // r1 is no longer the immediate predecessor: its use is reuse.
    assert_eq!(app.refresh(&client, r1).await.status(), 400);
    let res = app
        .client
        .post(app.url("/v1/logout"))
        .json(&json!({ "refresh_token": first }))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 204);

    let all = events(&app).await;

    let here = Some("127.0.0.1".to_owned());
    for (kind, reason) in [
        ("user_signed_up", ""),
        ("login_failed", ""),
        ("refresh_token_reused", ""),
        ("session_revoked", "revoked_by_client by rfc7009"),
        ("session_revoked", "revoked_by_user by user"),
        ("session_revoked", "logout by user"),
        ("password_changed", ""),
    ] {
        let ev = one(&all, kind, reason);
        assert_eq!(ev.user_id, Some(user), "{kind}");
        assert_eq!(ev.address, here, "{kind} records the client address");
    }
    let logins: Vec<_> = all.iter().filter(|e| e.kind == "login_succeeded").collect();
    assert_eq!(logins.len(), 4);
    assert!(logins
        .iter()
        .all(|e| e.address == here && e.session_id.is_some() && e.client_id.is_some()));
    assert!(one(&all, "refresh_token_reused", "").session_id.is_some());
    let dump = format!("{all:?}");
    for secret in [
        PASSWORD,
        "a new long passphrase",
        "not the password",
        "lk_rt_",
        "eyJ",
    ] {
        assert!(!dump.contains(secret), "the audit log holds {secret:?}");
    }
}
both_backends!(every_security_event_over_http_is_audited_with_its_address);

#[tokio::test]
async fn operator_actions_are_audited_with_who_did_them() {
    let app = crate::helpers::spawn_app().await;
    let (_, email, _) = app.logged_in_user(None).await;
    let user = app
        .store
        .find_user_by_email(&email)
        .await
        .expect("store")
        .expect("user")
        .id;

    app.services
        .set_user_disabled(user, true, "cli")
        .await
        .expect("disable");
    app.services
        .set_user_disabled(user, false, "cli")
        .await
        .expect("enable");
    app.services
        .revoke_user_sessions(user, "cli")
        .await
        .expect("revoke");

    let all = events(&app).await;
    for kind in ["user_disabled", "user_enabled", "sessions_revoked"] {
        let ev = one(&all, kind, "by cli");
        assert_eq!(ev.user_id, Some(user));
    }
    let created = one(&all, "client_created", "public client");
    assert!(created.client_id.is_some());
    let key = one(&all, "key_generated", "by startup");
    let kid = app.keys.signing_key(app.services.now()).expect("key");
    assert!(key
        .reason
        .as_deref()
        .is_some_and(|r| r.contains(&kid.entry.kid)));
}

async fn old_audit_events_are_purged_in_batches(backend: Backend) {
    let Some(app) = spawn_on_with(backend, |s| {
        s.audit.retention_days = 30;
        s.audit.purge_batch_size = 2;
    })
    .await
    else {
        return;
    };
    for i in 0..5 {
        let res = app.signup(&format!("old{i}@example.com"), PASSWORD).await;
        assert_eq!(res.status(), 201);
    }
    app.advance_clock(Duration::days(31));
    assert_eq!(app.signup("new@example.com", PASSWORD).await.status(), 201);

    let purged = app.services.purge_audit_once().await.expect("purge");

    assert_eq!(purged, 6, "five sign-ups and the first key's creation");
    let left = events(&app).await;
    assert_eq!(left.len(), 1, "{left:#?}");
    assert_eq!(left[0].kind, "user_signed_up");
    assert_eq!(app.services.purge_audit_once().await.expect("purge"), 0);
    let res = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("request");
    let text = res.text().await.expect("text");
    assert!(
        text.contains(r#"latchkey_purged_total{what="audit_events"} 6"#),
        "{text}"
    );
}
both_backends!(old_audit_events_are_purged_in_batches);

#[tokio::test]
async fn a_retention_of_zero_keeps_every_event() {
    let app = spawn_on_with(Backend::Sqlite, |s| s.audit.retention_days = 0)
        .await
        .expect("sqlite");
    assert_eq!(app.signup("ada@example.com", PASSWORD).await.status(), 201);
    app.advance_clock(Duration::days(10_000));

    assert_eq!(app.services.purge_audit_once().await.expect("purge"), 0);

    assert_eq!(events(&app).await.len(), 2, "the first key and the sign-up");
}

#[tokio::test]
async fn audit_can_be_read_per_user_and_since_a_time() {
    let app = crate::helpers::spawn_app().await;
    let (_, email, _) = app.logged_in_user(None).await;
    let ada: UserId = app
        .store
        .find_user_by_email(&email)
        .await
        .expect("store")
        .expect("user")
        .id;
    app.advance_clock(Duration::hours(2));
    let since = app.services.now() - Duration::hours(1);
    assert_eq!(app.signup("bob@example.com", PASSWORD).await.status(), 201);

    let adas = app
        .services
        .list_audit(Some(ada), None, 100)
        .await
        .expect("list");
    let recent = app
        .services
        .list_audit(None, Some(since), 100)
        .await
        .expect("list");

    assert!(adas.iter().all(|e| e.user_id == Some(ada)));
    assert_eq!(adas.len(), 2, "signed up and logged in: {adas:#?}");
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].kind, "user_signed_up");
    assert_ne!(recent[0].user_id, Some(ada));
}
