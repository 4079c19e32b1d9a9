//! The test harness: `spawn_app` starts the real server on 127.0.0.1:0 with a
//! fresh database (a SQLite file in a temp dir, or a uniquely named
//! PostgreSQL database dropped afterwards), a fresh key and a settable clock.

use std::path::Path;
use std::sync::Arc;

use chrono::Duration;
use latchkey::clock::TestClock;
use latchkey::config::{RawSettings, Settings};
use latchkey::domain::clients::NewClient;
use latchkey::domain::types::{ClientKind, GrantType, Scope};
use latchkey::domain::Services;
use latchkey::keys::KeyRing;
use latchkey::startup::Application;
use latchkey::store::Store;
use serde_json::Value;
use tempfile::TempDir;

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub use pg_db::TestDb;

#[path = "../common/pg_db.rs"]
mod pg_db;

#[path = "../common/smtp_sink.rs"]
pub mod smtp_sink;

/// A running server.
pub struct TestApp {
    pub address: String,
    /// The metrics listener, when `metrics.listen` is set.
    pub metrics_address: Option<String>,
    pub client: reqwest::Client,
    pub clock: TestClock,
    pub services: Services,
    /// The settings the instance runs with, validated as in production.
    pub settings: Arc<Settings>,
    /// The store behind the services, for seeding and inspecting rows.
    pub store: Arc<dyn Store>,
    /// The key ring, for reloading it without waiting for the interval.
    pub keys: Arc<KeyRing>,
    /// Keeps the temp dirs and database alive while this instance runs.
    _shared: Arc<SharedHandle>,
    handle: actix_web::dev::ServerHandle,
}

/// Keeps temp dirs and the database alive while any instance runs.
pub struct SharedHandle {
    pub keys_dir: Arc<TempDir>,
    pub data_dir: Arc<TempDir>,
    pub db: Option<Arc<TestDb>>,
    pub clock: TestClock,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let h = self.handle.clone();
        drop(tokio::spawn(async move { h.stop(false).await }));
    }
}

/// Test settings as written: the defaults with port 0, the given store and
/// keys folder. Tests adjust them and `validated` checks them as `--config`
/// layers are checked in production.
pub fn test_settings(url: &str, keys_dir: &Path) -> RawSettings {
    let mut s = RawSettings::defaults().expect("defaults parse");
    s.server.port = 0;
    s.server.workers = 2;
    s.database.url = url.to_owned().into();
    s.keys.dir = keys_dir.to_owned();
    s.passwords.max_concurrent_hashes = 2;
    s.demo.enabled = false;
    s
}

/// `raw` through production's validation.
pub fn validated(raw: RawSettings) -> Settings {
    Settings::validate(raw).expect("test settings are valid")
}

/// A server on SQLite.
pub async fn spawn_app() -> TestApp {
    spawn_on(Backend::Sqlite)
        .await
        .expect("SQLite is always available")
}

/// A server on `backend`; `None` when PostgreSQL is not configured.
pub async fn spawn_on(backend: Backend) -> Option<TestApp> {
    spawn_on_with(backend, |_| {}).await
}

/// A server on `backend` with settings adjusted by `tweak`.
pub async fn spawn_on_with(
    backend: Backend,
    tweak: impl FnOnce(&mut RawSettings),
) -> Option<TestApp> {
    let shared = new_shared(backend).await?;
    Some(spawn_instance(&shared, tweak).await)
}

/// Fresh temp dirs, database and clock for one or more instances.
pub async fn new_shared(backend: Backend) -> Option<Arc<SharedHandle>> {
    let db = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(Arc::new(TestDb::create().await?)),
    };
    Some(Arc::new(SharedHandle {
        keys_dir: Arc::new(tempfile::tempdir().expect("tempdir")),
        data_dir: Arc::new(tempfile::tempdir().expect("tempdir")),
        db,
        clock: TestClock::new(),
    }))
}

/// Starts one more instance on `shared`'s database, keys folder and clock.
pub async fn spawn_instance(
    shared: &Arc<SharedHandle>,
    tweak: impl FnOnce(&mut RawSettings),
) -> TestApp {
    spawn_instance_with_clock(shared, shared.clock.clone(), tweak).await
}

