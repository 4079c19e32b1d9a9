//! Every error branch of `/authorize`: before the client and redirect URI
//! are trusted, an error page and never a redirect (RFC 6749 §4.1.2.1);
//! after, a redirect with `error`, `state` and `iss`. CSRF on the forms.

use latchkey::domain::types::ClientKind;

use super::*;
use crate::app_or_skip;
use crate::both_backends;
use crate::helpers::Backend;

async fn errors_before_the_redirect_is_trusted_render_a_page(backend: Backend) {
    let app = app_or_skip!(backend);
    let client = code_client(&app, ClientKind::Public, true).await;
    let (_, challenge) = pkce();
    let unknown = uuid::Uuid::new_v4().to_string();
    let cases: Vec<(&str, String)> = vec![
        (
            "no client_id",
            "/authorize?response_type=code&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb".into(),
        ),
        (
            "unknown client",
            authorize_url(&unknown, WEB_REDIRECT, &challenge, &[]),
        ),
        (
            "malformed client",
            authorize_url("not-a-uuid", WEB_REDIRECT, &challenge, &[]),
        ),
        (
            "no redirect_uri",
            format!("/authorize?response_type=code&client_id={}", client.id),
        ),
        (
            "unregistered redirect",
            authorize_url(&client.id, "https://evil.example/cb", &challenge, &[]),
        ),
        (
            "redirect with extra path",
            authorize_url(&client.id, "https://app.example.com/cb/x", &challenge, &[]),
        ),
        (
            "loopback with another path",
            authorize_url(&client.id, "http://127.0.0.1:5000/other", &challenge, &[]),
        ),
        (
            "repeated client_id",
            format!(
                "{}&client_id={}",
                authorize_url(&client.id, WEB_REDIRECT, &challenge, &[]),
                client.id
            ),
        ),
    ];
    for (what, url) in cases {
        let res = app.client.get(app.url(&url)).send().await.expect("request");
        assert_eq!(res.status(), 400, "{what}");
        assert!(
            res.headers().get("location").is_none(),
            "{what}: never redirected"
        );
        assert!(
            res.headers()["content-type"]
                .to_str()
                .expect("ct")
                .starts_with("text/html"),
            "{what}"
        );
        assert!(
            res.headers().contains_key("content-security-policy"),
            "{what}"
        );
    }
}
both_backends!(errors_before_the_redirect_is_trusted_render_a_page);

async fn errors_after_the_redirect_is_trusted_go_back_to_the_client(backend: Backend) {
    let app = app_or_skip!(backend);
    let client = code_client(&app, ClientKind::Public, true).await;
    let no_code = app
        .create_client(ClientKind::Public, &[GrantType::Password], "openid", None)
        .await;
    let (_, challenge) = pkce();
    let base = authorize_url(&client.id, WEB_REDIRECT, &challenge, &[]);
    let without = |name: &str| {
        let mut q: Vec<(String, String)> =
            url::form_urlencoded::parse(base.split_once('?').expect("q").1.as_bytes())
                .into_owned()
                .filter(|(k, _)| k != name)
                .collect();
        q.sort();
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in q {
            s.append_pair(&k, &v);
        }
        format!("/authorize?{}", s.finish())
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "no response_type",
            without("response_type"),
            "invalid_request",
        ),
        (
            "token response_type",
            base.replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (
            "no code_challenge",
            without("code_challenge"),
            "invalid_request",
        ),
        (
            "plain PKCE",
            base.replace("code_challenge_method=S256", "code_challenge_method=plain"),
            "invalid_request",
        ),
        (
            "no challenge method",
            without("code_challenge_method"),
            "invalid_request",
        ),
        (
            "short challenge",
            base.replace(&challenge, "abc"),
            "invalid_request",
        ),
        (
            "unknown scope",
            base.replace("scope=openid+email", "scope=openid+admin"),
            "invalid_scope",
        ),
        (
            "bad prompt",
            format!("{base}&prompt=select_account"),
            "invalid_request",
        ),
        (
            "none with login",
            format!("{base}&prompt=none+login"),
            "invalid_request",
        ),
        (
            "bad max_age",
            format!("{base}&max_age=soon"),
            "invalid_request",
        ),
        (
            "repeated scope",
            format!("{base}&scope=openid"),
            "invalid_request",
        ),
        (
            "request object",
            format!("{base}&request=eyJ"),
            "request_not_supported",
        ),
        (
            "fragment response mode",
            format!("{base}&response_mode=fragment"),
            "invalid_request",
        ),
        (
            "prompt=none without a session",
            format!("{base}&prompt=none"),
            "login_required",
        ),
    ];
    for (what, url, error) in cases {
        let res = app.client.get(app.url(&url)).send().await.expect("request");
        assert_eq!(res.status(), 303, "{what}");
        let (loc, params) = location_params(&res);
        assert!(
            loc.starts_with("https://app.example.com/cb?"),
            "{what}: {loc}"
        );
        assert_eq!(params["error"], error, "{what}");
        assert!(params.contains_key("error_description"), "{what}");
        assert_eq!(params["iss"], app.settings.issuer(), "{what}");
        if what != "no response_type" {
            assert_eq!(
                params.get("state").map(String::as_str),
                Some("st-123"),
                "{what}"
            );
        }
        assert!(!params.contains_key("code"), "{what}");
    }
    // A client without the grant, at a redirect it could not have registered:
    // its redirect cannot be trusted, so it is a page.
    let res = app
        .client
        .get(app.url(&authorize_url(&no_code.id, WEB_REDIRECT, &challenge, &[])))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 400);
}
both_backends!(errors_after_the_redirect_is_trusted_go_back_to_the_client);

