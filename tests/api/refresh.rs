use chrono::Duration;
use serde_json::Value;

use crate::helpers::{claims, spawn_on_with, str_field, Backend, TestApp};
use crate::{app_or_skip, both_backends};

/// The grace period the replay tests run with, set rather than left to the
/// default: a replay inside it must return the same token, so it must be
/// longer than any pause between the two requests on a loaded machine.
/// Grace is measured by the database's clock, which no test clock moves.
const GRACE_SECS: i64 = 60;

/// A server on `backend` with `GRACE_SECS` of grace.
async fn with_grace(backend: Backend) -> Option<TestApp> {
    spawn_on_with(backend, |s| s.tokens.refresh_grace_secs = GRACE_SECS).await
}

async fn refresh_ok(app: &TestApp, client: &crate::helpers::TestClient, rt: &str) -> Value {
    let res = app.refresh(client, rt).await;
    assert_eq!(res.status(), 200, "refresh failed");
    res.json().await.expect("json")
}

async fn refresh_err(app: &TestApp, client: &crate::helpers::TestClient, rt: &str) -> Value {
    let res = app.refresh(client, rt).await;
    assert_eq!(res.status(), 400);
    res.json().await.expect("json")
}

async fn refresh_rotates_the_token(backend: Backend) {
    let app = app_or_skip!(backend);
    let (client, _, login) = app.logged_in_user(None).await;
    let rt0 = str_field(&login, "refresh_token");

    let first = refresh_ok(&app, &client, rt0).await;
    let rt1 = str_field(&first, "refresh_token");
    assert_ne!(rt0, rt1);
    let second = refresh_ok(&app, &client, rt1).await;
    assert_ne!(str_field(&second, "refresh_token"), rt1);
    // Same session throughout.
    let sid = claims(str_field(&login, "access_token"))["sid"].clone();
    assert_eq!(claims(str_field(&second, "access_token"))["sid"], sid);
    assert_eq!(second["scope"], login["scope"]);
}
both_backends!(refresh_rotates_the_token);

async fn grace_replay_returns_the_identical_token(backend: Backend) {
    let Some(app) = with_grace(backend).await else {
        return;
    };
    let (client, _, login) = app.logged_in_user(None).await;
    let rt0 = str_field(&login, "refresh_token");
    let first = refresh_ok(&app, &client, rt0).await;
    app.advance_clock(Duration::seconds(5));

    let replay = refresh_ok(&app, &client, rt0).await;
    assert_eq!(replay["refresh_token"], first["refresh_token"]);
    assert_ne!(replay["access_token"], first["access_token"]);
    // The family did not fork: the newest token still rotates.
    let next = refresh_ok(&app, &client, str_field(&first, "refresh_token")).await;
    assert_ne!(next["refresh_token"], first["refresh_token"]);
}
both_backends!(grace_replay_returns_the_identical_token);

async fn reuse_outside_grace_revokes_the_whole_session(backend: Backend) {
    // Grace is measured by the database's clock, which no test clock moves
    // (skew.rs waits one out in real time); with no grace, every replay is
    // outside it.
    let Some(app) = spawn_on_with(backend, |s| s.tokens.refresh_grace_secs = 0).await else {
        return;
    };
    let (client, _, login) = app.logged_in_user(None).await;
    let rt0 = str_field(&login, "refresh_token");
    let first = refresh_ok(&app, &client, rt0).await;

    let err = refresh_err(&app, &client, rt0).await;
    assert_eq!(err["error"], "invalid_grant");
    assert!(str_field(&err, "error_description").contains("already used"));
    // The newest token died with its family.
    let err = refresh_err(&app, &client, str_field(&first, "refresh_token")).await;
    assert!(str_field(&err, "error_description").contains("revoked"));
    // The family's access tokens stop working too.
    let res = app
        .get_bearer("/userinfo", str_field(&first, "access_token"))
        .await;
    assert_eq!(res.status(), 401);
    // One audit record, with its reason.
    let audit = app.store.list_audit(None, None, 100).await.expect("audit");
    let reuse: Vec<_> = audit
        .iter()
        .filter(|e| e.kind == "refresh_token_reused")
        .collect();
    assert_eq!(reuse.len(), 1);
    assert!(reuse[0].reason.is_some() && reuse[0].session_id.is_some());
}
both_backends!(reuse_outside_grace_revokes_the_whole_session);

