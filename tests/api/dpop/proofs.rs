//! Proofs at the token endpoint (RFC 9449 §4.3): a valid one binds the
//! tokens; each defect is 400 `invalid_dpop_proof` and issues nothing.

use serde_json::{json, Value};

use super::signer::{hmac_proof, unsigned_proof, ProofKey};
use super::*;
use crate::helpers::{new_shared, spawn_instance, spawn_on_with, Backend};
use crate::{app_or_skip, both_backends};

async fn valid_proof_issues_bound_tokens(backend: Backend) {
    let app = app_or_skip!(backend);
    let client = app.public_client().await;
    let email = new_user(&app).await;
    let key = ProofKey::es256();

    let res = login_with(&app, &client, &email, Some(&key)).await;

    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["token_type"], "DPoP");
    let access = body["access_token"].as_str().expect("access token");
    assert_eq!(claims_of(access)["cnf"], json!({"jkt": key.jkt()}));
    // Without a proof the same login gets a bearer token, unbound.
    let res = login_with(&app, &client, &email, None).await;
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["token_type"], "Bearer");
    assert!(claims_of(body["access_token"].as_str().expect("token"))
        .get("cnf")
        .is_none());
}
both_backends!(valid_proof_issues_bound_tokens);

#[tokio::test]
async fn every_advertised_algorithm_binds() {
    let app = crate::helpers::spawn_app().await;
    let client = app.public_client().await;
    let email = new_user(&app).await;
    let discovery: Value = app
        .client
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let advertised = &discovery["dpop_signing_alg_values_supported"];
    for key in [
        ProofKey::es256(),
        ProofKey::ed25519(),
        ProofKey::rs256(),
        ProofKey::ps256(),
    ] {
        assert!(
            advertised
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == key.alg)),
            "{advertised}"
        );
        let res = login_with(&app, &client, &email, Some(&key)).await;
        assert_eq!(res.status(), 200, "{}", key.alg);
        let body: Value = res.json().await.expect("json");
        let access = body["access_token"].as_str().expect("token");
        assert_eq!(claims_of(access)["cnf"]["jkt"], key.jkt(), "{}", key.alg);
    }
}

/// Every defect of RFC 9449 §4.3 the issue lists, each as the proof header
/// values a request carries.
fn defects(app: &TestApp, key: &ProofKey) -> Vec<(&'static str, Vec<String>)> {
    let url = htu(app, "/oauth/token");
    let t = now(app);
    let good = || ProofKey::claims("POST", &url, t);
    let with = |name: &str, value: Value| {
        let mut c = good();
        c[name] = value;
        key.sign(&key.header(), &c)
    };
    let header_with = |name: &str, value: Value| {
        let mut h = key.header();
        h[name] = value;
        h
    };
    let mut no_jti = good();
    no_jti.as_object_mut().expect("object").remove("jti");
    let mut private_jwk = key.header();
    private_jwk["jwk"]["d"] = "c2VjcmV0LXNjYWxhcg".into();
    let mut bad_signature = key.proof("POST", &url, t);
    bad_signature.push_str("AAAA");
    let other = ProofKey::es256();
    let mut foreign_signature = key.header();
    foreign_signature["jwk"] = other.jwk.clone();
    vec![
        ("wrong htm", vec![with("htm", "GET".into())]),
        (
            "wrong htu",
            vec![with("htu", "https://elsewhere.example/oauth/token".into())],
        ),
        (
            "htu of another path",
            vec![with("htu", htu(app, "/userinfo").into())],
        ),
        ("stale iat", vec![with("iat", (t - 600).into())]),
        ("future iat", vec![with("iat", (t + 600).into())]),
        ("missing jti", vec![key.sign(&key.header(), &no_jti)]),
        (
            "alg none",
            vec![unsigned_proof(&header_with("alg", "none".into()), &good())],
        ),
        (
            "HMAC",
            vec![hmac_proof(
                &header_with("alg", "HS256".into()),
                &good(),
                b"guessable",
            )],
        ),
        ("private key in jwk", vec![key.sign(&private_jwk, &good())]),
        (
            "two DPoP headers",
            vec![key.proof("POST", &url, t), key.proof("POST", &url, t)],
        ),
        ("bad signature", vec![bad_signature]),
        (
            "signed by another key",
            vec![key.sign(&foreign_signature, &good())],
        ),
        (
            "wrong typ",
            vec![key.sign(&header_with("typ", "jwt".into()), &good())],
        ),
        (
            "no typ",
            vec![{
                let mut h = key.header();
                h.as_object_mut().expect("object").remove("typ");
                key.sign(&h, &good())
            }],
        ),
        (
            "no jwk",
            vec![{
                let mut h = key.header();
                h.as_object_mut().expect("object").remove("jwk");
                key.sign(&h, &good())
            }],
        ),
        ("not a JWT", vec!["not-a-proof".into()]),
    ]
}

