//! `private_key_jwt` (RFC 7523): a confidential client authenticates with an
//! assertion signed by its own key, registered inline or at a `jwks_uri`,
//! at the token, introspection and revocation endpoints; every defect of an
//! assertion is `invalid_client`, and a `jti` is good once, across
//! instances.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::Duration;
use latchkey::domain::client_lifecycle::ClientChanges;
use latchkey::domain::clients::NewClient;
use latchkey::domain::types::{ClientId, ClientKind, GrantType, Scope};
use latchkey::store::KeySource;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::dpop::now;
use crate::dpop::signer::{b64, hmac_proof, unsigned_proof, ProofKey};
use crate::helpers::{new_shared, spawn_instance, Backend, TestApp};
use crate::{app_or_skip, both_backends};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn new_client(source: Option<KeySource>, kind: ClientKind) -> NewClient {
    NewClient {
        name: "orders-service".into(),
        kind,
        grants: vec![GrantType::ClientCredentials],
        scopes: Scope::parse("read").expect("scope"),
        audience: None,
        cookie_mode: false,
        origins: vec![],
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        first_party: false,
        introspect: true,
        require_dpop: false,
        key_source: source,
        admin: false,
    }
}

/// A `private_key_jwt` client with `source`; its id.
async fn key_client(app: &TestApp, source: KeySource) -> String {
    let created = app
        .services
        .create_client(new_client(Some(source), ClientKind::Confidential))
        .await
        .expect("client created");
    assert!(created.secret.is_none(), "a key client gets no secret");
    created.client.id.to_string()
}

fn with_kid(key: &ProofKey, kid: &str) -> Value {
    let mut jwk = key.jwk.clone();
    jwk["kid"] = kid.into();
    jwk
}

fn inline(key: &ProofKey) -> KeySource {
    KeySource::Jwks(key.jwk.to_string())
}

/// Well-formed claims for `client_id`, addressed to the issuer.
fn claims(app: &TestApp, client_id: &str) -> Value {
    let now = now(app);
    json!({
        "iss": client_id, "sub": client_id, "aud": app.settings.issuer(),
        "iat": now, "exp": now + 60, "jti": uuid::Uuid::new_v4().to_string(),
    })
}

fn header(key: &ProofKey, kid: Option<&str>) -> Value {
    let mut h = json!({"alg": key.alg, "typ": "JWT"});
    if let Some(kid) = kid {
        h["kid"] = kid.into();
    }
    h
}

fn assertion(app: &TestApp, key: &ProofKey, client_id: &str) -> String {
    key.sign(&header(key, None), &claims(app, client_id))
}

async fn post_with(
    app: &TestApp,
    path: &str,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> reqwest::Response {
    let mut req = app.client.post(app.url(path)).form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    req.send().await.expect("request")
}

/// A client_credentials grant authenticated by `assertion` alone.
async fn grant(app: &TestApp, assertion: &str) -> reqwest::Response {
    post_with(
        app,
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
        ],
        None,
    )
    .await
}

/// Asserts the contract's `invalid_client` answer.
async fn assert_invalid_client(res: reqwest::Response, what: &str) {
    assert_eq!(res.status(), 401, "{what}");
    assert!(
        res.headers().contains_key("www-authenticate"),
        "{what}: WWW-Authenticate"
    );
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "invalid_client", "{what}");
    assert_eq!(
        body["error_description"], "client authentication failed",
        "{what}: the description never says which check failed"
    );
}

async fn access_token(res: reqwest::Response) -> String {
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    body["access_token"].as_str().expect("token").to_owned()
}

async fn an_assertion_authenticates_at_token_introspection_and_revocation(backend: Backend) {
    let app = app_or_skip!(backend);
    let key = ProofKey::es256();
    let id = key_client(&app, inline(&key)).await;

    let token = access_token(grant(&app, &assertion(&app, &key, &id)).await).await;

    let introspected = post_with(
        &app,
        "/oauth/introspect",
        &[
            ("token", token.as_str()),
            ("client_id", id.as_str()),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &assertion(&app, &key, &id)),
        ],
        None,
    )
    .await;
    assert_eq!(introspected.status(), 200);
    let body: Value = introspected.json().await.expect("json");
    assert_eq!(body["active"], true);
    assert_eq!(body["client_id"], id.as_str());

    let revoked = post_with(
        &app,
        "/oauth/revoke",
        &[
            ("token", token.as_str()),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &assertion(&app, &key, &id)),
        ],
        None,
    )
    .await;
    assert_eq!(revoked.status(), 200);
}
both_backends!(an_assertion_authenticates_at_token_introspection_and_revocation);

