//! A local issuer for a service's own tests: it mints tokens with a
//! throwaway key and serves discovery and a JWKS on a loopback port, with
//! `Cache-Control`, `ETag` and 304 like latchkey, so tests need no running
//! latchkey. It counts the JWKS requests it answers, can rotate keys,
//! publish keys of other types, and play unreachable.
//!
//! ```no_run
//! # async fn run() {
//! use latchkey_verify::test_util::TestIssuer;
//! let issuer = TestIssuer::start().await;
//! let verifier = issuer.verifier("orders").await;
//! let token = issuer.token("orders").scope("orders:read").sign();
//! assert!(verifier.verify(&token).await.is_ok());
//! # }
//! ```

#![expect(
    clippy::expect_used,
    reason = "a test utility fails the test that uses it loudly, with a message"
)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};

use crate::clock::{Clock, SystemClock};
use crate::{Verifier, VerifierBuilder};

/// The algorithm of a test key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestAlgorithm {
    /// RSA 2048, as latchkey signs by default.
    Rs256,
    /// ECDSA P-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A throwaway signing key and its public JWK.
pub struct TestKey {
    pair: Pair,
    /// The `kid` it is published under.
    pub kid: String,
    /// Its public JWK.
    pub jwk: Value,
    /// The JOSE name of its algorithm.
    pub alg: &'static str,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl TestKey {
    /// Generates a key; `kid` is random.
    ///
    /// # Panics
    /// If the system cannot generate keys (test code only).
    pub fn generate(alg: TestAlgorithm) -> Self {
        let kid = uuid::Uuid::new_v4().simple().to_string();
        let (pair, jwk, name) = match alg {
            TestAlgorithm::Rs256 => {
                let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("RSA key");
                let public = pair.public_key();
                let n = public.modulus().big_endian_without_leading_zero().to_vec();
                let e = public.exponent().big_endian_without_leading_zero().to_vec();
                let jwk = json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                                 "n": b64(&n), "e": b64(&e)});
                (Pair::Rsa(pair), jwk, "RS256")
            }
            TestAlgorithm::Es256 => {
                let pair = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
                    .expect("EC key");
                let point = pair.public_key().as_ref().to_vec();
                let jwk = json!({"kty": "EC", "use": "sig", "alg": "ES256", "crv": "P-256",
                                 "kid": kid, "x": b64(&point[1..33]), "y": b64(&point[33..65])});
                (Pair::Ec(pair), jwk, "ES256")
            }
            TestAlgorithm::EdDsa => {
                let pair = Ed25519KeyPair::generate().expect("Ed25519 key");
                let jwk = json!({"kty": "OKP", "use": "sig", "alg": "EdDSA", "crv": "Ed25519",
                                 "kid": kid, "x": b64(pair.public_key().as_ref())});
                (Pair::Ed(pair), jwk, "EdDSA")
            }
        };
        Self {
            pair,
            kid,
            jwk,
            alg: name,
        }
    }

    /// Signs `header.claims` as given, with no checks: for forged tokens.
    ///
    /// # Panics
    /// If signing fails (test code only).
    pub fn sign_raw(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(&serde_json::to_vec(header).expect("json")),
            b64(&serde_json::to_vec(claims).expect("json"))
        );
        let rng = SystemRandom::new();
        let sig = match &self.pair {
            Pair::Rsa(p) => {
                let mut sig = vec![0; p.public_modulus_len()];
                p.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &rng,
                    input.as_bytes(),
                    &mut sig,
                )
                .expect("signs");
                sig
            }
            Pair::Ec(p) => p
                .sign(&rng, input.as_bytes())
                .expect("signs")
                .as_ref()
                .to_vec(),
            Pair::Ed(p) => p.sign(input.as_bytes()).as_ref().to_vec(),
        };
        format!("{input}.{}", b64(&sig))
    }

    /// The public key as SPKI PEM (what an HS256 confusion attack keys
    /// its HMAC with).
    pub fn public_pem(&self) -> String {
        let der = match &self.pair {
            Pair::Rsa(p) => p.public_key().as_der().expect("der").as_ref().to_vec(),
            Pair::Ec(p) => p.public_key().as_der().expect("der").as_ref().to_vec(),
            Pair::Ed(p) => p.public_key().as_der().expect("der").as_ref().to_vec(),
        };
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        format!("-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n")
    }
}

