//! Secret hygiene and response headers: the real binary, logging at trace
//! level, never writes a password, token, client secret or key material to
//! its logs; every response carries the security headers, and HSTS when the
//! issuer is https.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;

use crate::helpers::json;
use crate::helpers::{spawn_app, spawn_on_with, Backend};
use crate::process::ServerProcess;

const PASSWORD: &str = "Tr0ub4dor&3-horse-battery";
const WRONG_PASSWORD: &str = "Wr0ng-passw0rd-guess";

fn field(v: &Value, k: &str) -> String {
    v[k].as_str()
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
        .to_owned()
}

/// Every secret that crossed the wire in `exercise`.
struct Secrets(Vec<(String, String)>);

impl Secrets {
    fn add(&mut self, what: &str, value: &str) {
        self.0.push((what.to_owned(), value.to_owned()));
    }

    fn add_jwt(&mut self, what: &str, token: &str) {
        self.add(what, token);
        // Any part of it: the claims and the signature are each telling.
        for (i, part) in token.split('.').enumerate().skip(1) {
            self.add(&format!("{what} part {i}"), part);
        }
    }
}

/// Sign-up, login, refresh, client_credentials (both client
/// authentications), introspection, userinfo, revocation, a failed login and
/// a reused refresh token, against the running binary.
async fn exercise(server: &ServerProcess, secrets: &mut Secrets) -> String {
    let mut cli_logs = String::new();
    let (ok, out, err) = server.cli(
        &[
            "clients",
            "create",
            "--name",
            "app",
            "--kind",
            "public",
            "--grants",
            "password,refresh_token",
            "--scopes",
            "openid,email",
            "--json",
        ],
        None,
    );
    assert!(ok, "{err}");
    cli_logs.push_str(&err);
    let public = field(&json(&out), "client_id");
    let (ok, out, err) = server.cli(
        &[
            "clients",
            "create",
            "--name",
            "api",
            "--kind",
            "confidential",
            "--grants",
            "client_credentials",
            "--scopes",
            "read",
            "--json",
        ],
        None,
    );
    assert!(ok, "{err}");
    cli_logs.push_str(&err);
    let created = json(&out);
    let (conf_id, conf_secret) = (
        field(&created, "client_id"),
        field(&created, "client_secret"),
    );
    secrets.add("client secret", &conf_secret);
    secrets.add(
        "basic credentials",
        &STANDARD.encode(format!("{conf_id}:{conf_secret}")),
    );

    let http = reqwest::Client::new();
    let res = http
        .post(server.url("/v1/users"))
        .json(&serde_json::json!({"email": "hygiene@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 201);
    let token = |form: Vec<(&'static str, String)>| {
        http.post(server.url("/oauth/token")).form(&form).send()
    };
    let login: Value = token(vec![
        ("grant_type", "password".into()),
        ("username", "hygiene@example.com".into()),
        ("password", PASSWORD.into()),
        ("client_id", public.clone()),
        ("scope", "openid email".into()),
    ])
    .await
    .expect("request")
    .json()
    .await
    .expect("json");
    let first_refresh = field(&login, "refresh_token");
    secrets.add("refresh token", &first_refresh);
    secrets.add_jwt("access token", &field(&login, "access_token"));
    secrets.add_jwt("id_token", &field(&login, "id_token"));

    let refreshed: Value = token(vec![
        ("grant_type", "refresh_token".into()),
        ("refresh_token", first_refresh.clone()),
        ("client_id", public.clone()),
    ])
    .await
    .expect("request")
    .json()
    .await
    .expect("json");
    let second_refresh = field(&refreshed, "refresh_token");
    secrets.add("rotated refresh token", &second_refresh);
    secrets.add_jwt("refreshed access token", &field(&refreshed, "access_token"));

    let basic: Value = http
        .post(server.url("/oauth/token"))
        .basic_auth(&conf_id, Some(&conf_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    secrets.add_jwt("client_credentials token", &field(&basic, "access_token"));
    let post: Value = token(vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", conf_id.clone()),
        ("client_secret", conf_secret.clone()),
    ])
    .await
    .expect("request")
    .json()
    .await
    .expect("json");
    secrets.add_jwt("client_secret_post token", &field(&post, "access_token"));

    let res = http
        .post(server.url("/oauth/introspect"))
        .basic_auth(&conf_id, Some(&conf_secret))
        .form(&[("token", field(&refreshed, "access_token"))])
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    let res = http
        .get(server.url("/userinfo"))
        .bearer_auth(field(&refreshed, "access_token"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);

    // Failures log more than successes do.
    let res = token(vec![
        ("grant_type", "password".into()),
        ("username", "hygiene@example.com".into()),
        ("password", WRONG_PASSWORD.into()),
        ("client_id", public.clone()),
    ])
    .await
    .expect("request");
    assert_eq!(res.status(), 400);
    let res = http
        .post(server.url("/oauth/token"))
        .basic_auth(&conf_id, Some("lk_cs_not-the-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 401);
    // Reuse of a rotated token (no grace period here): revokes the session
    // and logs a warning.
    let res = token(vec![
        ("grant_type", "refresh_token".into()),
        ("refresh_token", first_refresh),
        ("client_id", public.clone()),
    ])
    .await
    .expect("request");
    assert_eq!(res.status(), 400);
    let res = http
        .post(server.url("/oauth/revoke"))
        .form(&[("token", second_refresh.as_str()), ("client_id", &public)])
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    cli_logs.push_str(&exercise_private_key_jwt(server, &http, secrets).await);
    secrets.add("password", PASSWORD);
    secrets.add("wrong password", WRONG_PASSWORD);
    cli_logs
}

/// A `private_key_jwt` client: registered from a JWK file, then a good and
/// a forged assertion; neither may reach the logs.
async fn exercise_private_key_jwt(
    server: &ServerProcess,
    http: &reqwest::Client,
    secrets: &mut Secrets,
) -> String {
    use crate::dpop::signer::ProofKey;
    let dir = tempfile::tempdir().expect("tempdir");
    let key = ProofKey::es256();
    let file = dir.path().join("client.jwk.json");
    std::fs::write(&file, key.jwk.to_string()).expect("write");
    let (ok, out, err) = server.cli(
        &[
            "clients",
            "create",
            "--name",
            "keyed",
            "--kind",
            "confidential",
            "--grants",
            "client_credentials",
            "--scopes",
            "read",
            "--auth-method",
            "private_key_jwt",
            "--jwk",
            file.to_str().expect("path"),
            "--json",
        ],
        None,
    );
    assert!(ok, "{err}");
    let id = field(&json(&out), "client_id");
    let now = latchkey::clock::Clock::now(&latchkey::clock::SystemClock).timestamp();
    let claims = |jti: &str| {
        serde_json::json!({"iss": id, "sub": id, "aud": "http://127.0.0.1:8080",
                           "iat": now, "exp": now + 60, "jti": jti})
    };
    let header = serde_json::json!({"alg": "ES256"});
    let good = key.sign(&header, &claims("hygiene-1"));
    let forged = ProofKey::es256().sign(&header, &claims("hygiene-2"));
    for (assertion, status) in [(&good, 200), (&forged, 401)] {
        let res = http
            .post(server.url("/oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", assertion.as_str()),
            ])
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), status);
        secrets.add_jwt("client assertion", assertion);
    }
    err
}

#[tokio::test]
async fn logs_at_trace_level_hold_no_secrets() {
    let server = ServerProcess::start(&[
        ("LATCHKEY__LOG__LEVEL", "trace"),
        ("LATCHKEY__LOG__FORMAT", "json"),
        ("LATCHKEY__TOKENS__REFRESH_GRACE_SECS", "0"),
    ]);
    let mut secrets = Secrets(Vec::new());
    let cli_logs = exercise(&server, &mut secrets).await;
    for entry in std::fs::read_dir(server.keys_dir()).expect("keys dir") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for line in text
            .lines()
            .filter(|l| l.len() >= 32 && !l.starts_with("-----"))
        {
            secrets.add(&format!("line of {}", path.display()), line.trim());
        }
    }
    server.terminate();
    let (status, server_logs) = server.wait();
    assert!(status.success());

    let logs = format!("{server_logs}{cli_logs}");
    // The logs are real: debug lines of refused requests are in them.
    assert!(logs.contains("request refused"));
    assert!(logs.contains("refresh_token_reused"));
    for (what, value) in &secrets.0 {
        assert!(!logs.contains(value.as_str()), "{what} appears in the logs");
    }
    for marker in [
        "PRIVATE KEY",
        "lk_rt_",
        "lk_cs_",
        "eyJ",
        "Basic ",
        "Bearer ",
    ] {
        assert!(!logs.contains(marker), "{marker:?} appears in the logs");
    }
}

#[tokio::test]
async fn every_response_carries_the_security_headers_and_no_hsts_over_http() {
    let app = spawn_app().await;
    for (method, path) in [
        (reqwest::Method::GET, "/healthz"),
        (reqwest::Method::GET, "/.well-known/jwks.json"),
        (reqwest::Method::GET, "/nope"),
        (reqwest::Method::GET, "/oauth/token"),
        (reqwest::Method::POST, "/oauth/token"),
    ] {
        let res = app
            .client
            .request(method, app.url(path))
            .send()
            .await
            .expect("request");
        let h = res.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert!(!h.contains_key("strict-transport-security"), "{path}");
    }
}

#[tokio::test]
async fn an_https_issuer_adds_hsts_to_every_response() {
    let app = spawn_on_with(Backend::Sqlite, |s| {
        s.server.issuer = "https://auth.example.test".into();
    })
    .await
    .expect("SQLite");
    for path in ["/healthz", "/.well-known/openid-configuration", "/nope"] {
        let res = app.client.get(app.url(path)).send().await.expect("request");
        let hsts = res.headers()["strict-transport-security"]
            .to_str()
            .expect("ascii");
        assert!(hsts.starts_with("max-age="), "{path}: {hsts}");
        assert!(hsts.contains("includeSubDomains"), "{path}: {hsts}");
    }
}