async fn each_proof_defect_is_refused_and_issues_nothing(backend: Backend) {
    let app = app_or_skip!(backend);
    let client = app.public_client().await;
    let email = new_user(&app).await;
    let key = ProofKey::es256();
    let form = [
        ("grant_type", "password"),
        ("username", email.as_str()),
        ("password", PASSWORD),
        ("client_id", client.id.as_str()),
    ];
    for (defect, proofs) in defects(&app, &key) {
        let res = post_token_with(&app, &form, &proofs).await;

        assert_eq!(res.status(), 400, "{defect}");
        assert_eq!(error_of(res).await, "invalid_dpop_proof", "{defect}");
    }
    // Nothing was issued: after one good login the user has one session.
    let body: Value = login_with(&app, &client, &email, None)
        .await
        .json()
        .await
        .expect("json");
    let token = body["access_token"].as_str().expect("token");
    let listed: Value = app
        .get_bearer("/v1/account/sessions", token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        listed["sessions"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
}
both_backends!(each_proof_defect_is_refused_and_issues_nothing);

async fn a_replayed_proof_is_refused_on_any_instance(backend: Backend) {
    let Some(shared) = new_shared(backend).await else {
        return;
    };
    let one = spawn_instance(&shared, |_| {}).await;
    let two = spawn_instance(&shared, |_| {}).await;
    let client = one.public_client().await;
    let email = new_user(&one).await;
    let key = ProofKey::es256();
    let proof = key.proof("POST", &htu(&one, "/oauth/token"), now(&one));
    let form = [
        ("grant_type", "password"),
        ("username", email.as_str()),
        ("password", PASSWORD),
        ("client_id", client.id.as_str()),
    ];
    assert_eq!(
        post_token_with(&one, &form, std::slice::from_ref(&proof))
            .await
            .status(),
        200
    );

    let same = post_token_with(&one, &form, std::slice::from_ref(&proof)).await;
    let other = post_token_with(&two, &form, &[proof]).await;

    assert_eq!(same.status(), 400);
    assert_eq!(error_of(same).await, "invalid_dpop_proof");
    assert_eq!(other.status(), 400);
    assert_eq!(error_of(other).await, "invalid_dpop_proof");
}
both_backends!(a_replayed_proof_is_refused_on_any_instance);

async fn of_racing_uses_of_one_proof_exactly_one_succeeds(backend: Backend) {
    let Some(shared) = new_shared(backend).await else {
        return;
    };
    let one = spawn_instance(&shared, |_| {}).await;
    let two = spawn_instance(&shared, |_| {}).await;
    let client = one.public_client().await;
    let key = ProofKey::es256();
    // client_credentials would need a confidential client; a refresh is
    // cheaper than a password hash, so race refreshes of distinct sessions.
    let email = new_user(&one).await;
    let mut tokens = Vec::new();
    for _ in 0..6 {
        let body: Value = login_with(&one, &client, &email, None)
            .await
            .json()
            .await
            .expect("json");
        tokens.push(body["refresh_token"].as_str().expect("rt").to_owned());
    }
    let proof = key.proof("POST", &htu(&one, "/oauth/token"), now(&one));
    let calls = tokens.iter().enumerate().map(|(i, rt)| {
        let app = if i % 2 == 0 { &one } else { &two };
        let proof = proof.clone();
        let client = client.clone();
        async move {
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", rt.as_str()),
                ("client_id", client.id.as_str()),
            ];
            post_token_with(app, &form, &[proof])
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(calls).await;

    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 400),
        "{statuses:?}"
    );
}
both_backends!(of_racing_uses_of_one_proof_exactly_one_succeeds);

async fn a_client_that_requires_dpop_refuses_grants_without_a_proof(backend: Backend) {
    let app = app_or_skip!(backend);
    let created = app
        .services
        .create_client(latchkey::domain::clients::NewClient {
            name: "strict".into(),
            kind: latchkey::domain::types::ClientKind::Public,
            grants: vec![
                latchkey::domain::types::GrantType::Password,
                latchkey::domain::types::GrantType::RefreshToken,
            ],
            scopes: latchkey::domain::types::Scope::parse("openid email").expect("scope"),
            audience: None,
            cookie_mode: false,
            origins: vec![],
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            first_party: false,
            introspect: false,
            require_dpop: true,
            admin: false,
            key_source: None,
        })
        .await
        .expect("client");
    let client = TestClient {
        id: created.client.id.to_string(),
        secret: None,
    };
    let email = new_user(&app).await;

    let without = login_with(&app, &client, &email, None).await;
    let with = login_with(&app, &client, &email, Some(&ProofKey::ed25519())).await;

    assert_eq!(without.status(), 400);
    assert_eq!(error_of(without).await, "invalid_dpop_proof");
    assert_eq!(with.status(), 200);
}
both_backends!(a_client_that_requires_dpop_refuses_grants_without_a_proof);

async fn nonces_when_required_are_handed_out_and_checked(backend: Backend) {
    let Some(app) = spawn_on_with(backend, |s| s.dpop.require_nonce = true).await else {
        return;
    };
    let client = app.public_client().await;
    let email = new_user(&app).await;
    let key = ProofKey::es256();
    let form = [
        ("grant_type", "password"),
        ("username", email.as_str()),
        ("password", PASSWORD),
        ("client_id", client.id.as_str()),
        ("scope", "openid"),
    ];
    let url = htu(&app, "/oauth/token");

    let first = post_token_with(&app, &form, &[key.proof("POST", &url, now(&app))]).await;

    assert_eq!(first.status(), 400);
    let nonce = first
        .headers()
        .get("DPoP-Nonce")
        .and_then(|v| v.to_str().ok())
        .expect("a nonce to retry with")
        .to_owned();
    assert_eq!(error_of(first).await, "use_dpop_nonce");
    let forged = {
        let mut c = ProofKey::claims("POST", &url, now(&app));
        c["nonce"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into();
        key.sign(&key.header(), &c)
    };
    let res = post_token_with(&app, &form, &[forged]).await;
    assert_eq!(error_of(res).await, "use_dpop_nonce");
    let mut c = ProofKey::claims("POST", &url, now(&app));
    c["nonce"] = nonce.clone().into();
    let retried = post_token_with(&app, &form, &[key.sign(&key.header(), &c)]).await;
    assert_eq!(retried.status(), 200);
    assert!(retried.headers().contains_key("DPoP-Nonce"));
    // Nonces expire: two lifetimes later the old one is refused.
    app.advance_clock(chrono::Duration::seconds(
        2 * app.settings.policy().dpop.nonce_lifetime_secs + 1,
    ));
    let mut c = ProofKey::claims("POST", &url, now(&app));
    c["nonce"] = nonce.into();
    let stale = post_token_with(&app, &form, &[key.sign(&key.header(), &c)]).await;
    assert_eq!(stale.status(), 400);
    assert_eq!(error_of(stale).await, "use_dpop_nonce");
}
both_backends!(nonces_when_required_are_handed_out_and_checked);

async fn a_client_that_fails_to_authenticate_uses_up_no_proof(backend: Backend) {
    let app = app_or_skip!(backend);
    let client = app.confidential_client().await;
    let key = ProofKey::es256();
    let proof = key.proof("POST", &htu(&app, "/oauth/token"), now(&app));
    let grant = |secret: &'static str| {
        [
            ("grant_type", "client_credentials"),
            ("client_id", client.id.as_str()),
            ("client_secret", secret),
        ]
    };

    // The client authenticates before the proof is looked at: a wrong
    // secret is 401, and nothing was written to the replay store, so
    // whoever cannot authenticate cannot fill it.
    let res = post_token_with(&app, &grant("not the secret"), std::slice::from_ref(&proof)).await;
    assert_eq!(res.status(), 401);
    assert_eq!(error_of(res).await, "invalid_client");

    // The same proof is still unseen for the client that can.
    let secret: &'static str = client.secret.clone().expect("secret").leak();
    let res = post_token_with(&app, &grant(secret), std::slice::from_ref(&proof)).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["token_type"], "DPoP");
    // And used up now.
    let res = post_token_with(&app, &grant(secret), &[proof]).await;
    assert_eq!(res.status(), 400);
    assert_eq!(error_of(res).await, "invalid_dpop_proof");
}
both_backends!(a_client_that_fails_to_authenticate_uses_up_no_proof);