#[tokio::test]
async fn every_accepted_algorithm_works_and_the_token_endpoint_counts_as_audience() {
    let app = crate::helpers::spawn_app().await;
    for key in [
        ProofKey::es256(),
        ProofKey::ed25519(),
        ProofKey::rs256(),
        ProofKey::ps256(),
    ] {
        let id = key_client(&app, inline(&key)).await;
        let mut c = claims(&app, &id);
        c["aud"] = json!([format!("{}/oauth/token", app.settings.issuer())]);
        let res = grant(&app, &key.sign(&header(&key, None), &c)).await;
        assert_eq!(res.status(), 200, "{}", key.alg);
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["token_type"], "Bearer");
    }
}

/// A loopback JWKS server whose key set the test replaces at will; it
/// counts the requests it answers.
struct JwksServer {
    url: String,
    keys: Arc<Mutex<Value>>,
    hits: Arc<AtomicUsize>,
}

impl JwksServer {
    async fn start(keys: Value) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!(
            "http://127.0.0.1:{}/jwks.json",
            listener.local_addr().expect("addr").port()
        );
        let keys = Arc::new(Mutex::new(keys));
        let hits = Arc::new(AtomicUsize::new(0));
        let (k, h) = (keys.clone(), hits.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (k, h) = (k.clone(), h.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    h.fetch_add(1, Ordering::SeqCst);
                    let body = k.lock().expect("lock").to_string();
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Self { url, keys, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn keys_at_a_jwks_uri_are_fetched_cached_and_rotated_by_an_unknown_kid(backend: Backend) {
    let app = app_or_skip!(backend);
    let old = ProofKey::es256();
    let new = ProofKey::rs256();
    let server = JwksServer::start(json!({"keys": [with_kid(&old, "2026-a")]})).await;
    let id = key_client(&app, KeySource::JwksUri(server.url.clone())).await;
    let signed = |key: &ProofKey, kid: &str| key.sign(&header(key, Some(kid)), &claims(&app, &id));

    assert_eq!(grant(&app, &signed(&old, "2026-a")).await.status(), 200);
    assert_eq!(grant(&app, &signed(&old, "2026-a")).await.status(), 200);
    assert_eq!(server.hits(), 1, "the JWKS is cached");

    // The client rotates: only the new key is published.
    *server.keys.lock().expect("lock") = json!({"keys": [with_kid(&new, "2026-b")]});
    // Just after the last fetch, an unknown kid does not fetch again.
    assert_invalid_client(grant(&app, &signed(&new, "2026-b")).await, "rate-limited").await;
    assert_eq!(server.hits(), 1);

    app.advance_clock(Duration::seconds(11));
    assert_eq!(grant(&app, &signed(&new, "2026-b")).await.status(), 200);
    assert_eq!(server.hits(), 2, "the unknown kid fetched the JWKS once");
    // The retired key is gone; garbage kids do not hammer the client's server.
    assert_invalid_client(grant(&app, &signed(&old, "2026-a")).await, "retired key").await;
    for _ in 0..5 {
        assert_invalid_client(grant(&app, &signed(&new, "nope")).await, "unknown kid").await;
    }
    assert_eq!(server.hits(), 2);
}
both_backends!(keys_at_a_jwks_uri_are_fetched_cached_and_rotated_by_an_unknown_kid);

async fn each_assertion_defect_is_refused(backend: Backend) {
    let app = app_or_skip!(backend);
    let key = ProofKey::es256();
    let id = key_client(&app, inline(&key)).await;
    let other_key = ProofKey::es256();
    let other = key_client(&app, inline(&other_key)).await;
    let h = header(&key, None);
    let now = now(&app);
    let with = |changes: &[(&str, Value)]| {
        let mut c = claims(&app, &id);
        for (name, value) in changes {
            match value {
                Value::Null => {
                    c.as_object_mut().expect("object").remove(*name);
                }
                v => c[*name] = v.clone(),
            }
        }
        c
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "wrong aud",
            key.sign(&h, &with(&[("aud", json!("https://elsewhere.example"))])),
        ),
        ("no aud", key.sign(&h, &with(&[("aud", Value::Null)]))),
        (
            "expired",
            key.sign(
                &h,
                &with(&[("iat", json!(now - 200)), ("exp", json!(now - 100))]),
            ),
        ),
        ("no exp", key.sign(&h, &with(&[("exp", Value::Null)]))),
        (
            "too long-lived",
            key.sign(&h, &with(&[("exp", json!(now + 600))])),
        ),
        (
            "too long-lived without iat",
            key.sign(
                &h,
                &with(&[("iat", Value::Null), ("exp", json!(now + 600))]),
            ),
        ),
        (
            "not yet valid",
            key.sign(&h, &with(&[("nbf", json!(now + 120))])),
        ),
        (
            "iat in the future",
            key.sign(
                &h,
                &with(&[("iat", json!(now + 120)), ("exp", json!(now + 180))]),
            ),
        ),
        ("no jti", key.sign(&h, &with(&[("jti", Value::Null)]))),
        (
            "iss is not sub",
            key.sign(&h, &with(&[("iss", json!(other))])),
        ),
        ("no iss", key.sign(&h, &with(&[("iss", Value::Null)]))),
        ("wrong key", ProofKey::es256().sign(&h, &claims(&app, &id))),
        (
            "another client's key for this client",
            other_key.sign(&header(&other_key, None), &claims(&app, &id)),
        ),
        (
            "this key claiming another client",
            key.sign(&h, &claims(&app, &other)),
        ),
        (
            "alg none",
            unsigned_proof(&json!({"alg": "none"}), &claims(&app, &id)),
        ),
        (
            "HS256 keyed with the public JWK",
            hmac_proof(
                &json!({"alg": "HS256"}),
                &claims(&app, &id),
                key.jwk.to_string().as_bytes(),
            ),
        ),
        (
            "HS256 keyed with the public key's x",
            hmac_proof(
                &json!({"alg": "HS256"}),
                &claims(&app, &id),
                key.jwk["x"].as_str().expect("x").as_bytes(),
            ),
        ),
        (
            "RS256 named for an EC key",
            key.sign(&json!({"alg": "RS256"}), &claims(&app, &id)),
        ),
        (
            "unknown kid",
            key.sign(&header(&key, Some("nope")), &claims(&app, &id)),
        ),
        (
            "crit",
            key.sign(
                &json!({"alg": key.alg, "crit": ["exp"]}),
                &claims(&app, &id),
            ),
        ),
        ("garbage", "not.a.jwt".to_owned()),
        (
            "huge",
            format!("{}.{}.{}", b64(&[b'{'; 4500]), b64(&[b'{'; 4500]), "x"),
        ),
    ];
    for (what, a) in &cases {
        assert_invalid_client(grant(&app, a).await, what).await;
    }

    // client_id in the form must name the assertion's client.
    let res = post_with(
        &app,
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", other.as_str()),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &assertion(&app, &key, &id)),
        ],
        None,
    )
    .await;
    assert_invalid_client(res, "client_id differs").await;
    // Another assertion type.
    let res = post_with(
        &app,
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
            ),
            ("client_assertion", &assertion(&app, &key, &id)),
        ],
        None,
    )
    .await;
    assert_invalid_client(res, "saml2 type").await;

