//! Bound sessions (RFC 9449 §5): a public client's refresh token works only
//! with the key it was bound to; a confidential client's stays unbound.

use serde_json::Value;

use super::signer::ProofKey;
use super::*;
use crate::helpers::Backend;
use crate::{app_or_skip, both_backends};

async fn bound_login(app: &TestApp, key: &ProofKey) -> (TestClient, String) {
    let client = app.public_client().await;
    let email = new_user(app).await;
    let body: Value = login_with(app, &client, &email, Some(key))
        .await
        .json()
        .await
        .expect("json");
    let rt = body["refresh_token"].as_str().expect("refresh token");
    (client, rt.to_owned())
}

async fn a_public_refresh_without_the_key_is_refused_and_rotates_nothing(backend: Backend) {
    let app = app_or_skip!(backend);
    let key = ProofKey::es256();
    let (client, rt) = bound_login(&app, &key).await;

    let without = refresh_with(&app, &client, &rt, None).await;
    let other = refresh_with(&app, &client, &rt, Some(&ProofKey::es256())).await;

    assert_eq!(without.status(), 400);
    assert_eq!(error_of(without).await, "invalid_grant");
    assert_eq!(other.status(), 400);
    assert_eq!(error_of(other).await, "invalid_grant");
    // Nothing rotated and nothing was revoked: the same token still
    // refreshes with the right key, once.
    let right = refresh_with(&app, &client, &rt, Some(&key)).await;
    assert_eq!(right.status(), 200);
    let body: Value = right.json().await.expect("json");
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(
        claims_of(body["access_token"].as_str().expect("token"))["cnf"]["jkt"],
        key.jkt()
    );
    let next = body["refresh_token"].as_str().expect("rt");
    assert_ne!(next, rt);
    assert_eq!(
        refresh_with(&app, &client, next, Some(&key)).await.status(),
        200
    );
}
both_backends!(a_public_refresh_without_the_key_is_refused_and_rotates_nothing);

async fn a_thief_replaying_a_used_bound_token_revokes_nothing(backend: Backend) {
    let app = app_or_skip!(backend);
    let key = ProofKey::es256();
    let (client, rt) = bound_login(&app, &key).await;
    let body: Value = refresh_with(&app, &client, &rt, Some(&key))
        .await
        .json()
        .await
        .expect("json");
    let next = body["refresh_token"].as_str().expect("rt").to_owned();
    app.advance_clock(chrono::Duration::seconds(60));

    // The used token, without the key: refused before reuse detection.
    let thief = refresh_with(&app, &client, &rt, Some(&ProofKey::es256())).await;

    assert_eq!(thief.status(), 400);
    assert_eq!(error_of(thief).await, "invalid_grant");
    assert_eq!(
        refresh_with(&app, &client, &next, Some(&key))
            .await
            .status(),
        200
    );
}
both_backends!(a_thief_replaying_a_used_bound_token_revokes_nothing);

async fn grace_and_reuse_work_unchanged_for_bound_sessions(backend: Backend) {
    let app = app_or_skip!(backend);
    let key = ProofKey::es256();
    let (client, rt) = bound_login(&app, &key).await;
    let first: Value = refresh_with(&app, &client, &rt, Some(&key))
        .await
        .json()
        .await
        .expect("json");

    // Within grace, with the key: the same new refresh token.
    let again: Value = refresh_with(&app, &client, &rt, Some(&key))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(again["refresh_token"], first["refresh_token"]);
    // An older generation, with the key: reuse, the session is revoked.
    let first_rt = first["refresh_token"].as_str().expect("rt");
    let second: Value = refresh_with(&app, &client, first_rt, Some(&key))
        .await
        .json()
        .await
        .expect("json");
    let reuse = refresh_with(&app, &client, &rt, Some(&key)).await;
    assert_eq!(reuse.status(), 400);
    let newest = second["refresh_token"].as_str().expect("rt");
    assert_eq!(
        refresh_with(&app, &client, newest, Some(&key))
            .await
            .status(),
        400
    );
}
both_backends!(grace_and_reuse_work_unchanged_for_bound_sessions);

async fn a_confidential_clients_refresh_token_stays_unbound(backend: Backend) {
    let app = app_or_skip!(backend);
    let client = app
        .create_client(
            latchkey::domain::types::ClientKind::Confidential,
            &[
                latchkey::domain::types::GrantType::Password,
                latchkey::domain::types::GrantType::RefreshToken,
            ],
            "openid email",
            None,
        )
        .await;
    let email = new_user(&app).await;
    let key = ProofKey::es256();
    let body: Value = login_with(&app, &client, &email, Some(&key))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["token_type"], "DPoP");
    let rt = body["refresh_token"].as_str().expect("rt");

    let without = refresh_with(&app, &client, rt, None).await;

    assert_eq!(without.status(), 200);
    let body: Value = without.json().await.expect("json");
    assert_eq!(body["token_type"], "Bearer");
    let other = ProofKey::ed25519();
    let rt = body["refresh_token"].as_str().expect("rt");
    let body: Value = refresh_with(&app, &client, rt, Some(&other))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(
        claims_of(body["access_token"].as_str().expect("token"))["cnf"]["jkt"],
        other.jkt()
    );
}
both_backends!(a_confidential_clients_refresh_token_stays_unbound);

async fn revocation_takes_bound_tokens(backend: Backend) {
    let app = app_or_skip!(backend);
    let key = ProofKey::es256();
    let (client, rt) = bound_login(&app, &key).await;

    let res = app
        .client
        .post(app.url("/oauth/revoke"))
        .form(&[("token", rt.as_str()), ("client_id", client.id.as_str())])
        .send()
        .await
        .expect("request");

    assert_eq!(res.status(), 200);
    let after = refresh_with(&app, &client, &rt, Some(&key)).await;
    assert_eq!(after.status(), 400);
    assert_eq!(error_of(after).await, "invalid_grant");
}
both_backends!(revocation_takes_bound_tokens);