async fn a_login_form_without_the_right_csrf_token_changes_nothing(backend: Backend) {
    let app = app_or_skip!(backend);
    let client = code_client(&app, ClientKind::Public, true).await;
    let email = user(&app).await;
    let mut browser = Browser::new(&app);
    let (_, challenge) = pkce();
    let res = browser
        .get(&authorize_url(&client.id, REDIRECT, &challenge, &[]))
        .await;
    let page = res.text().await.expect("page");
    let request = hidden(&page, "request");
    let csrf = hidden(&page, "csrf_token");

    // Missing token.
    let res = browser
        .post(
            "/login",
            &[
                ("request", &request),
                ("email", &email),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status(), 403);
    // Wrong token.
    let res = browser
        .post(
            "/login",
            &[
                ("csrf_token", "AAAA"),
                ("request", &request),
                ("email", &email),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status(), 403);
    // The right token for another request (a tampered scope or redirect).
    let tampered = request.replace("openid+email", "openid");
    let res = browser
        .post(
            "/login",
            &[
                ("csrf_token", &csrf),
                ("request", &tampered),
                ("email", &email),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status(), 403);
    // The right token from another browser (no binding cookie).
    let mut other = Browser::new(&app);
    let res = other
        .post(
            "/login",
            &[
                ("csrf_token", &csrf),
                ("request", &request),
                ("email", &email),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status(), 403);
    assert!(
        !browser.cookies.contains_key("__Host-lk_session"),
        "no session started"
    );
    assert!(
        !other.cookies.contains_key("__Host-lk_session"),
        "no session started"
    );
    // The genuine form still works.
    let res = browser.log_in(&page, &email, PASSWORD).await;
    assert_eq!(res.status(), 303);
}
both_backends!(a_login_form_without_the_right_csrf_token_changes_nothing);

#[tokio::test]
async fn registration_refuses_unsafe_redirect_uris() {
    let app = crate::helpers::spawn_app().await;
    for (uris, grants) in [
        (
            vec!["https://app.example.com/cb#x"],
            vec![GrantType::AuthorizationCode],
        ),
        (
            vec!["https://*.example.com/cb"],
            vec![GrantType::AuthorizationCode],
        ),
        (
            vec!["http://app.example.com/cb"],
            vec![GrantType::AuthorizationCode],
        ),
        (vec!["myapp:/cb"], vec![GrantType::AuthorizationCode]),
        (vec![], vec![GrantType::AuthorizationCode]),
        (
            vec!["https://app.example.com/cb"],
            vec![GrantType::Password],
        ),
    ] {
        let res = app
            .services
            .create_client(NewClient {
                name: "x".into(),
                kind: ClientKind::Public,
                grants,
                scopes: Scope::parse("openid").expect("scope"),
                audience: None,
                cookie_mode: false,
                origins: vec![],
                redirect_uris: uris.iter().map(|s| (*s).to_owned()).collect(),
                post_logout_redirect_uris: vec![],
                first_party: false,
                introspect: false,
                require_dpop: false,
                admin: false,
                key_source: None,
            })
            .await;
        assert!(res.is_err(), "{uris:?}");
    }
}