    // Nothing above used up anything: a good assertion still works, once.
    let good = assertion(&app, &key, &id);
    assert_eq!(grant(&app, &good).await.status(), 200);
    assert_invalid_client(grant(&app, &good).await, "replayed").await;
}
both_backends!(each_assertion_defect_is_refused);

#[tokio::test]
async fn methods_do_not_mix() {
    let app = crate::helpers::spawn_app().await;
    let key = ProofKey::es256();
    let id = key_client(&app, inline(&key)).await;
    let secret_client = app.confidential_client().await;
    let secret = secret_client.secret.clone().expect("secret");

    // Assertion and secret together: invalid_request, whichever carries it.
    for basic in [None, Some((id.as_str(), secret.as_str()))] {
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
        ];
        let a = assertion(&app, &key, &id);
        form.push(("client_assertion", a.as_str()));
        if basic.is_none() {
            form.push(("client_secret", secret.as_str()));
        }
        let res = post_with(&app, "/oauth/token", &form, basic).await;
        assert_eq!(res.status(), 400);
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["error"], "invalid_request");
    }
    // Half an assertion.
    let res = post_with(
        &app,
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
        ],
        None,
    )
    .await;
    assert_eq!(res.status(), 400);

    // A key client's id with any secret; a secret client's id in an
    // assertion signed by some key.
    let res = post_with(
        &app,
        "/oauth/token",
        &[("grant_type", "client_credentials")],
        Some((id.as_str(), secret.as_str())),
    )
    .await;
    assert_invalid_client(res, "secret for a key client").await;
    assert_invalid_client(
        grant(&app, &assertion(&app, &key, &secret_client.id)).await,
        "assertion for a secret client",
    )
    .await;
    // And a disabled key client is refused like any other.
    let client_id = ClientId::parse(&id).expect("id");
    app.services
        .set_client_disabled(client_id, true, "cli")
        .await
        .expect("disabled");
    assert_invalid_client(grant(&app, &assertion(&app, &key, &id)).await, "disabled").await;
}