async fn grandparent_within_grace_is_reuse(backend: Backend) {
    let Some(app) = with_grace(backend).await else {
        return;
    };
    let (client, _, login) = app.logged_in_user(None).await;
    let rt0 = str_field(&login, "refresh_token");
    let first = refresh_ok(&app, &client, rt0).await;
    let second = refresh_ok(&app, &client, str_field(&first, "refresh_token")).await;

    let err = refresh_err(&app, &client, rt0).await;
    assert!(str_field(&err, "error_description").contains("already used"));
    refresh_err(&app, &client, str_field(&second, "refresh_token")).await;
}
both_backends!(grandparent_within_grace_is_reuse);

async fn replay_from_another_client_is_rejected(backend: Backend) {
    let app = app_or_skip!(backend);
    let (client, _, login) = app.logged_in_user(None).await;
    let other = app.public_client().await;
    let rt0 = str_field(&login, "refresh_token");
    let first = refresh_ok(&app, &client, rt0).await;

    let err = refresh_err(&app, &other, rt0).await;
    assert!(str_field(&err, "error_description").contains("another client"));
    let err = refresh_err(&app, &other, str_field(&first, "refresh_token")).await;
    assert!(str_field(&err, "error_description").contains("another client"));
    // Nothing changed for the rightful client.
    refresh_ok(&app, &client, str_field(&first, "refresh_token")).await;
}
both_backends!(replay_from_another_client_is_rejected);

async fn scope_can_narrow_but_not_widen(backend: Backend) {
    let app = app_or_skip!(backend);
    let (client, _, login) = app.logged_in_user(Some("openid email")).await;
    let rt0 = str_field(&login, "refresh_token");

    let res = app
        .post_token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt0),
            ("client_id", &client.id),
            ("scope", "openid profile"),
        ])
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.expect("json")["error"],
        "invalid_scope"
    );

    // The failed request used nothing up: the same token still rotates.
    let res = app
        .post_token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt0),
            ("client_id", &client.id),
            ("scope", "email"),
        ])
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["scope"], "email");
    assert_eq!(claims(str_field(&body, "access_token"))["scope"], "email");
    // The session keeps its original scope for later refreshes.
    let next = refresh_ok(&app, &client, str_field(&body, "refresh_token")).await;
    assert_eq!(next["scope"], "openid email");
}
both_backends!(scope_can_narrow_but_not_widen);

async fn idle_session_expires(backend: Backend) {
    let app = app_or_skip!(backend);
    let (client, _, login) = app.logged_in_user(None).await;
    app.advance_clock(Duration::days(14) + Duration::seconds(1));
    let err = refresh_err(&app, &client, str_field(&login, "refresh_token")).await;
    assert!(str_field(&err, "error_description").contains("expired"));
}
both_backends!(idle_session_expires);

async fn absolute_lifetime_ends_even_an_active_session(backend: Backend) {
    let app = app_or_skip!(backend);
    let (client, _, login) = app.logged_in_user(None).await;
    let mut rt = str_field(&login, "refresh_token").to_owned();
    // Refresh every 10 days: never idle, but past 30 days it ends.
    for _ in 0..3 {
        app.advance_clock(Duration::days(10) - Duration::seconds(1));
        let body = refresh_ok(&app, &client, &rt).await;
        rt = str_field(&body, "refresh_token").to_owned();
    }
    app.advance_clock(Duration::days(1));
    let err = refresh_err(&app, &client, &rt).await;
    assert!(str_field(&err, "error_description").contains("expired"));
}
both_backends!(absolute_lifetime_ends_even_an_active_session);

