//! RFC 9068 §4: latchkey's own endpoints (account API, `/v1/logout` with a
//! token, `/userinfo`) accept only access tokens for latchkey's audience. A
//! resource server that received a user's token for its own API cannot
//! replay it here; and `/userinfo` needs the `openid` scope.

use serde_json::{json, Value};

use latchkey::domain::types::{ClientKind, GrantType};

use crate::both_backends;
use crate::helpers::{spawn_on, str_field, Backend};

const PASSWORD: &str = "correct horse battery";

async fn a_token_for_another_api_is_refused_by_latchkeys_own_endpoints(backend: Backend) {
    let Some(app) = spawn_on(backend).await else {
        return;
    };
    let orders_app = app
        .create_client(
            ClientKind::Public,
            &[GrantType::Password, GrantType::RefreshToken],
            "openid email",
            Some("orders-api"),
        )
        .await;
    assert_eq!(
        app.signup("victim@example.com", PASSWORD).await.status(),
        201
    );
    let login: Value = app
        .login(
            &orders_app,
            "victim@example.com",
            PASSWORD,
            Some("openid email"),
        )
        .await
        .json()
        .await
        .expect("json");
    // What the orders API received, and now replays to latchkey.
    let stolen = str_field(&login, "access_token");

    let listed = app.get_bearer("/v1/account/sessions", stolen).await;
    assert_eq!(listed.status(), 401);
    assert!(listed.headers()["www-authenticate"]
        .to_str()
        .expect("ascii")
        .contains("invalid_token"));
    assert_eq!(app.get_bearer("/userinfo", stolen).await.status(), 401);
    let password = app
        .client
        .post(app.url("/v1/account/password"))
        .bearer_auth(stolen)
        .json(&json!({"current_password": "guess one", "new_password": "a new password!"}))
        .send()
        .await
        .expect("request");
    assert_eq!(password.status(), 401);
    let logout = app
        .client
        .post(app.url("/v1/logout"))
        .bearer_auth(stolen)
        .send()
        .await
        .expect("request");
    assert_eq!(logout.status(), 401);

    // Nothing changed: the session is alive and its token still refreshes.
    let res = app
        .refresh(&orders_app, str_field(&login, "refresh_token"))
        .await;
    assert_eq!(res.status(), 200);
    // The orders API itself still has a working token: introspection (for
    // resource servers) accepts it.
    let gateway = app.confidential_client().await;
    let intro: Value = app
        .introspect(&gateway, stolen)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(intro["active"], true);
    assert_eq!(intro["aud"], "orders-api");
}
both_backends!(a_token_for_another_api_is_refused_by_latchkeys_own_endpoints);

async fn userinfo_without_openid_is_403_insufficient_scope(backend: Backend) {
    let Some(app) = spawn_on(backend).await else {
        return;
    };
    let (_, _, login) = app.logged_in_user(Some("email")).await;
    let res = app
        .get_bearer("/userinfo", str_field(&login, "access_token"))
        .await;
    assert_eq!(res.status(), 403);
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "insufficient_scope");

    // With openid it answers.
    let (_, _, login) = app.logged_in_user(Some("openid")).await;
    let res = app
        .get_bearer("/userinfo", str_field(&login, "access_token"))
        .await;
    assert_eq!(res.status(), 200);
}
both_backends!(userinfo_without_openid_is_403_insufficient_scope);