/// Starts one more instance on `shared`'s database and keys folder, with its
/// own clock (for instances whose clocks disagree).
pub async fn spawn_instance_with_clock(
    shared: &Arc<SharedHandle>,
    clock: TestClock,
    tweak: impl FnOnce(&mut RawSettings),
) -> TestApp {
    let url = match &shared.db {
        Some(db) => db.url.clone(),
        None => format!(
            "sqlite://{}",
            shared.data_dir.path().join("latchkey.db").display()
        ),
    };
    let mut settings = test_settings(&url, shared.keys_dir.path());
    tweak(&mut settings);
    let app = Application::build(validated(settings), Arc::new(clock.clone()))
        .await
        .expect("application builds");
    let port = app.port();
    let metrics_address = app.metrics_port().map(|p| format!("http://127.0.0.1:{p}"));
    let services = app.services().clone();
    let settings = app.settings().clone();
    let store = app.store().clone();
    let keys = app.keys().clone();
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        metrics_address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        clock,
        services,
        settings,
        store,
        keys,
        _shared: shared.clone(),
        handle,
    }
}

/// Points `settings` at an SMTP sink on loopback (plain text, allowed only
/// for loopback) and polls the outbox often, as a test wants.
pub fn mail_to_sink(settings: &mut RawSettings, port: u16) {
    use latchkey::config::{MailTransport, SmtpTls};
    let e = &mut settings.email;
    e.transport = MailTransport::Smtp;
    e.smtp_host = "127.0.0.1".into();
    e.smtp_port = port;
    e.smtp_tls = SmtpTls::None;
    e.smtp_timeout_secs = 5;
    e.poll_interval_ms = 50;
    e.product_name = "Acme".into();
}

/// A server on `backend` that mails through a fresh SMTP sink.
pub async fn spawn_with_mail(
    backend: Backend,
    mode: smtp_sink::Mode,
) -> Option<(TestApp, smtp_sink::SmtpSink)> {
    let sink = smtp_sink::SmtpSink::start(mode).await;
    let port = sink.port;
    let app = spawn_on_with(backend, |s| mail_to_sink(s, port)).await?;
    Some((app, sink))
}

/// A registered client: id and, for confidential clients, secret.
#[derive(Debug, Clone)]
pub struct TestClient {
    pub id: String,
    pub secret: Option<String>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn advance_clock(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// Stops this instance (its listener and, after in-flight requests, its
    /// pool), as a restart would.
    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }

    pub async fn post_json(&self, path: &str, body: Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    /// Registers a client directly through the domain service.
    pub async fn create_client(
        &self,
        kind: ClientKind,
        grants: &[GrantType],
        scopes: &str,
        audience: Option<&str>,
    ) -> TestClient {
        self.register_client(kind, grants, scopes, audience, false)
            .await
    }

    async fn register_client(
        &self,
        kind: ClientKind,
        grants: &[GrantType],
        scopes: &str,
        audience: Option<&str>,
        introspect: bool,
    ) -> TestClient {
        let created = self
            .services
            .create_client(NewClient {
                name: "test".into(),
                kind,
                grants: grants.to_vec(),
                scopes: Scope::parse(scopes).expect("scope"),
                audience: audience.map(str::to_owned),
                cookie_mode: false,
                origins: vec![],
                redirect_uris: vec![],
                post_logout_redirect_uris: vec![],
                first_party: false,
                introspect,
                require_dpop: false,
                admin: false,
                key_source: None,
            })
            .await
            .expect("client created");
        TestClient {
            id: created.client.id.to_string(),
            secret: created.secret,
        }
    }

    /// A public client allowed password and refresh_token, scopes openid and email.
    pub async fn public_client(&self) -> TestClient {
        self.create_client(
            ClientKind::Public,
            &[GrantType::Password, GrantType::RefreshToken],
            "openid email profile",
            None,
        )
        .await
    }

    /// A confidential client allowed client_credentials and holding the
    /// introspection permission (`--introspect`): a resource server that
    /// introspects every user's tokens.
    pub async fn confidential_client(&self) -> TestClient {
        self.register_client(
            ClientKind::Confidential,
            &[GrantType::ClientCredentials],
            "read write",
            None,
            true,
        )
        .await
    }

    pub async fn signup(&self, email: &str, password: &str) -> reqwest::Response {
        self.client
            .post(self.url("/v1/users"))
            .json(&serde_json::json!({ "email": email, "password": password }))
            .send()
            .await
            .expect("request")
    }

    pub async fn post_token(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url("/oauth/token"))
            .form(form)
            .send()
            .await
            .expect("request")
    }

