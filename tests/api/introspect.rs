use latchkey::domain::types::{ClientKind, GrantType};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, str_field, Backend, TestApp, TestClient};
use crate::{app_or_skip, both_backends};

async fn client_credentials(
    app: &TestApp,
    client: &TestClient,
    basic: bool,
    scope: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    let secret = client.secret.clone().unwrap_or_default();
    let req = app.client.post(app.url("/oauth/token"));
    let req = if basic {
        req.basic_auth(&client.id, Some(secret)).form(&form)
    } else {
        form.push(("client_id", &client.id));
        form.push(("client_secret", &secret));
        req.form(&form)
    };
    req.send().await.expect("request")
}

#[tokio::test]
async fn client_credentials_with_basic_and_post_authentication() {
    let app = spawn_app().await;
    let rs = app.confidential_client().await;
    for basic in [true, false] {
        let res = client_credentials(&app, &rs, basic, Some("read")).await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.expect("json");
        assert!(body.get("refresh_token").is_none());
        assert!(body.get("id_token").is_none());
        assert_eq!(body["scope"], "read");
        let claims = crate::password_grant::verify_with_jwks(
            &app,
            str_field(&body, "access_token"),
            "latchkey",
        )
        .await;
        assert_eq!(claims["sub"], rs.id.as_str());
        assert_eq!(claims["client_id"], rs.id.as_str());
        assert!(claims.get("sid").is_none());
    }
    let res = client_credentials(&app, &rs, true, Some("admin")).await;
    assert_eq!(
        res.json::<Value>().await.expect("json")["error"],
        "invalid_scope"
    );
}

#[tokio::test]
async fn client_credentials_with_a_wrong_secret_is_401() {
    let app = spawn_app().await;
    let mut rs = app.confidential_client().await;
    rs.secret = Some("lk_cs_wrong".into());
    let res = client_credentials(&app, &rs, true, None).await;
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"]
        .to_str()
        .expect("ascii")
        .starts_with("Basic"));
    assert_eq!(
        res.json::<Value>().await.expect("json")["error"],
        "invalid_client"
    );
}

#[tokio::test]
async fn public_clients_cannot_use_client_credentials() {
    let app = spawn_app().await;
    let public = app.public_client().await;
    let res = app
        .post_token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &public.id),
        ])
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.expect("json")["error"],
        "unauthorized_client"
    );
}

