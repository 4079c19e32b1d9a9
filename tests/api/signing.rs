//! `tokens.signing = "pool"`: every grant's tokens are signed on the signing
//! threads and verify against the served JWKS, for RS256 and ES256 keys.

use serde_json::Value;

use crate::algorithms::verify_from_jwks;
use crate::helpers::{spawn_on_with, str_field, Backend, TestApp};

async fn pool_server(alg: &'static str) -> TestApp {
    spawn_on_with(Backend::Sqlite, |s| {
        s.tokens.signing = "pool".into();
        s.keys.algorithm = alg.into();
    })
    .await
    .expect("SQLite is always available")
}

/// Names of this process's threads that belong to a signing pool (the
/// server under test runs in the test process).
fn signing_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(Result::ok)
                .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
                .filter(|name| name.starts_with("signing-"))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn a_server_signing_on_its_pool_issues_tokens_that_verify() {
    for alg in ["RS256", "ES256"] {
        let app = pool_server(alg).await;
        assert!(signing_threads() > 0, "{alg}: no signing threads");

        // Password grant: access token and id_token.
        let (client, email, login) = app.logged_in_user(Some("openid email")).await;
        let access = verify_from_jwks(&app, str_field(&login, "access_token"), "latchkey").await;
        assert_eq!(access["client_id"], client.id.as_str());
        let id = verify_from_jwks(&app, str_field(&login, "id_token"), &client.id).await;
        assert_eq!(id["email"], email.as_str());

        // Refresh: a new pair, both verifying, and the old token spent.
        let res = app
            .refresh(&client, str_field(&login, "refresh_token"))
            .await;
        assert_eq!(res.status(), 200, "{alg} refresh");
        let body: Value = res.json().await.expect("json");
        let again = verify_from_jwks(&app, str_field(&body, "access_token"), "latchkey").await;
        assert_eq!(again["sub"], access["sub"]);
        assert_ne!(again["jti"], access["jti"]);
        verify_from_jwks(&app, str_field(&body, "id_token"), &client.id).await;
        assert_ne!(
            str_field(&body, "refresh_token"),
            str_field(&login, "refresh_token")
        );

        // client_credentials, many at once: every job comes back to its
        // own request.
        let service = app.confidential_client().await;
        let requests = (0..16).map(|_| async {
            let res = app
                .client
                .post(app.url("/oauth/token"))
                .basic_auth(&service.id, service.secret.as_deref())
                .form(&[("grant_type", "client_credentials"), ("scope", "read")])
                .send()
                .await
                .expect("request");
            assert_eq!(res.status(), 200, "{alg} client_credentials");
            let body: Value = res.json().await.expect("json");
            str_field(&body, "access_token").to_owned()
        });
        let tokens = futures_util::future::join_all(requests).await;
        let mut jtis = std::collections::HashSet::new();
        for token in &tokens {
            let claims = verify_from_jwks(&app, token, "latchkey").await;
            assert_eq!(claims["client_id"], service.id.as_str());
            assert_eq!(claims["scope"], "read");
            jtis.insert(claims["jti"].as_str().expect("jti").to_owned());
        }
        assert_eq!(jtis.len(), tokens.len());
    }
}