    pub async fn login(
        &self,
        client: &TestClient,
        email: &str,
        password: &str,
        scope: Option<&str>,
    ) -> reqwest::Response {
        let mut form = vec![
            ("grant_type", "password"),
            ("username", email),
            ("password", password),
            ("client_id", client.id.as_str()),
        ];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        self.post_token(&form).await
    }

    /// A password grant sent with one extra header: an `Origin` (cookie
    /// mode) or an `X-Forwarded-For` (throttling behind a proxy).
    pub async fn login_with_header(
        &self,
        client: &TestClient,
        email: &str,
        password: &str,
        header: Option<(&str, &str)>,
    ) -> reqwest::Response {
        let mut req = self.client.post(self.url("/oauth/token")).form(&[
            ("grant_type", "password"),
            ("username", email),
            ("password", password),
            ("client_id", client.id.as_str()),
        ]);
        if let Some((name, value)) = header {
            req = req.header(name, value);
        }
        req.send().await.expect("request")
    }

    pub async fn refresh(&self, client: &TestClient, refresh_token: &str) -> reqwest::Response {
        self.post_token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", client.id.as_str()),
        ])
        .await
    }

    pub async fn get_jwks(&self) -> reqwest::Response {
        self.client
            .get(self.url("/.well-known/jwks.json"))
            .send()
            .await
            .expect("request")
    }

    pub async fn get_bearer(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn introspect(&self, client: &TestClient, token: &str) -> reqwest::Response {
        self.client
            .post(self.url("/oauth/introspect"))
            .basic_auth(&client.id, client.secret.as_deref())
            .form(&[("token", token)])
            .send()
            .await
            .expect("request")
    }

    /// Signs up a user, creates a public client and logs in: returns the
    /// client, the email and the token response.
    pub async fn logged_in_user(&self, scope: Option<&str>) -> (TestClient, String, Value) {
        let client = self.public_client().await;
        let email = format!("user-{}@example.com", uuid::Uuid::new_v4().simple());
        assert_eq!(
            self.signup(&email, "correct horse battery").await.status(),
            201
        );
        let res = self
            .login(&client, &email, "correct horse battery", scope)
            .await;
        assert_eq!(res.status(), 200);
        (client, email, res.json().await.expect("json"))
    }
}

/// Runs a test body against SQLite and against PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($case:ident) => {
        mod $case {

            #[tokio::test]
            async fn sqlite() {
                super::$case($crate::helpers::Backend::Sqlite).await
            }

            #[tokio::test]
            async fn postgres() {
                super::$case($crate::helpers::Backend::Postgres).await
            }
        }
    };
}

/// `spawn_on`, or return from the test (PostgreSQL not configured).
#[macro_export]
macro_rules! app_or_skip {
    ($backend:expr) => {
        match $crate::helpers::spawn_on($backend).await {
            Some(app) => app,
            None => return,
        }
    };
}

/// Segment `n` of a compact JWT as JSON (0 the header, 1 the claims),
/// unverified: the tests read what the server signed.
fn jwt_segment(token: &str, n: usize) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(n).expect("a JWT segment");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

/// A JWT's claims, unverified.
pub fn claims(token: &str) -> Value {
    jwt_segment(token, 1)
}

/// The `kid` of a JWT's header.
pub fn kid_of(token: &str) -> String {
    jwt_segment(token, 0)["kid"]
        .as_str()
        .expect("kid")
        .to_owned()
}

/// The session (`sid`) an access token belongs to.
pub fn sid_of(token: &str) -> latchkey::domain::types::SessionId {
    latchkey::domain::types::SessionId::parse(claims(token)["sid"].as_str().expect("sid"))
        .expect("a session id")
}

/// `s` (e.g. a command's output) as JSON, or a failure that shows it.
pub fn json(s: &str) -> Value {
    serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

pub fn str_field<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
}

/// Sends `request` as raw bytes (it should say `Connection: close`) and
/// returns the status and the whole response as text: for requests reqwest
/// will not build (bad bytes in headers, chunked bodies, odd paths).
pub async fn raw_http(app: &TestApp, request: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut out = Vec::new();
    // The server may answer (and close) before it has read everything.
    let _ = stream.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    (status, text)
}

/// The JSON body of a raw response.
pub fn raw_json_body(response: &str) -> Value {
    let (head, body) = response.split_once("\r\n\r\n").expect("head and body");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"))
}