#[tokio::test]
async fn per_client_audience_sets_aud() {
    let app = spawn_app().await;
    let rs = app
        .create_client(
            ClientKind::Confidential,
            &[GrantType::ClientCredentials],
            "read",
            Some("https://orders.example"),
        )
        .await;
    let body: Value = client_credentials(&app, &rs, true, None)
        .await
        .json()
        .await
        .expect("json");
    let claims = crate::password_grant::verify_with_jwks(
        &app,
        str_field(&body, "access_token"),
        "https://orders.example",
    )
    .await;
    assert_eq!(claims["aud"], "https://orders.example");
    let intro: Value = app
        .introspect(&rs, str_field(&body, "access_token"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(intro["active"], true);
    assert_eq!(intro["aud"], "https://orders.example");
}

async fn introspection_reports_active_tokens_and_revocation_at_once(backend: Backend) {
    let app = app_or_skip!(backend);
    let rs = app.confidential_client().await;
    let (client, _, login) = app.logged_in_user(None).await;
    let at = str_field(&login, "access_token");
    let res = app.introspect(&rs, at).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["active"], true);
    for f in [
        "sub",
        "client_id",
        "scope",
        "exp",
        "iat",
        "iss",
        "aud",
        "jti",
        "sid",
        "token_type",
    ] {
        assert!(body.get(f).is_some(), "{f} missing");
    }
    assert_eq!(body["client_id"], client.id.as_str());

    let rt_body: Value = app
        .introspect(&rs, str_field(&login, "refresh_token"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(rt_body["active"], true);
    assert_eq!(rt_body["token_type"], "refresh_token");
    assert_eq!(rt_body["sid"], body["sid"]);

    let res = app
        .client
        .post(app.url("/v1/logout"))
        .json(&json!({ "refresh_token": str_field(&login, "refresh_token") }))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 204);
    assert_eq!(
        app.introspect(&rs, at)
            .await
            .json::<Value>()
            .await
            .expect("json"),
        json!({"active": false})
    );
    assert_eq!(
        app.introspect(&rs, str_field(&login, "refresh_token"))
            .await
            .json::<Value>()
            .await
            .expect("json"),
        json!({"active": false})
    );
}
both_backends!(introspection_reports_active_tokens_and_revocation_at_once);

#[tokio::test]
async fn a_used_refresh_token_introspects_inactive() {
    let app = spawn_app().await;
    let rs = app.confidential_client().await;
    let (client, _, login) = app.logged_in_user(None).await;
    let rt = str_field(&login, "refresh_token");
    assert_eq!(app.refresh(&client, rt).await.status(), 200);
    assert_eq!(
        app.introspect(&rs, rt)
            .await
            .json::<Value>()
            .await
            .expect("json"),
        json!({"active": false})
    );
}

#[tokio::test]
async fn introspection_needs_a_confidential_client() {
    let app = spawn_app().await;
    let (client, _, login) = app.logged_in_user(None).await;
    let res = app
        .client
        .post(app.url("/oauth/introspect"))
        .form(&[
            ("token", str_field(&login, "access_token")),
            ("client_id", client.id.as_str()),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 401);
    let res = app
        .client
        .post(app.url("/oauth/introspect"))
        .form(&[("token", str_field(&login, "access_token"))])
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 401);
}

/// RFC 7662 §4: a confidential client that is neither a token's client nor
/// its audience learns nothing about it, access token or refresh token; the
/// token's own client and the resource server it was issued for do.
async fn introspection_answers_only_the_tokens_client_and_audience(backend: Backend) {
    let app = app_or_skip!(backend);
    // A confidential app with its own API audience, whose users log in.
    let own = app
        .create_client(
            ClientKind::Confidential,
            &[GrantType::Password, GrantType::RefreshToken],
            "openid",
            Some("orders-api"),
        )
        .await;
    // The resource server for that audience.
    let orders = app
        .create_client(
            ClientKind::Confidential,
            &[GrantType::ClientCredentials],
            "read",
            Some("orders-api"),
        )
        .await;
    // Some other registered client, with no business with these tokens.
    let stranger = app
        .create_client(
            ClientKind::Confidential,
            &[GrantType::ClientCredentials],
            "read",
            Some("billing-api"),
        )
        .await;
    let default_audience = app
        .create_client(
            ClientKind::Confidential,
            &[GrantType::ClientCredentials],
            "read",
            None,
        )
        .await;
    assert_eq!(
        app.signup("i@example.com", "correct horse battery")
            .await
            .status(),
        201
    );
    let login: Value = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&own.id, own.secret.as_deref())
        .form(&[
            ("grant_type", "password"),
            ("username", "i@example.com"),
            ("password", "correct horse battery"),
        ])
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let at = str_field(&login, "access_token");
    let rt = str_field(&login, "refresh_token");

    let active = |body: Value| body["active"] == true;
    let ask = |caller: &TestClient, token: &str| {
        let caller = caller.clone();
        let token = token.to_owned();
        let app = &app;
        async move {
            let res = app.introspect(&caller, &token).await;
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.expect("json")
        }
    };
    for caller in [&stranger, &default_audience] {
        assert_eq!(ask(caller, at).await, json!({"active": false}));
        assert_eq!(ask(caller, rt).await, json!({"active": false}));
    }
    assert!(active(ask(&own, at).await));
    assert!(active(ask(&own, rt).await));
    assert!(active(ask(&orders, at).await));
    // A refresh token has no audience: only its own client may ask.
    assert_eq!(ask(&orders, rt).await, json!({"active": false}));
    // A client created with --introspect may ask about anything.
    let permitted = app.confidential_client().await;
    assert!(active(ask(&permitted, at).await));
    assert!(active(ask(&permitted, rt).await));
}
both_backends!(introspection_answers_only_the_tokens_client_and_audience);
