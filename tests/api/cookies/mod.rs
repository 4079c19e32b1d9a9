//! Cookie mode: token cookies and every attribute of them, refresh
//! and logout from the cookies, the Origin check (and that a refusal changes
//! nothing), CORS, and the demo page with its client. This module holds
//! what the three share: the cookie jar and its checks, the cookie clients.

mod cors;
mod demo;
mod tokens;

use std::collections::BTreeSet;

use chrono::Duration;
use latchkey::domain::clients::NewClient;
use latchkey::domain::types::{ClientKind, GrantType, Scope};
use serde_json::Value;

use crate::helpers::{
    new_shared, spawn_app, spawn_instance, spawn_on_with, str_field, Backend, TestApp, TestClient,
};
use crate::{app_or_skip, both_backends};

const ORIGIN: &str = "https://app.example";
const PASSWORD: &str = "correct horse battery";
const ACCESS: &str = "__Host-lk_at";
const REFRESH: &str = "__Secure-lk_rt";
/// The default access-token lifetime.
const ACCESS_TTL: i64 = 900;
/// A fresh session's refresh lifetime: the idle timeout (14 days) comes
/// before the absolute one (30 days).
const REFRESH_TTL: i64 = 14 * 24 * 3600;

#[derive(Debug)]
struct SetCookie {
    name: String,
    value: String,
    attrs: BTreeSet<String>,
}

impl SetCookie {
    fn path(&self) -> &str {
        self.attrs
            .iter()
            .find_map(|a| a.strip_prefix("Path="))
            .expect("every cookie has a Path")
    }
}

fn set_cookies(res: &reqwest::Response) -> Vec<SetCookie> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| {
            let raw = v.to_str().expect("ASCII Set-Cookie");
            let mut parts = raw.split("; ");
            let (name, value) = parts
                .next()
                .and_then(|p| p.split_once('='))
                .expect("name=value");
            SetCookie {
                name: name.to_owned(),
                value: value.to_owned(),
                attrs: parts.map(str::to_owned).collect(),
            }
        })
        .collect()
}

/// Exactly these attributes: no Domain (a `__Host-` cookie must have none,
/// and the refresh cookie stays host-only too), no Expires, nothing else.
fn attrs(path: &str, max_age: i64) -> BTreeSet<String> {
    [
        "HttpOnly".to_owned(),
        "Secure".to_owned(),
        "SameSite=Strict".to_owned(),
        format!("Path={path}"),
        format!("Max-Age={max_age}"),
    ]
    .into_iter()
    .collect()
}

/// The token cookies a browser would hold.
#[derive(Debug, Clone)]
struct Jar {
    access: String,
    refresh: String,
}

/// Asserts that `res` sets the three token cookies with every attribute,
/// and returns their values.
fn token_cookies(res: &reqwest::Response, refresh_max_age: i64) -> Jar {
    let cookies = set_cookies(res);
    assert_eq!(cookies.len(), 3, "{cookies:?}");
    let access = cookies
        .iter()
        .find(|c| c.name == ACCESS)
        .expect("access cookie");
    assert_eq!(access.attrs, attrs("/", ACCESS_TTL));
    assert!(access.value.starts_with("eyJ"));
    let refresh: Vec<&SetCookie> = cookies.iter().filter(|c| c.name == REFRESH).collect();
    let paths: BTreeSet<&str> = refresh.iter().map(|c| c.path()).collect();
    assert_eq!(paths, BTreeSet::from(["/oauth/token", "/v1/logout"]));
    for c in &refresh {
        assert_eq!(c.attrs, attrs(c.path(), refresh_max_age));
        assert!(c.value.starts_with("lk_rt_"));
        assert_eq!(c.value, refresh[0].value);
    }
    Jar {
        access: access.value.clone(),
        refresh: refresh[0].value.clone(),
    }
}

async fn cookie_client_with(app: &TestApp, cookie_mode: bool, grants: &[GrantType]) -> TestClient {
    let created = app
        .services
        .create_client(NewClient {
            name: "browser".into(),
            kind: ClientKind::Public,
            grants: grants.to_vec(),
            scopes: Scope::parse("openid email").expect("scope"),
            audience: None,
            cookie_mode,
            origins: vec![ORIGIN.into()],
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            first_party: false,
            introspect: false,
            require_dpop: false,
            key_source: None,
            admin: false,
        })
        .await
        .expect("client");
    TestClient {
        id: created.client.id.to_string(),
        secret: None,
    }
}

async fn cookie_client(app: &TestApp) -> TestClient {
    cookie_client_with(app, true, &[GrantType::Password, GrantType::RefreshToken]).await
}

async fn new_user(app: &TestApp) -> String {
    let email = format!("user-{}@example.com", uuid::Uuid::new_v4().simple());
    assert_eq!(app.signup(&email, PASSWORD).await.status(), 201);
    email
}

async fn login_from(
    app: &TestApp,
    client: &TestClient,
    email: &str,
    origin: Option<&str>,
) -> reqwest::Response {
    app.login_with_header(client, email, PASSWORD, origin.map(|o| ("Origin", o)))
        .await
}

/// A cookie-mode client, a user, and the cookies of their login.
async fn logged_in(app: &TestApp) -> (TestClient, String, Jar) {
    let client = cookie_client(app).await;
    let email = new_user(app).await;
    let res = login_from(app, &client, &email, Some(ORIGIN)).await;
    assert_eq!(res.status(), 200);
    let jar = token_cookies(&res, REFRESH_TTL);
    (client, email, jar)
}

async fn refresh_with(
    app: &TestApp,
    client: &TestClient,
    cookie: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url("/oauth/token"))
        .header("Cookie", cookie)
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", client.id.as_str()),
        ]);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("request")
}

async fn refresh_cookie(app: &TestApp, client: &TestClient, rt: &str) -> reqwest::Response {
    refresh_with(
        app,
        client,
        &format!("{REFRESH}={rt}"),
        &[("Origin", ORIGIN)],
    )
    .await
}

fn with_access_cookie(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    jar: &Jar,
    origin: Option<&str>,
) -> reqwest::RequestBuilder {
    let mut req = app
        .client
        .request(method, app.url(path))
        .header("Cookie", format!("{ACCESS}={}", jar.access));
    if let Some(o) = origin {
        req = req.header("Origin", o);
    }
    req
}

async fn userinfo(app: &TestApp, jar: &Jar) -> reqwest::Response {
    with_access_cookie(app, reqwest::Method::GET, "/userinfo", jar, None)
        .send()
        .await
        .expect("request")
}

async fn logout(app: &TestApp, cookie: &str, origin: Option<&str>) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url("/v1/logout"))
        .header("Cookie", cookie);
    if let Some(o) = origin {
        req = req.header("Origin", o);
    }
    req.send().await.expect("request")
}

async fn assert_origin_refused(res: reqwest::Response) {
    assert_eq!(res.status(), 403);
    assert!(set_cookies(&res).is_empty(), "a refusal sets no cookie");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "invalid_request");
}

/// A response header as text, if present and ASCII.
fn header<'a>(res: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    res.headers().get(name).and_then(|v| v.to_str().ok())
}