async fn purge_deletes_ended_sessions(backend: Backend) {
    let app = app_or_skip!(backend);
    let (client, _, login) = app.logged_in_user(None).await;
    let (_, _, live) = app.logged_in_user(None).await;
    let live_rt = str_field(&live, "refresh_token").to_owned();
    app.advance_clock(Duration::days(13));
    let live_client = crate::helpers::TestClient {
        id: claims(str_field(&live, "access_token"))["client_id"]
            .as_str()
            .expect("id")
            .to_owned(),
        secret: None,
    };
    let body = refresh_ok(&app, &live_client, &live_rt).await;
    app.advance_clock(Duration::days(2));

    let purged = app.services.purge_once().await.expect("purge");
    assert_eq!(purged, 1);
    let err = refresh_err(&app, &client, str_field(&login, "refresh_token")).await;
    assert!(str_field(&err, "error_description").contains("invalid or unknown"));
    refresh_ok(&app, &live_client, str_field(&body, "refresh_token")).await;
}
both_backends!(purge_deletes_ended_sessions);

#[tokio::test]
async fn garbage_refresh_tokens_are_unknown() {
    let app = crate::helpers::spawn_app().await;
    let (client, _, login) = app.logged_in_user(None).await;
    let real = str_field(&login, "refresh_token");
    let mut chars: Vec<char> = real.chars().collect();
    chars[20] = if chars[20] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    for bad in ["lk_rt_nope", "x", tampered.as_str(), &"lk_rt_".repeat(50)] {
        let err = refresh_err(&app, &client, bad).await;
        assert_eq!(err["error"], "invalid_grant");
        assert!(str_field(&err, "error_description").contains("invalid or unknown"));
    }
}

#[tokio::test]
async fn refresh_token_grant_needs_the_grant_on_the_client() {
    use latchkey::domain::types::{ClientKind, GrantType};
    let app = crate::helpers::spawn_app().await;
    let client = app
        .create_client(ClientKind::Public, &[GrantType::Password], "openid", None)
        .await;
    app.signup("ivan@example.com", "correct horse battery")
        .await;
    let res = app
        .login(&client, "ivan@example.com", "correct horse battery", None)
        .await;
    let body: Value = res.json().await.expect("json");
    assert!(body.get("refresh_token").is_none());
    let res = app
        .post_token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "lk_rt_x"),
            ("client_id", &client.id),
        ])
        .await;
    assert_eq!(
        res.json::<Value>().await.expect("json")["error"],
        "unauthorized_client"
    );
}

#[tokio::test]
async fn refresh_returns_an_id_token_of_the_same_login_by_default() {
    let app = crate::helpers::spawn_app().await;
    let (client, _, login) = app.logged_in_user(Some("openid email")).await;
    let first = claims(str_field(&login, "id_token"));
    app.advance_clock(Duration::seconds(30));

    let body = refresh_ok(&app, &client, str_field(&login, "refresh_token")).await;

    // OIDC Core §12.2: same iss, sub, aud and auth_time; a new iat.
    let again = claims(str_field(&body, "id_token"));
    for claim in ["iss", "sub", "aud", "sid", "auth_time", "email"] {
        assert_eq!(again[claim], first[claim], "{claim}");
    }
    assert!(again["iat"].as_i64() > first["iat"].as_i64());
}

#[tokio::test]
async fn refresh_leaves_the_id_token_out_when_configured() {
    let app = crate::helpers::spawn_on_with(Backend::Sqlite, |s| {
        s.tokens.id_token_on_refresh = false;
    })
    .await
    .expect("SQLite is always available");
    let (client, _, login) = app.logged_in_user(Some("openid email")).await;
    // The login still carries one: only refreshes leave it out.
    assert!(login.get("id_token").is_some());

    let body = refresh_ok(&app, &client, str_field(&login, "refresh_token")).await;

    assert!(body.get("id_token").is_none(), "{body}");
    assert_eq!(body["scope"], "openid email");
    let access = str_field(&body, "access_token");
    assert_eq!(app.get_bearer("/userinfo", access).await.status(), 200);
    assert_ne!(
        str_field(&body, "refresh_token"),
        str_field(&login, "refresh_token")
    );
}
