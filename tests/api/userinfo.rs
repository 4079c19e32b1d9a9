use serde_json::Value;

use crate::helpers::{spawn_app, str_field};

#[tokio::test]
async fn userinfo_returns_sub_and_email_with_the_email_scope() {
    let app = spawn_app().await;
    let (_, email, login) = app.logged_in_user(Some("openid email")).await;
    let res = app
        .get_bearer("/userinfo", str_field(&login, "access_token"))
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["email"], email.as_str());
    assert_eq!(body["email_verified"], false);
    assert!(uuid::Uuid::parse_str(str_field(&body, "sub")).is_ok());
}

#[tokio::test]
async fn userinfo_without_the_email_scope_returns_only_sub() {
    let app = spawn_app().await;
    let (_, _, login) = app.logged_in_user(Some("openid")).await;
    let body: Value = app
        .get_bearer("/userinfo", str_field(&login, "access_token"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        body.as_object().expect("object").keys().collect::<Vec<_>>(),
        ["sub"]
    );
}

#[tokio::test]
async fn userinfo_without_a_token_is_401_with_a_bearer_challenge() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(app.url("/userinfo"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"]
        .to_str()
        .expect("ascii")
        .starts_with("Bearer"));
}

#[tokio::test]
async fn disabled_users_tokens_stop_working_at_once() {
    let app = spawn_app().await;
    let (_, _, login) = app.logged_in_user(None).await;
    let at = str_field(&login, "access_token");
    let body: Value = app
        .get_bearer("/userinfo", at)
        .await
        .json()
        .await
        .expect("json");
    let id = latchkey::domain::types::UserId::parse(str_field(&body, "sub")).expect("uuid");
    app.services
        .set_user_disabled(id, true, "test")
        .await
        .expect("disabled");
    assert_eq!(app.get_bearer("/userinfo", at).await.status(), 401);
}

#[tokio::test]
async fn client_credentials_token_cannot_read_userinfo() {
    let app = spawn_app().await;
    let rs = app.confidential_client().await;
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&rs.id, rs.secret.as_deref())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("request");
    let body: Value = res.json().await.expect("json");
    assert_eq!(
        app.get_bearer("/userinfo", str_field(&body, "access_token"))
            .await
            .status(),
        401
    );
}