async fn of_racing_uses_of_one_assertion_exactly_one_succeeds(backend: Backend) {
    let Some(shared) = new_shared(backend).await else {
        return;
    };
    let one = spawn_instance(&shared, |_| {}).await;
    let key = ProofKey::es256();
    let id = key_client(&one, inline(&key)).await;
    let same = assertion(&one, &key, &id);
    let two = if backend == Backend::Postgres {
        Some(spawn_instance(&shared, |_| {}).await)
    } else {
        None
    };
    let apps: Vec<&TestApp> = std::iter::once(&one).chain(two.as_ref()).collect();
    let requests = (0..16).map(|i| grant(apps[i % apps.len()], &same));
    let statuses: Vec<u16> = futures_util::future::join_all(requests)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        15,
        "{statuses:?}"
    );
}
both_backends!(of_racing_uses_of_one_assertion_exactly_one_succeeds);

#[tokio::test]
async fn registration_refuses_private_symmetric_and_unusable_keys() {
    let app = crate::helpers::spawn_app().await;
    let key = ProofKey::es256();
    let mut private = key.jwk.clone();
    private["d"] = json!("jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI");
    let mut hs = key.jwk.clone();
    hs["alg"] = json!("HS256");
    let mut es512 = key.jwk.clone();
    es512["alg"] = json!("ES512");
    let refused = [
        KeySource::Jwks(private.to_string()),
        KeySource::Jwks(json!({"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQ"}).to_string()),
        KeySource::Jwks(hs.to_string()),
        KeySource::Jwks(es512.to_string()),
        KeySource::Jwks(json!({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}).to_string()),
        KeySource::JwksUri("http://keys.example/jwks.json".into()),
        KeySource::JwksUri("ftp://keys.example/jwks.json".into()),
    ];
    for source in refused {
        let out = app
            .services
            .create_client(new_client(Some(source.clone()), ClientKind::Confidential))
            .await;
        assert!(out.is_err(), "{source:?}");
    }
    let public = app
        .services
        .create_client(new_client(Some(inline(&key)), ClientKind::Public))
        .await;
    assert!(public.is_err(), "a public client has no keys");
    let listed = app.services.list_clients(None, 100).await.expect("list");
    assert!(listed.is_empty(), "nothing was stored");
}

