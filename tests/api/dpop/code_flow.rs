//! DPoP in the authorization code flow (RFC 9449 §5): a mobile app redeems
//! its code with a proof, and everything the code starts is bound to that
//! key: the access token, and the refresh token of its public session.

use latchkey::domain::types::ClientKind;
use serde_json::Value;

use super::signer::ProofKey;
use super::*;
use crate::authorize::{
    authorize_url, code_client, code_form, location_params, pkce, sign_in, sign_in_with, user,
    Browser, REDIRECT,
};
use crate::helpers::{str_field, Backend};
use crate::{app_or_skip, both_backends};

/// Redeems `code` with a proof made with `key`.
async fn redeem_with(
    app: &TestApp,
    client: &TestClient,
    code: &str,
    verifier: &str,
    key: &ProofKey,
) -> reqwest::Response {
    let proof = key.proof("POST", &htu(app, "/oauth/token"), now(app));
    post_token_with(app, &code_form(client, code, REDIRECT, verifier), &[proof]).await
}

async fn a_code_redeemed_with_a_proof_binds_the_session_to_its_key(backend: Backend) {
    let app = app_or_skip!(backend);
    let client = code_client(&app, ClientKind::Public, true).await;
    let email = user(&app).await;
    let mut browser = Browser::new(&app);
    let (verifier, challenge) = pkce();
    let res = sign_in(&mut browser, &client, &email, &challenge).await;
    let code = location_params(&res).1["code"].clone();
    let key = ProofKey::es256();

    let res = redeem_with(&app, &client, &code, &verifier, &key).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["token_type"], "DPoP");
    let access = str_field(&body, "access_token");
    assert_eq!(claims_of(access)["cnf"]["jkt"], key.jkt());

    // The access token is no bearer token.
    assert_eq!(app.get_bearer("/userinfo", access).await.status(), 401);
    let url = htu(&app, "/userinfo");
    let ok = app
        .client
        .get(app.url("/userinfo"))
        .header("Authorization", format!("DPoP {access}"))
        .header(
            "DPoP",
            key.resource_proof("GET", &url, now(&app), access, None),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(ok.status(), 200);

    // The refresh token works only with the same key, and keeps the binding.
    let rt = str_field(&body, "refresh_token");
    let stolen = refresh_with(&app, &client, rt, None).await;
    assert_eq!(stolen.status(), 400);
    assert_eq!(error_of(stolen).await, "invalid_grant");
    let other = refresh_with(&app, &client, rt, Some(&ProofKey::es256())).await;
    assert_eq!(other.status(), 400);
    let res = refresh_with(&app, &client, rt, Some(&key)).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(
        claims_of(str_field(&body, "access_token"))["cnf"]["jkt"],
        key.jkt()
    );
}
both_backends!(a_code_redeemed_with_a_proof_binds_the_session_to_its_key);

async fn a_bad_proof_at_redemption_leaves_the_code_unused(backend: Backend) {
    let app = app_or_skip!(backend);
    let client = code_client(&app, ClientKind::Public, true).await;
    let email = user(&app).await;
    let mut browser = Browser::new(&app);
    let (verifier, challenge) = pkce();
    let res = sign_in(&mut browser, &client, &email, &challenge).await;
    let code = location_params(&res).1["code"].clone();
    let key = ProofKey::es256();

    // A proof for another URL is refused before the code is looked at.
    let form = code_form(&client, &code, REDIRECT, &verifier);
    let wrong = key.proof("POST", &htu(&app, "/oauth/revoke"), now(&app));
    let res = post_token_with(&app, &form, &[wrong]).await;
    assert_eq!(res.status(), 400);
    assert_eq!(error_of(res).await, "invalid_dpop_proof");

    let res = redeem_with(&app, &client, &code, &verifier, &key).await;
    assert_eq!(
        res.status(),
        200,
        "the refused proof did not use the code up"
    );
}
both_backends!(a_bad_proof_at_redemption_leaves_the_code_unused);

/// The code of a login whose authorization request named `jkt` in
/// `dpop_jkt` (RFC 9449 §10), carried through the login page.
async fn code_bound_to(
    app: &TestApp,
    client: &TestClient,
    jkt: &str,
    challenge: &str,
) -> reqwest::Response {
    let email = user(app).await;
    let mut browser = Browser::new(app);
    sign_in_with(
        &mut browser,
        client,
        &email,
        challenge,
        &[("dpop_jkt", jkt)],
    )
    .await
}

async fn a_code_bound_by_dpop_jkt_is_redeemed_with_that_key_alone(backend: Backend) {
    let app = app_or_skip!(backend);
    let client = code_client(&app, ClientKind::Public, true).await;
    let key = ProofKey::es256();
    let (verifier, challenge) = pkce();
    let res = code_bound_to(&app, &client, &key.jkt(), &challenge).await;
    let code = location_params(&res).1["code"].clone();

    // Whoever intercepted the code on its way back through the browser has
    // the verifier too, in the worst case, but not the key.
    let form = code_form(&client, &code, REDIRECT, &verifier);
    let bare = post_token_with(&app, &form, &[]).await;
    assert_eq!(bare.status(), 400);
    assert_eq!(error_of(bare).await, "invalid_dpop_proof");
    let thief = ProofKey::es256();
    let res = redeem_with(&app, &client, &code, &verifier, &thief).await;
    assert_eq!(res.status(), 400);
    assert_eq!(error_of(res).await, "invalid_dpop_proof");

    // Neither refusal used the code up: its rightful holder redeems it.
    let res = redeem_with(&app, &client, &code, &verifier, &key).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(
        claims_of(str_field(&body, "access_token"))["cnf"]["jkt"],
        key.jkt()
    );
}
both_backends!(a_code_bound_by_dpop_jkt_is_redeemed_with_that_key_alone);

async fn a_malformed_dpop_jkt_is_refused_at_the_authorization_request(backend: Backend) {
    let app = app_or_skip!(backend);
    let client = code_client(&app, ClientKind::Public, true).await;
    let (_, challenge) = pkce();
    let mut browser = Browser::new(&app);
    for bad in ["short", &"a".repeat(44), &format!("{}=", "a".repeat(42))] {
        let res = browser
            .get(&authorize_url(
                &client.id,
                REDIRECT,
                &challenge,
                &[("dpop_jkt", bad)],
            ))
            .await;
        assert_eq!(res.status(), 303, "{bad}");
        let (_, params) = location_params(&res);
        assert_eq!(params["error"], "invalid_request", "{bad}");
    }
}
both_backends!(a_malformed_dpop_jkt_is_refused_at_the_authorization_request);
