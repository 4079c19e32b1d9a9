//! Against the real latchkey: key rotation under load, and introspection
//! seeing a revocation. Key rotation under load, end to end: the real `latchkey` binary, the
//! `orders` example service in front of it, a load loop calling the service
//! without pause while `latchkey keys rotate` runs and tokens start to be
//! signed with the new key. Not one request may fail, and the service may
//! fetch the JWKS only as often as `Cache-Control` asks, never because of
//! an unknown `kid` (the new key is published twice the max-age before it
//! signs, and the cache renews within the max-age).
//!
//! Both binaries come from the workspace's target directory, which a plain
//! `cargo test` at the workspace root builds (the server's binary and this
//! crate's examples). JWKS max-age is 1 s, so the rotation takes seconds.
//! The rotation also changes the algorithm (RS256 to ES256), and a second
//! test checks tokens of every algorithm latchkey signs.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

const AUD: &str = "orders";
const MAX_AGE_SECS: u64 = 1;

/// `target/debug` (or whichever profile built this test).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps")
        .to_path_buf()
}

fn binary(relative: &str) -> PathBuf {
    let path = target_dir().join(relative);
    assert!(
        path.exists(),
        "{} is missing: run `cargo test` at the workspace root, or `cargo build --bin latchkey --example orders` first",
        path.display()
    );
    path
}

/// A child process killed on drop, with the first stdout line that starts
/// with `prefix`.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_and_wait_for(mut cmd: Command, prefix: &str) -> (Process, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawns");
    let stdout = child.stdout.take().expect("stdout");
    let process = Process(child);
    let (tx, rx) = std::sync::mpsc::channel();
    let prefix = prefix.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix(&prefix) {
                let _ = tx.send(rest.to_owned());
            }
        }
    });
    let rest = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the process announced its address");
    (process, rest)
}

struct Latchkey {
    env: Vec<(String, String)>,
    url: String,
    _process: Process,
    _dir: tempfile::TempDir,
}

impl Latchkey {
    fn start() -> Self {
        Self::start_with(&[])
    }

    fn start_with(extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        // The issuer URL must be known before start-up: take a free port.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let env: Vec<(String, String)> = [
            (
                "LATCHKEY__DATABASE__URL",
                format!("sqlite://{}", dir.path().join("db.sqlite").display()),
            ),
            (
                "LATCHKEY__KEYS__DIR",
                dir.path().join("keys").display().to_string(),
            ),
            ("LATCHKEY__SERVER__PORT", port.to_string()),
            ("LATCHKEY__SERVER__ISSUER", url.clone()),
            ("LATCHKEY__SERVER__WORKERS", "2".into()),
            (
                "LATCHKEY__KEYS__JWKS_MAX_AGE_SECS",
                MAX_AGE_SECS.to_string(),
            ),
            ("LATCHKEY__KEYS__RELOAD_INTERVAL_SECS", "1".into()),
            ("LATCHKEY__PASSWORDS__MAX_CONCURRENT_HASHES", "1".into()),
            ("RUST_LOG", "warn".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .chain(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
        let mut cmd = Command::new(binary("latchkey"));
        cmd.envs(env.iter().cloned())
            .env_remove("DATABASE_URL")
            .arg("serve");
        let (process, _) = spawn_and_wait_for(cmd, "latchkey listening on port ");
        Self {
            env,
            url,
            _process: process,
            _dir: dir,
        }
    }

    fn cli(&self, args: &[&str]) -> Value {
        self.cli_with(args, "", &[])
    }

    fn cli_with(&self, args: &[&str], stdin: &str, extra_env: &[(&str, &str)]) -> Value {
        use std::io::Write;
        let mut child = Command::new(binary("latchkey"))
            .envs(self.env.iter().cloned())
            .envs(extra_env.iter().copied())
            .env_remove("DATABASE_URL")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cli runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("writes stdin");
        let out = child.wait_with_output().expect("cli ends");
        assert!(
            out.status.success(),
            "latchkey {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("--json output")
    }
}

fn header_of(token: &str) -> Value {
    let header = token.split('.').next().expect("header");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("b64")).expect("json")
}

fn kid_of(token: &str) -> String {
    header_of(token)["kid"].as_str().expect("kid").to_owned()
}

async fn token_endpoint(http: &reqwest::Client, issuer: &str) -> String {
    let metadata: Value = http
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .expect("discovery answers")
        .json()
        .await
        .expect("json");
    metadata["token_endpoint"]
        .as_str()
        .expect("token_endpoint")
        .to_owned()
}

async fn client_credentials_token(
    http: &reqwest::Client,
    endpoint: &str,
    id: &str,
    secret: &str,
) -> String {
    let res = http
        .post(endpoint)
        .basic_auth(id, Some(secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "orders:read"),
        ])
        .send()
        .await
        .expect("token endpoint answers");
    assert_eq!(res.status(), 200, "client_credentials grant");
    let body: Value = res.json().await.expect("json");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_load_fails_no_request_and_fetches_only_as_cache_control_says() {
    let latchkey = Latchkey::start();
    let client = latchkey.cli(&[
        "clients",
        "create",
        "--name",
        "orders-load",
        "--kind",
        "confidential",
        "--grants",
        "client_credentials",
        "--scopes",
        "orders:read",
        "--audience",
        AUD,
        "--json",
    ]);
    let id = client["client_id"].as_str().expect("client_id").to_owned();
    let secret = client["client_secret"].as_str().expect("secret").to_owned();

    let mut cmd = Command::new(binary("examples/orders"));
    cmd.args([
        "--issuer",
        &latchkey.url,
        "--audience",
        AUD,
        "--listen",
        "127.0.0.1:0",
    ])
    .args(["--jwks-min-ttl-secs", "1"]);
    let (_service, addr) = spawn_and_wait_for(cmd, "orders listening on ");
    let orders = format!("http://{addr}/orders");
    let service_started = Instant::now();

    let http = reqwest::Client::new();
    let endpoint = token_endpoint(&http, &latchkey.url).await;
    let first = client_credentials_token(&http, &endpoint, &id, &secret).await;
    let old_kid = kid_of(&first);
    let token = Arc::new(RwLock::new(first));
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));

