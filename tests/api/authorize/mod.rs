//! The authorization code flow over HTTP: `/authorize`, the login and
//! consent pages, the code grant with PKCE, the browser session, consent
//! and logout. A `Browser` keeps cookies by hand (reqwest's store will not
//! send `Secure` cookies over plain http) and never follows redirects.

mod consent;
mod errors;
mod flow;
mod logout;

use std::collections::HashMap;

use base64::Engine;
use latchkey::domain::clients::NewClient;
use latchkey::domain::types::{ClientKind, GrantType, Scope};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::Value;

pub use crate::helpers::claims;
use crate::helpers::{TestApp, TestClient};

pub const PASSWORD: &str = "correct horse battery";
pub const REDIRECT: &str = "http://127.0.0.1/callback";
pub const WEB_REDIRECT: &str = "https://app.example.com/cb";
pub const LOGOUT_REDIRECT: &str = "https://app.example.com/signed-out";

/// A browser: a cookie jar and no redirect following.
pub struct Browser<'a> {
    pub app: &'a TestApp,
    pub cookies: HashMap<String, String>,
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, res: &reqwest::Response) {
        for v in res.headers().get_all(SET_COOKIE) {
            let v = v.to_str().expect("ascii");
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            if value.is_empty() || attrs.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    pub async fn get(&mut self, path_and_query: &str) -> reqwest::Response {
        let res = self
            .app
            .client
            .get(self.app.url(path_and_query))
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .expect("request");
        self.keep_cookies(&res);
        res
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let res = self
            .app
            .client
            .post(self.app.url(path))
            .header(COOKIE, self.cookie_header())
            .form(form)
            .send()
            .await
            .expect("request");
        self.keep_cookies(&res);
        res
    }

    /// Submits the login form of `page` with `email` and `password`.
    pub async fn log_in(&mut self, page: &str, email: &str, password: &str) -> reqwest::Response {
        let csrf = hidden(page, "csrf_token");
        let request = hidden(page, "request");
        self.post(
            "/login",
            &[
                ("csrf_token", &csrf),
                ("request", &request),
                ("email", email),
                ("password", password),
            ],
        )
        .await
    }

    /// Submits the consent form of `page` with `decision`.
    pub async fn decide(&mut self, page: &str, decision: &str) -> reqwest::Response {
        let csrf = hidden(page, "csrf_token");
        let request = hidden(page, "request");
        self.post(
            "/consent",
            &[
                ("csrf_token", &csrf),
                ("request", &request),
                ("decision", decision),
            ],
        )
        .await
    }
}

/// The value of the hidden input `name` in `html`, unescaped.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    let end = start + html[start..].find('"').expect("closing quote");
    unescape(&html[start..end])
}

fn unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref());
    (verifier, challenge)
}

/// An `/authorize` URL for `client`.
pub fn authorize_url(
    client: &str,
    redirect: &str,
    challenge: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", client)
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", "openid email")
        .append_pair("state", "st-123")
        .append_pair("nonce", "n-456")
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256");
    for (k, v) in extra {
        q.append_pair(k, v);
    }
    format!("/authorize?{}", q.finish())
}

/// The query parameters of a `Location`.
pub fn location_params(res: &reqwest::Response) -> (String, HashMap<String, String>) {
    let loc = res
        .headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("no Location on {}", res.status()))
        .to_str()
        .expect("ascii")
        .to_owned();
    let query = loc.split_once('?').map(|(_, q)| q).unwrap_or("");
    let params = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    (loc, params)
}

/// A client of the code flow.
pub async fn code_client(app: &TestApp, kind: ClientKind, first_party: bool) -> TestClient {
    let created = app
        .services
        .create_client(NewClient {
            name: "Example App".into(),
            kind,
            grants: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            scopes: Scope::parse("openid email").expect("scope"),
            audience: None,
            cookie_mode: false,
            origins: vec![],
            redirect_uris: vec![REDIRECT.into(), WEB_REDIRECT.into()],
            post_logout_redirect_uris: vec![LOGOUT_REDIRECT.into()],
            first_party,
            introspect: false,
            require_dpop: false,
            admin: false,
            key_source: None,
        })
        .await
        .expect("client");
    TestClient {
        id: created.client.id.to_string(),
        secret: created.secret,
    }
}

/// A signed-up user's email.
pub async fn user(app: &TestApp) -> String {
    let email = format!("u-{}@example.com", uuid::Uuid::new_v4().simple());
    assert_eq!(app.signup(&email, PASSWORD).await.status(), 201);
    email
}

/// The token request that exchanges a code (with the client's secret,
/// when it has one).
pub fn code_form<'a>(
    client: &'a TestClient,
    code: &'a str,
    redirect: &'a str,
    verifier: &'a str,
) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect),
        ("code_verifier", verifier),
        ("client_id", client.id.as_str()),
    ];
    if let Some(s) = &client.secret {
        form.push(("client_secret", s));
    }
    form
}

/// Exchanges a code.
pub async fn redeem(
    app: &TestApp,
    client: &TestClient,
    code: &str,
    redirect: &str,
    verifier: &str,
) -> reqwest::Response {
    app.post_token(&code_form(client, code, redirect, verifier))
        .await
}

/// Logs `email` in through the pages and returns the code's redirect.
pub async fn sign_in(
    browser: &mut Browser<'_>,
    client: &TestClient,
    email: &str,
    challenge: &str,
) -> reqwest::Response {
    sign_in_with(browser, client, email, challenge, &[]).await
}

/// `sign_in` with `extra` authorization request parameters, which the
/// login page carries through.
pub async fn sign_in_with(
    browser: &mut Browser<'_>,
    client: &TestClient,
    email: &str,
    challenge: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let res = browser
        .get(&authorize_url(&client.id, REDIRECT, challenge, extra))
        .await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.expect("page");
    browser.log_in(&page, email, PASSWORD).await
}
