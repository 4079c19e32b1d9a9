//! RP-Initiated Logout: confirmation, the registered
//! post_logout_redirect_uri with state, the session cookie cleared and the
//! browser session ended server-side.

use latchkey::domain::types::ClientKind;

use super::*;
use crate::app_or_skip;
use crate::both_backends;
use crate::helpers::{str_field, Backend};

async fn logout_ends_the_browser_session_and_returns_to_the_client(backend: Backend) {
    let app = app_or_skip!(backend);
    let client = code_client(&app, ClientKind::Public, true).await;
    let email = user(&app).await;
    let mut browser = Browser::new(&app);
    let (verifier, challenge) = pkce();
    let res = sign_in(&mut browser, &client, &email, &challenge).await;
    let code = location_params(&res).1["code"].clone();
    let tokens: Value = redeem(&app, &client, &code, REDIRECT, &verifier)
        .await
        .json()
        .await
        .expect("json");
    let session = browser.cookies["__Host-lk_session"].clone();

    // An unregistered post_logout_redirect_uri is refused on a page.
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("id_token_hint", str_field(&tokens, "id_token"))
        .append_pair("post_logout_redirect_uri", "https://evil.example/")
        .append_pair("state", "bye");
    let res = browser.get(&format!("/logout?{}", q.finish())).await;
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());

    // The registered one: a confirmation page, then the redirect with state.
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("id_token_hint", str_field(&tokens, "id_token"))
        .append_pair("post_logout_redirect_uri", LOGOUT_REDIRECT)
        .append_pair("state", "bye");
    let res = browser.get(&format!("/logout?{}", q.finish())).await;
    assert_eq!(res.status(), 200);
    assert!(
        browser.cookies.contains_key("__Host-lk_session"),
        "GET alone logs nobody out"
    );
    let page = res.text().await.expect("page");
    let res = browser
        .post(
            "/logout",
            &[
                ("csrf_token", &hidden(&page, "csrf_token")),
                ("request", &hidden(&page, "request")),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"].to_str().expect("ascii"),
        format!("{LOGOUT_REDIRECT}?state=bye")
    );
    assert!(
        !browser.cookies.contains_key("__Host-lk_session"),
        "cookie cleared"
    );

    // The old cookie, replayed, no longer signs anyone in.
    browser.cookies.insert("__Host-lk_session".into(), session);
    let (_, challenge2) = pkce();
    let res = browser
        .get(&authorize_url(&client.id, REDIRECT, &challenge2, &[]))
        .await;
    assert_eq!(res.status(), 200, "login page again");
}
both_backends!(logout_ends_the_browser_session_and_returns_to_the_client);

async fn a_forged_logout_post_only_asks_for_confirmation(backend: Backend) {
    let app = app_or_skip!(backend);
    let client = code_client(&app, ClientKind::Public, true).await;
    let email = user(&app).await;
    let mut browser = Browser::new(&app);
    let (_, challenge) = pkce();
    sign_in(&mut browser, &client, &email, &challenge).await;
    let res = browser.post("/logout", &[("client_id", &client.id)]).await;
    assert_eq!(res.status(), 200);
    let res = browser
        .post("/logout", &[("csrf_token", "forged"), ("request", "")])
        .await;
    assert_eq!(res.status(), 403);
    let (_, challenge2) = pkce();
    let res = browser
        .get(&authorize_url(&client.id, REDIRECT, &challenge2, &[]))
        .await;
    assert_eq!(res.status(), 303, "still signed in");
}
both_backends!(a_forged_logout_post_only_asks_for_confirmation);
