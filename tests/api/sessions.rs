//! Revocation (RFC 7009), logout, the account session API, password change
//! and `users revoke-sessions`.

use serde_json::Value;

use crate::helpers::{str_field, Backend, TestApp};
use crate::{app_or_skip, both_backends};

async fn revoke(app: &TestApp, client_id: &str, token: &str) -> reqwest::Response {
    app.client
        .post(app.url("/oauth/revoke"))
        .form(&[("token", token), ("client_id", client_id)])
        .send()
        .await
        .expect("request")
}

async fn logout_json(app: &TestApp, rt: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/logout"))
        .json(&serde_json::json!({ "refresh_token": rt }))
        .send()
        .await
        .expect("request")
}

async fn revoking_a_refresh_token_ends_its_session(backend: Backend) {
    let app = app_or_skip!(backend);
    let (client, _, login) = app.logged_in_user(None).await;
    let rt = str_field(&login, "refresh_token");
    assert_eq!(revoke(&app, &client.id, rt).await.status(), 200);
    let err: Value = app.refresh(&client, rt).await.json().await.expect("json");
    assert!(str_field(&err, "error_description").contains("revoked"));
    assert_eq!(
        app.get_bearer("/userinfo", str_field(&login, "access_token"))
            .await
            .status(),
        401
    );
    // Idempotent, and unknown tokens still get 200.
    assert_eq!(revoke(&app, &client.id, rt).await.status(), 200);
    assert_eq!(
        revoke(&app, &client.id, "no-such-token").await.status(),
        200
    );
}
both_backends!(revoking_a_refresh_token_ends_its_session);

async fn revoking_an_access_token_ends_its_session(backend: Backend) {
    let app = app_or_skip!(backend);
    let (client, _, login) = app.logged_in_user(None).await;
    assert_eq!(
        revoke(&app, &client.id, str_field(&login, "access_token"))
            .await
            .status(),
        200
    );
    assert_eq!(
        app.refresh(&client, str_field(&login, "refresh_token"))
            .await
            .status(),
        400
    );
}
both_backends!(revoking_an_access_token_ends_its_session);

#[tokio::test]
async fn another_client_cannot_revoke_a_token() {
    let app = crate::helpers::spawn_app().await;
    let (client, _, login) = app.logged_in_user(None).await;
    let other = app.public_client().await;
    assert_eq!(
        revoke(&app, &other.id, str_field(&login, "refresh_token"))
            .await
            .status(),
        200
    );
    assert_eq!(
        app.refresh(&client, str_field(&login, "refresh_token"))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn revoke_without_token_or_client_is_refused() {
    let app = crate::helpers::spawn_app().await;
    let client = app.public_client().await;
    let res = app
        .client
        .post(app.url("/oauth/revoke"))
        .form(&[("client_id", client.id.as_str())])
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 400);
    let res = app
        .client
        .post(app.url("/oauth/revoke"))
        .form(&[("token", "x")])
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 401);
}

async fn logout_with_refresh_token_alone_is_idempotent(backend: Backend) {
    let app = app_or_skip!(backend);
    let (client, _, login) = app.logged_in_user(None).await;
    let rt = str_field(&login, "refresh_token");
    assert_eq!(logout_json(&app, rt).await.status(), 204);
    assert_eq!(logout_json(&app, rt).await.status(), 204);
    assert_eq!(app.refresh(&client, rt).await.status(), 400);
    assert_eq!(
        app.get_bearer("/userinfo", str_field(&login, "access_token"))
            .await
            .status(),
        401
    );
}
both_backends!(logout_with_refresh_token_alone_is_idempotent);