struct Shared {
    keys: Mutex<Vec<Arc<TestKey>>>,
    extra_jwks: Mutex<Vec<Value>>,
    max_age_secs: AtomicU64,
    failing: AtomicBool,
    jwks_requests: AtomicU64,
    not_modified: AtomicU64,
}

impl Shared {
    fn jwks_body(&self) -> Vec<u8> {
        let mut keys: Vec<Value> = self
            .keys
            .lock()
            .expect("lock")
            .iter()
            .map(|k| k.jwk.clone())
            .collect();
        keys.extend(self.extra_jwks.lock().expect("lock").iter().cloned());
        serde_json::to_vec(&json!({ "keys": keys })).expect("json")
    }
}

/// A local issuer on `127.0.0.1`.
pub struct TestIssuer {
    /// Its issuer URL (`iss`).
    pub url: String,
    shared: Arc<Shared>,
    clock: Arc<dyn Clock>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestIssuer {
    /// Starts an issuer signing RS256, with `max-age=300`.
    pub async fn start() -> Self {
        Self::with_key(TestKey::generate(TestAlgorithm::Rs256)).await
    }

    /// Starts an issuer signing with `key`.
    ///
    /// # Panics
    /// If no loopback port can be bound (test code only).
    pub async fn with_key(key: TestKey) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let url = format!("http://{addr}");
        let shared = Arc::new(Shared {
            keys: Mutex::new(vec![Arc::new(key)]),
            extra_jwks: Mutex::new(Vec::new()),
            max_age_secs: AtomicU64::new(300),
            failing: AtomicBool::new(false),
            jwks_requests: AtomicU64::new(0),
            not_modified: AtomicU64::new(0),
        });
        let server = tokio::spawn(serve(listener, url.clone(), shared.clone()));
        Self {
            url,
            shared,
            clock: Arc::new(SystemClock),
            server,
        }
    }

    /// Mints with times from `clock` instead of the system's.
    pub fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = clock;
    }

    /// A verifier for `audience` against this issuer, with defaults.
    ///
    /// # Panics
    /// If discovery fails (test code only).
    pub async fn verifier(&self, audience: &str) -> Verifier {
        self.builder(audience).discover().await.expect("discovery")
    }

    /// A builder for a verifier against this issuer.
    pub fn builder(&self, audience: &str) -> VerifierBuilder {
        Verifier::builder(&self.url, audience)
    }

    /// The key that signs now (the last added).
    pub fn signing_key(&self) -> Arc<TestKey> {
        self.shared
            .keys
            .lock()
            .expect("lock")
            .last()
            .cloned()
            .expect("a key")
    }

    /// Publishes `key` and signs with it from now on; older keys stay
    /// published.
    pub fn rotate_to(&self, key: TestKey) {
        self.shared.keys.lock().expect("lock").push(Arc::new(key));
    }

    /// Publishes `key` without signing with it.
    pub fn publish(&self, key: &TestKey) {
        self.shared
            .extra_jwks
            .lock()
            .expect("lock")
            .push(key.jwk.clone());
    }

    /// Publishes an arbitrary JWK (of a type a verifier may not know).
    pub fn publish_jwk(&self, jwk: Value) {
        self.shared.extra_jwks.lock().expect("lock").push(jwk);
    }

    /// The `max-age` of JWKS answers, in seconds.
    pub fn set_max_age(&self, secs: u64) {
        self.shared.max_age_secs.store(secs, Ordering::SeqCst);
    }

    /// While set, every request is answered 503.
    pub fn set_unreachable(&self, failing: bool) {
        self.shared.failing.store(failing, Ordering::SeqCst);
    }

    /// JWKS requests answered so far (200, 304 and 503 alike).
    pub fn jwks_requests(&self) -> u64 {
        self.shared.jwks_requests.load(Ordering::SeqCst)
    }

    /// Of those, how many got 304.
    pub fn jwks_not_modified(&self) -> u64 {
        self.shared.not_modified.load(Ordering::SeqCst)
    }

    /// Claims of a valid token for `audience`, to alter before signing.
    pub fn claims(&self, audience: &str) -> Value {
        let now = self.clock.now().as_secs();
        json!({
            "iss": self.url,
            "sub": uuid::Uuid::new_v4().to_string(),
            "aud": audience,
            "exp": now + 900,
            "iat": now,
            "jti": uuid::Uuid::new_v4().to_string(),
            "client_id": uuid::Uuid::new_v4().to_string(),
            "scope": "",
            "sid": uuid::Uuid::new_v4().to_string(),
        })
    }

    /// The header latchkey would put on a token from `key`.
    pub fn header(key: &TestKey) -> Value {
        json!({"alg": key.alg, "typ": "at+jwt", "kid": key.kid})
    }

    /// Starts a valid token for `audience`.
    pub fn token(&self, audience: &str) -> TokenBuilder<'_> {
        TokenBuilder {
            issuer: self,
            claims: self.claims(audience),
        }
    }
}

