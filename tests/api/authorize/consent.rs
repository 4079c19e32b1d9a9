//! Consent for third-party clients: asked once, remembered per user, client
//! and scopes, listed and withdrawn through the account API (which ends the
//! client's sessions); `prompt=none` and `prompt=consent`.

use latchkey::domain::types::ClientKind;

use super::*;
use crate::app_or_skip;
use crate::both_backends;
use crate::helpers::{str_field, Backend};

async fn a_third_party_client_needs_consent_once_until_it_is_withdrawn(backend: Backend) {
    let app = app_or_skip!(backend);
    let client = code_client(&app, ClientKind::Confidential, false).await;
    let email = user(&app).await;
    let mut browser = Browser::new(&app);
    let (verifier, challenge) = pkce();

    // Login leads to the consent page, which words the scopes.
    let res = sign_in(&mut browser, &client, &email, &challenge).await;
    assert_eq!(res.status(), 200);
    assert!(browser.cookies.contains_key("__Host-lk_session"));
    let page = res.text().await.expect("page");
    assert!(page.contains("Allow Example App?"), "{page}");
    assert!(page.contains("See your email address"), "{page}");

    // Deny: back to the client with access_denied.
    let res = browser.decide(&page, "deny").await;
    assert_eq!(res.status(), 303);
    assert_eq!(location_params(&res).1["error"], "access_denied");

    // prompt=none with a session but no consent: consent_required.
    let res = browser
        .get(&authorize_url(
            &client.id,
            REDIRECT,
            &challenge,
            &[("prompt", "none")],
        ))
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location_params(&res).1["error"], "consent_required");

    // Allow: a code.
    let res = browser
        .get(&authorize_url(&client.id, REDIRECT, &challenge, &[]))
        .await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.expect("page");
    let res = browser.decide(&page, "allow").await;
    assert_eq!(res.status(), 303);
    let code = location_params(&res).1["code"].clone();
    let res = redeem(&app, &client, &code, REDIRECT, &verifier).await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.expect("json");

    // Remembered: straight back, even with prompt=none; prompt=consent asks again.
    let (_, challenge2) = pkce();
    let res = browser
        .get(&authorize_url(&client.id, REDIRECT, &challenge2, &[]))
        .await;
    assert_eq!(res.status(), 303);
    assert!(location_params(&res).1.contains_key("code"));
    let res = browser
        .get(&authorize_url(
            &client.id,
            REDIRECT,
            &challenge2,
            &[("prompt", "none")],
        ))
        .await;
    assert!(location_params(&res).1.contains_key("code"));
    let res = browser
        .get(&authorize_url(
            &client.id,
            REDIRECT,
            &challenge2,
            &[("prompt", "consent")],
        ))
        .await;
    assert_eq!(res.status(), 200);

    // Listed, then withdrawn: the client's sessions end with it.
    let at = str_field(&tokens, "access_token").to_owned();
    let res = app.get_bearer("/v1/account/consents", &at).await;
    assert_eq!(res.status(), 200);
    let listed: Value = res.json().await.expect("json");
    assert_eq!(
        listed["consents"][0]["client_id"],
        client.id.as_str(),
        "{listed}"
    );
    assert_eq!(listed["consents"][0]["scope"], "openid email", "{listed}");
    let res = app
        .client
        .delete(app.url(&format!("/v1/account/consents/{}", client.id)))
        .bearer_auth(&at)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 204);
    let res = app.get_bearer("/v1/account/consents", &at).await;
    assert_eq!(
        res.status(),
        401,
        "the withdrawn client's session is revoked"
    );

    // Asked again afterwards.
    let res = browser
        .get(&authorize_url(
            &client.id,
            REDIRECT,
            &challenge2,
            &[("prompt", "none")],
        ))
        .await;
    assert_eq!(location_params(&res).1["error"], "consent_required");
}
both_backends!(a_third_party_client_needs_consent_once_until_it_is_withdrawn);

async fn withdrawing_a_consent_that_does_not_exist_is_404(backend: Backend) {
    let app = app_or_skip!(backend);
    let (_, _, tokens) = app.logged_in_user(None).await;
    let res = app
        .client
        .delete(app.url(&format!("/v1/account/consents/{}", uuid::Uuid::new_v4())))
        .bearer_auth(str_field(&tokens, "access_token"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 404);
}
both_backends!(withdrawing_a_consent_that_does_not_exist_is_404);