    // The load: four callers without pause, bounded by the stop flag and a
    // hard cap on requests.
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let (http, orders, token) = (http.clone(), orders.clone(), token.clone());
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            tokio::spawn(async move {
                let mut sent = 0;
                while !stop.load(Ordering::SeqCst) && sent < 200_000 {
                    sent += 1;
                    let t = token.read().expect("lock").clone();
                    let res = http.get(&orders).bearer_auth(&t).send().await;
                    match res {
                        Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::SeqCst),
                        Ok(r) => {
                            eprintln!(
                                "request failed: {} {:?}",
                                r.status(),
                                r.headers().get("www-authenticate")
                            );
                            failed.fetch_add(1, Ordering::SeqCst)
                        }
                        Err(e) => {
                            eprintln!("request failed: {e}");
                            failed.fetch_add(1, Ordering::SeqCst)
                        }
                    };
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(500)).await;
    // The new key is ES256: the algorithm changes with the key, and the
    // service pins each key to its own.
    let rotated = latchkey.cli_with(
        &["keys", "rotate", "--json"],
        "",
        &[("LATCHKEY__KEYS__ALGORITHM", "ES256")],
    );
    let new_kid = rotated["kid"].as_str().expect("kid").to_owned();
    assert_ne!(new_kid, old_kid);

    // Fresh tokens until one is signed by the new key, then load on with it
    // for a while; 30 s at most.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut new_since = None;
    while Instant::now() < deadline {
        let t = client_credentials_token(&http, &endpoint, &id, &secret).await;
        if kid_of(&t) == new_kid && new_since.is_none() {
            new_since = Some(Instant::now());
        }
        *token.write().expect("lock") = t;
        if new_since.is_some_and(|t| t.elapsed() > Duration::from_millis(1500)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for caller in callers {
        caller.await.expect("caller");
    }
    let elapsed = service_started.elapsed();
    assert!(
        new_since.is_some(),
        "latchkey never signed with the new key"
    );

    let (ok, failed) = (ok.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
    assert_eq!(
        failed,
        0,
        "{failed} of {} requests failed across the rotation",
        ok + failed
    );
    assert!(ok > 100, "the load loop ran ({ok} requests)");

    let stats: Value = http
        .get(format!("http://{addr}/stats"))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    let fetches = stats["jwks_fetches"].as_u64().expect("fetches");
    // Renewal happens at 80% of max-age: at most one fetch per 0.8 s of
    // the service's life, plus the first.
    let allowed = (elapsed.as_secs_f64() / (0.8 * MAX_AGE_SECS as f64)).ceil() as u64 + 1;
    assert!(
        (2..=allowed).contains(&fetches),
        "{fetches} JWKS fetches in {elapsed:?} (allowed 2..={allowed}): {stats}"
    );
    assert_eq!(
        stats["jwks_unknown_kid_fetches"], 0,
        "the new key was known before it signed: {stats}"
    );
    assert!(
        stats["jwks_not_modified"].as_u64().unwrap_or(0) > 0,
        "renewals used the ETag: {stats}"
    );
    eprintln!("rotation under load: {ok} requests, {fetches} JWKS fetches in {elapsed:?}");
}

#[tokio::test]
async fn introspection_sees_a_revocation_that_local_verification_cannot() {
    let latchkey = Latchkey::start();
    let client = latchkey.cli(&[
        "clients",
        "create",
        "--name",
        "orders-app",
        "--kind",
        "confidential",
        "--grants",
        "password,refresh_token",
        "--scopes",
        "orders:read",
        "--audience",
        AUD,
        "--json",
    ]);
    let id = client["client_id"].as_str().expect("client_id").to_owned();
    let secret = client["client_secret"].as_str().expect("secret").to_owned();
    latchkey.cli_with(
        &[
            "users",
            "create",
            "--email",
            "ada@example.com",
            "--password-stdin",
            "--json",
        ],
        "correct horse battery\n",
        &[],
    );

    let http = reqwest::Client::new();
    let endpoint = token_endpoint(&http, &latchkey.url).await;
    let login: Value = http
        .post(&endpoint)
        .basic_auth(&id, Some(&secret))
        .form(&[
            ("grant_type", "password"),
            ("username", "ada@example.com"),
            ("password", "correct horse battery"),
            ("scope", "orders:read"),
        ])
        .send()
        .await
        .expect("token endpoint")
        .json()
        .await
        .expect("json");
    let access = login["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    let refresh = login["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_owned();

    // No answer cache, so each call asks the issuer.
    let fresh = latchkey_verify::Verifier::builder(&latchkey.url, AUD)
        .introspection(&id, &secret, Duration::ZERO)
        .discover()
        .await
        .expect("discovery");
    // A long answer cache: one request for many calls.
    let cached = latchkey_verify::Verifier::builder(&latchkey.url, AUD)
        .introspection(&id, &secret, Duration::from_secs(60))
        .discover()
        .await
        .expect("discovery");
    fresh
        .introspect(&access)
        .await
        .expect("active before revocation");
    for _ in 0..5 {
        cached.introspect(&access).await.expect("active");
    }
    assert_eq!(cached.stats().introspections, 1, "answers are cached");

    let revoked = http
        .post(format!("{}/oauth/revoke", latchkey.url))
        .basic_auth(&id, Some(&secret))
        .form(&[("token", refresh.as_str())])
        .send()
        .await
        .expect("revocation endpoint");
    assert_eq!(revoked.status(), 200);

    fresh
        .verify(&access)
        .await
        .expect("a local check cannot see the revocation");
    assert_eq!(
        fresh.introspect(&access).await.err(),
        Some(latchkey_verify::Error::Inactive),
        "introspection does"
    );
    // A forgery never reaches the issuer.
    let before = fresh.stats().introspections;
    assert!(fresh.introspect("not.a.token").await.is_err());
    assert_eq!(fresh.stats().introspections, before);
}

async fn one_token(latchkey: &Latchkey) -> String {
    let client = latchkey.cli(&[
        "clients",
        "create",
        "--name",
        "orders-cc",
        "--kind",
        "confidential",
        "--grants",
        "client_credentials",
        "--scopes",
        "orders:read",
        "--audience",
        AUD,
        "--json",
    ]);
    let http = reqwest::Client::new();
    let endpoint = token_endpoint(&http, &latchkey.url).await;
    client_credentials_token(
        &http,
        &endpoint,
        client["client_id"].as_str().expect("client_id"),
        client["client_secret"].as_str().expect("secret"),
    )
    .await
}

#[tokio::test]
async fn tokens_of_every_algorithm_latchkey_signs_verify() {
    for alg in ["RS256", "ES256", "EdDSA"] {
        let latchkey = Latchkey::start_with(&[("LATCHKEY__KEYS__ALGORITHM", alg)]);
        let token = one_token(&latchkey).await;
        assert_eq!(header_of(&token)["alg"], alg);
        let verifier = latchkey_verify::Verifier::discover(&latchkey.url, AUD)
            .await
            .expect("discovery");
        let claims = verifier.verify(&token).await.expect("verifies");
        assert!(claims.has_scope("orders:read"), "{alg}");
        assert_eq!(
            claims.sid, None,
            "client_credentials tokens have no session"
        );
        let wrong_audience = latchkey_verify::Verifier::discover(&latchkey.url, "billing")
            .await
            .expect("discovery");
        assert_eq!(
            wrong_audience.verify(&token).await.err(),
            Some(latchkey_verify::Error::Audience),
            "{alg}"
        );
    }
}