#[tokio::test]
async fn a_key_client_has_no_secret_to_rotate_and_its_keys_can_change() {
    let app = crate::helpers::spawn_app().await;
    let old = ProofKey::es256();
    let id = key_client(&app, inline(&old)).await;
    let client_id = ClientId::parse(&id).expect("id");
    let rotated = app
        .services
        .rotate_client_secret(client_id, Duration::zero(), "cli")
        .await;
    assert!(rotated.is_err(), "no secret to rotate");

    let new = ProofKey::ed25519();
    let changes = ClientChanges {
        key_source: Some(inline(&new)),
        ..ClientChanges::default()
    };
    app.services
        .update_client(client_id, changes, "cli")
        .await
        .expect("updated");
    assert_invalid_client(grant(&app, &assertion(&app, &old, &id)).await, "old key").await;
    assert_eq!(grant(&app, &assertion(&app, &new, &id)).await.status(), 200);

    // A secret client cannot be given keys by an update.
    let secret_client = app.confidential_client().await;
    let changes = ClientChanges {
        key_source: Some(inline(&new)),
        ..ClientChanges::default()
    };
    let out = app
        .services
        .update_client(
            ClientId::parse(&secret_client.id).expect("id"),
            changes,
            "cli",
        )
        .await;
    assert!(out.is_err());
}

#[tokio::test]
async fn discovery_offers_private_key_jwt_and_its_algorithms_but_not_client_secret_jwt() {
    let app = crate::helpers::spawn_app().await;
    let doc: Value = app
        .client
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    for endpoint in [
        "token_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
    ] {
        let methods = doc[format!("{endpoint}_auth_methods_supported")]
            .as_array()
            .expect("methods");
        assert!(methods.contains(&json!("private_key_jwt")), "{endpoint}");
        assert!(!methods.contains(&json!("client_secret_jwt")), "{endpoint}");
        let mut algs: Vec<&str> = doc[format!("{endpoint}_auth_signing_alg_values_supported")]
            .as_array()
            .expect("algs")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        algs.sort_unstable();
        assert_eq!(algs, ["ES256", "EdDSA", "PS256", "RS256"], "{endpoint}");
    }
}

#[test]
fn the_cli_registers_a_key_client_shows_public_keys_only_and_refuses_private_ones() {
    use crate::cli::{env, json, latchkey};
    let env = env();
    let dir = tempfile::tempdir().expect("tempdir");
    let key = ProofKey::es256();
    let public = dir.path().join("public.json");
    std::fs::write(&public, json!({"keys": [with_kid(&key, "k1")]}).to_string()).expect("write");
    let mut private_jwk = key.jwk.clone();
    private_jwk["d"] = json!("jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI");
    let private = dir.path().join("private.json");
    std::fs::write(&private, private_jwk.to_string()).expect("write");
    let base = [
        "clients",
        "create",
        "--name",
        "orders",
        "--kind",
        "confidential",
        "--grants",
        "client_credentials",
        "--scopes",
        "read",
        "--auth-method",
        "private_key_jwt",
    ];

    let (ok, _, err) = latchkey(
        &env,
        &[&base[..], &["--jwk", private.to_str().expect("path")]].concat(),
        None,
    );
    assert!(!ok);
    assert!(err.contains("private key"), "{err}");
    let (ok, _, err) = latchkey(&env, &base, None);
    assert!(!ok);
    assert!(err.contains("--jwks-uri"), "{err}");

    let (ok, out, err) = latchkey(
        &env,
        &[
            &base[..],
            &["--jwk", public.to_str().expect("path"), "--json"],
        ]
        .concat(),
        None,
    );
    assert!(ok, "{err}");
    let created = json(&out);
    assert_eq!(created["auth_method"], "private_key_jwt");
    assert!(created["client_secret"].is_null(), "{created}");
    assert_eq!(created["jwks"]["keys"][0]["kid"], "k1");
    assert!(created["jwks"]["keys"][0].get("d").is_none());
    let id = created["client_id"].as_str().expect("id").to_owned();

    let (ok, _, err) = latchkey(&env, &["clients", "rotate-secret", &id], None);
    assert!(!ok);
    assert!(err.contains("private_key_jwt"), "{err}");

    let uri = "https://keys.example/orders/jwks.json";
    let (ok, _, err) = latchkey(&env, &["clients", "update", &id, "--jwks-uri", uri], None);
    assert!(ok, "{err}");
    let (ok, out, _) = latchkey(&env, &["clients", "show", &id, "--json"], None);
    assert!(ok);
    let shown = json(&out);
    assert_eq!(shown["jwks_uri"], uri);
    assert!(shown["jwks"].is_null());
}
