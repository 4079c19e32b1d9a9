//! Store outages: with the database unreachable, the endpoints that need it
//! answer 503 `temporarily_unavailable` with `Retry-After` within the pool's
//! acquire timeout (never a hang), JWKS, discovery and `/healthz` keep
//! answering, `/readyz` says 503, and service resumes by itself when the
//! database is back. PostgreSQL is cut with a TCP proxy inside the test;
//! SQLite by moving its file away.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::helpers::{new_shared, spawn_instance, str_field, Backend, TestApp};

/// A TCP proxy to PostgreSQL that can be cut (open connections dropped, new
/// ones accepted but never answered, like a partitioned network) and
/// restored.
pub(crate) struct CuttableProxy {
    pub(crate) port: u16,
    cut: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    held: Arc<Mutex<Vec<TcpStream>>>,
    accept: JoinHandle<()>,
}

impl CuttableProxy {
    pub(crate) async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let cut = Arc::new(AtomicBool::new(false));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (c, l, h) = (cut.clone(), links.clone(), held.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut downstream, _)) = listener.accept().await {
                if c.load(Ordering::SeqCst) {
                    h.lock().expect("lock").push(downstream);
                    continue;
                }
                let upstream = upstream.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut up) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut downstream, &mut up).await;
                    }
                });
                l.lock().expect("lock").push(link);
            }
        });
        Self {
            port,
            cut,
            links,
            held,
            accept,
        }
    }

    pub(crate) fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for link in self.links.lock().expect("lock").drain(..) {
            link.abort();
        }
    }

    pub(crate) fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
        self.held.lock().expect("lock").clear();
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// `host:port` of a postgres:// URL, and the URL with it replaced by the
/// proxy's.
pub(crate) fn via_proxy(url: &str, proxy_port: u16) -> (String, String) {
    let (scheme, rest) = url.split_once("://").expect("scheme");
    let (authority, path) = rest.split_once('/').expect("database name");
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), authority),
    };
    let upstream = if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:5432")
    };
    let proxied = format!("{scheme}://{userinfo}127.0.0.1:{proxy_port}/{path}");
    (upstream, proxied)
}

/// A client whose timeout turns a hang into a test failure.
fn impatient() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(StdDuration::from_secs(30))
        .build()
        .expect("client")
}

async fn assert_unavailable(res: reqwest::Response, what: &str) {
    assert_eq!(res.status(), 503, "{what}");
    assert!(res.headers().contains_key("retry-after"), "{what}");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "temporarily_unavailable", "{what}");
}

/// The whole outage, between `cut` and `restore`.
async fn outage_and_recovery(app: &TestApp, cut: impl FnOnce(), restore: impl FnOnce()) {
    let http = impatient();
    let (client, email, login) = app.logged_in_user(None).await;
    let refresh_token = str_field(&login, "refresh_token").to_owned();
    let access_token = str_field(&login, "access_token").to_owned();
    let form = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    let login_form = form(&[
        ("grant_type", "password"),
        ("username", &email),
        ("password", "correct horse battery"),
        ("client_id", &client.id),
    ]);
    let refresh_form = form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", &refresh_token),
        ("client_id", &client.id),
    ]);

    cut();

    let token = |f: &Vec<(String, String)>| http.post(app.url("/oauth/token")).form(f).send();
    assert_unavailable(token(&login_form).await.expect("request"), "password grant").await;
    assert_unavailable(token(&refresh_form).await.expect("request"), "refresh").await;
    let res = http
        .post(app.url("/oauth/revoke"))
        .form(&form(&[
            ("token", &refresh_token),
            ("client_id", &client.id),
        ]))
        .send()
        .await
        .expect("request");
    assert_unavailable(res, "revoke").await;
    let res = http
        .post(app.url("/v1/users"))
        .json(&serde_json::json!({"email": "new@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .expect("request");
    assert_unavailable(res, "sign-up").await;
    let res = http
        .get(app.url("/v1/account/sessions"))
        .bearer_auth(&access_token)
        .send()
        .await
        .expect("request");
    assert_unavailable(res, "sessions").await;
    let res = http
        .post(app.url("/v1/logout"))
        .json(&serde_json::json!({ "refresh_token": refresh_token }))
        .send()
        .await
        .expect("request");
    assert_unavailable(res, "logout").await;
    for path in [
        "/.well-known/jwks.json",
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/healthz",
    ] {
        let res = http.get(app.url(path)).send().await.expect("request");
        assert_eq!(res.status(), 200, "{path}");
    }
    let res = http.get(app.url("/readyz")).send().await.expect("request");
    assert_eq!(res.status(), 503);

    restore();

    let res = http.get(app.url("/readyz")).send().await.expect("request");
    assert_eq!(res.status(), 200);
    // Nothing was half-applied: the refresh token presented during the
    // outage is still the current one.
    let res = token(&refresh_form).await.expect("request");
    assert_eq!(res.status(), 200);
    let res = token(&login_form).await.expect("request");
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn postgres_outage_gives_503_and_service_resumes_without_restart() {
    let Some(shared) = new_shared(Backend::Postgres).await else {
        return;
    };
    let real_url = shared.db.as_ref().expect("postgres").url.clone();
    let (upstream, _) = via_proxy(&real_url, 0);
    let proxy = CuttableProxy::start(upstream).await;
    let (_, proxied) = via_proxy(&real_url, proxy.port);
    let app = spawn_instance(&shared, |s| {
        s.database.url = proxied.into();
        s.database.acquire_timeout_secs = 1;
    })
    .await;
    outage_and_recovery(&app, || proxy.cut(), || proxy.restore()).await;
}

#[tokio::test]
async fn sqlite_file_gone_gives_503_and_service_resumes_without_restart() {
    let Some(shared) = new_shared(Backend::Sqlite).await else {
        return;
    };
    let app = spawn_instance(&shared, |s| s.database.acquire_timeout_secs = 1).await;
    let file = shared.data_dir.path().join("latchkey.db");
    let away = shared.data_dir.path().join("latchkey.db.away");
    outage_and_recovery(
        &app,
        || std::fs::rename(&file, &away).expect("move the database away"),
        || std::fs::rename(&away, &file).expect("bring it back"),
    )
    .await;
}