#[tokio::test]
async fn logout_with_bearer_token_ends_the_session() {
    let app = crate::helpers::spawn_app().await;
    let (client, _, login) = app.logged_in_user(None).await;
    let res = app
        .client
        .post(app.url("/v1/logout"))
        .bearer_auth(str_field(&login, "access_token"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 204);
    assert_eq!(
        app.refresh(&client, str_field(&login, "refresh_token"))
            .await
            .status(),
        400
    );
    let res = app
        .client
        .post(app.url("/v1/logout"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 401);
}

async fn sessions_are_listed_and_revocable_by_their_owner_only(backend: Backend) {
    let app = app_or_skip!(backend);
    let (client, email, first) = app.logged_in_user(None).await;
    let second: Value = app
        .login(&client, &email, "correct horse battery", None)
        .await
        .json()
        .await
        .expect("json");
    let at = str_field(&second, "access_token");

    let list: Value = app
        .get_bearer("/v1/account/sessions", at)
        .await
        .json()
        .await
        .expect("json");
    let sessions = list["sessions"].as_array().expect("array");
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    for f in ["sid", "client_id", "created_at", "last_used_at"] {
        assert!(sessions[0].get(f).is_some(), "{f}");
    }
    let other_sid = sessions
        .iter()
        .find(|s| s["current"] == false)
        .expect("other")["sid"]
        .as_str()
        .expect("sid")
        .to_owned();

    // Someone else cannot see or revoke it.
    let (_, _, stranger) = app.logged_in_user(None).await;
    let res = app
        .client
        .delete(app.url(&format!("/v1/account/sessions/{other_sid}")))
        .bearer_auth(str_field(&stranger, "access_token"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 404);
    assert_eq!(
        app.refresh(&client, str_field(&first, "refresh_token"))
            .await
            .status(),
        200
    );

    let res = app
        .client
        .delete(app.url(&format!("/v1/account/sessions/{other_sid}")))
        .bearer_auth(at)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 204);
    let list: Value = app
        .get_bearer("/v1/account/sessions", at)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list["sessions"].as_array().expect("array").len(), 1);
}
both_backends!(sessions_are_listed_and_revocable_by_their_owner_only);

async fn password_change_revokes_every_other_session(backend: Backend) {
    let app = app_or_skip!(backend);
    let (client, email, first) = app.logged_in_user(None).await;
    let second: Value = app
        .login(&client, &email, "correct horse battery", None)
        .await
        .json()
        .await
        .expect("json");

    let wrong = app
        .client
        .post(app.url("/v1/account/password"))
        .bearer_auth(str_field(&second, "access_token"))
        .json(&serde_json::json!({ "current_password": "not it at all", "new_password": "a brand new passphrase" }))
        .send()
        .await
        .expect("request");
    assert_eq!(wrong.status(), 400);

    let res = app
        .client
        .post(app.url("/v1/account/password"))
        .bearer_auth(str_field(&second, "access_token"))
        .json(&serde_json::json!({ "current_password": "correct horse battery", "new_password": "a brand new passphrase" }))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 204);
    assert_eq!(
        app.refresh(&client, str_field(&first, "refresh_token"))
            .await
            .status(),
        400
    );
    assert_eq!(
        app.refresh(&client, str_field(&second, "refresh_token"))
            .await
            .status(),
        200
    );
    assert_eq!(
        app.login(&client, &email, "correct horse battery", None)
            .await
            .status(),
        400
    );
    assert_eq!(
        app.login(&client, &email, "a brand new passphrase", None)
            .await
            .status(),
        200
    );
}
both_backends!(password_change_revokes_every_other_session);

async fn revoke_sessions_ends_every_session_of_the_user(backend: Backend) {
    let app = app_or_skip!(backend);
    let (client, email, first) = app.logged_in_user(None).await;
    let second: Value = app
        .login(&client, &email, "correct horse battery", None)
        .await
        .json()
        .await
        .expect("json");
    let sub = {
        let v: Value = app
            .get_bearer("/userinfo", str_field(&first, "access_token"))
            .await
            .json()
            .await
            .expect("json");
        latchkey::domain::types::UserId::parse(str_field(&v, "sub")).expect("uuid")
    };
    assert_eq!(
        app.services
            .revoke_user_sessions(sub, "test")
            .await
            .expect("revoked"),
        2
    );
    assert_eq!(
        app.refresh(&client, str_field(&first, "refresh_token"))
            .await
            .status(),
        400
    );
    assert_eq!(
        app.refresh(&client, str_field(&second, "refresh_token"))
            .await
            .status(),
        400
    );
    assert_eq!(
        app.get_bearer("/userinfo", str_field(&second, "access_token"))
            .await
            .status(),
        401
    );
}
both_backends!(revoke_sessions_ends_every_session_of_the_user);