/// A token being minted by a [`TestIssuer`].
pub struct TokenBuilder<'a> {
    issuer: &'a TestIssuer,
    claims: Value,
}

impl TokenBuilder<'_> {
    /// The granted scope (space-delimited).
    pub fn scope(mut self, scope: &str) -> Self {
        self.claims["scope"] = scope.into();
        self
    }

    /// Sets `sub` (a random UUID unless set).
    pub fn subject(mut self, sub: uuid::Uuid) -> Self {
        self.claims["sub"] = sub.to_string().into();
        self
    }

    /// Sets claim `name`, replacing the default: for custom claims, or
    /// standard ones made wrong on purpose.
    pub fn claim(mut self, name: &str, value: Value) -> Self {
        self.claims[name] = value;
        self
    }

    /// Sets `exp` to `ttl` from now by the issuer's clock (default 900 s).
    pub fn expires_in(mut self, ttl: Duration) -> Self {
        let now = self.issuer.clock.now().as_secs();
        self.claims["exp"] = (now + ttl.as_secs()).into();
        self
    }

    /// Signs with the issuer's current key.
    pub fn sign(self) -> String {
        let key = self.issuer.signing_key();
        key.sign_raw(&TestIssuer::header(&key), &self.claims)
    }
}

async fn serve(listener: tokio::net::TcpListener, url: String, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let url = url.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let url = url.clone();
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(answer(&req, &url, &shared)) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

fn answer(req: &Request<Incoming>, url: &str, shared: &Shared) -> Response<Full<Bytes>> {
    let is_jwks = req.uri().path() == "/jwks";
    if is_jwks {
        shared.jwks_requests.fetch_add(1, Ordering::SeqCst);
    }
    let mut response = Response::builder();
    if shared.failing.load(Ordering::SeqCst) {
        return response
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .body(Full::new(Bytes::new()))
            .expect("response");
    }
    let body = match req.uri().path() {
        "/.well-known/openid-configuration" => serde_json::to_vec(&json!({
            "issuer": url,
            "jwks_uri": format!("{url}/jwks"),
            "introspection_endpoint": format!("{url}/introspect"),
        }))
        .expect("json"),
        "/jwks" => {
            let body = shared.jwks_body();
            let etag = format!(
                "\"{}\"",
                b64(&aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &body).as_ref()[..12])
            );
            let max_age = shared.max_age_secs.load(Ordering::SeqCst);
            response = response
                .header("cache-control", format!("public, max-age={max_age}"))
                .header("etag", &etag)
                .header("content-type", "application/json");
            let matches = req
                .headers()
                .get("if-none-match")
                .is_some_and(|v| v.as_bytes() == etag.as_bytes());
            if matches {
                shared.not_modified.fetch_add(1, Ordering::SeqCst);
                return response
                    .status(StatusCode::NOT_MODIFIED)
                    .body(Full::new(Bytes::new()))
                    .expect("response");
            }
            body
        }
        _ => {
            return response
                .status(StatusCode::NOT_FOUND)
                .body(Full::new(Bytes::new()))
                .expect("response")
        }
    };
    response
        .body(Full::new(Bytes::from(body)))
        .expect("response")
}
