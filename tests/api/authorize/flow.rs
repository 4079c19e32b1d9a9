//! The happy path and its guarantees: login page, code, PKCE, tokens,
//! browser session, prompt=login, max_age, code reuse and code races.

use chrono::Duration;
use latchkey::domain::types::ClientKind;

use super::*;
use crate::app_or_skip;
use crate::both_backends;
use crate::helpers::{str_field, Backend};

async fn the_code_flow_issues_tokens_and_remembers_the_browser(backend: Backend) {
    let app = app_or_skip!(backend);
    let client = code_client(&app, ClientKind::Public, true).await;
    let email = user(&app).await;
    let mut browser = Browser::new(&app);
    let (verifier, challenge) = pkce();

    // The login page: no script, no framing, the client's name, labelled fields.
    let res = browser
        .get(&authorize_url(
            &client.id,
            "http://127.0.0.1:49152/callback",
            &challenge,
            &[],
        ))
        .await;
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("script-src"), "{csp}");
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let page = res.text().await.expect("page");
    assert!(page.contains("Example App"), "{page}");
    assert!(page.contains("<label for=\"email\">") && page.contains("<label for=\"password\">"));
    assert!(!page.contains("<script"), "{page}");

    // Log in: back to the loopback redirect on the port presented (RFC 8252 §7.3).
    let res = browser.log_in(&page, &email, PASSWORD).await;
    assert_eq!(res.status(), 303);
    let (loc, params) = location_params(&res);
    assert!(loc.starts_with("http://127.0.0.1:49152/callback?"), "{loc}");
    assert_eq!(params["state"], "st-123");
    assert_eq!(params["iss"], app.settings.issuer());
    assert!(params["code"].len() >= 43, "at least 256 bits");
    assert!(browser.cookies.contains_key("__Host-lk_session"));
    let session_cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .find(|c| c.starts_with("__Host-lk_session="))
        .expect("session cookie");
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(session_cookie.contains(attr), "{session_cookie}");
    }

    // Redeem: the same redirect_uri, the verifier.
    let res = redeem(
        &app,
        &client,
        &params["code"],
        "http://127.0.0.1:49152/callback",
        &verifier,
    )
    .await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.expect("json");
    let id = claims(str_field(&tokens, "id_token"));
    assert_eq!(id["nonce"], "n-456");
    assert_eq!(id["aud"], client.id.as_str());
    assert!(id["auth_time"].as_i64().is_some());
    assert!(
        id["at_hash"].as_str().is_some_and(|h| h.len() == 22),
        "{id}"
    );
    assert!(tokens["refresh_token"].as_str().is_some());

    // The session is listed like any other.
    let res = app
        .get_bearer("/v1/account/sessions", str_field(&tokens, "access_token"))
        .await;
    assert_eq!(res.status(), 200);
    let listed: Value = res.json().await.expect("json");
    assert_eq!(
        listed["sessions"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );

    // A second authorization needs no password.
    let (_, challenge2) = pkce();
    let res = browser
        .get(&authorize_url(&client.id, REDIRECT, &challenge2, &[]))
        .await;
    assert_eq!(res.status(), 303);
    assert!(location_params(&res).1.contains_key("code"));

    // prompt=login forces the password again, and so does max_age once exceeded.
    let res = browser
        .get(&authorize_url(
            &client.id,
            REDIRECT,
            &challenge2,
            &[("prompt", "login")],
        ))
        .await;
    assert_eq!(res.status(), 200);
    app.advance_clock(Duration::seconds(120));
    let res = browser
        .get(&authorize_url(
            &client.id,
            REDIRECT,
            &challenge2,
            &[("max_age", "60")],
        ))
        .await;
    assert_eq!(res.status(), 200, "max_age exceeded: login page");
    let res = browser
        .get(&authorize_url(
            &client.id,
            REDIRECT,
            &challenge2,
            &[("max_age", "600")],
        ))
        .await;
    assert_eq!(res.status(), 303, "within max_age: straight back");
}
both_backends!(the_code_flow_issues_tokens_and_remembers_the_browser);

async fn a_wrong_verifier_or_redirect_is_refused(backend: Backend) {
    let app = app_or_skip!(backend);
    let client = code_client(&app, ClientKind::Public, true).await;
    let email = user(&app).await;
    let mut browser = Browser::new(&app);
    let (verifier, challenge) = pkce();
    let res = sign_in(&mut browser, &client, &email, &challenge).await;
    let code = location_params(&res).1["code"].clone();

    let (other_verifier, _) = pkce();
    let res = redeem(&app, &client, &code, REDIRECT, &other_verifier).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "invalid_grant");

    let res = redeem(&app, &client, &code, WEB_REDIRECT, &verifier).await;
    assert_eq!(res.status(), 400);

    let other = code_client(&app, ClientKind::Public, true).await;
    let res = redeem(&app, &other, &code, REDIRECT, &verifier).await;
    assert_eq!(res.status(), 400, "a code is bound to its client");

    let res = redeem(&app, &client, &code, REDIRECT, &verifier).await;
    assert_eq!(res.status(), 200, "refusals above did not use the code up");
}
both_backends!(a_wrong_verifier_or_redirect_is_refused);

async fn a_redeemed_code_presented_again_revokes_its_tokens(backend: Backend) {
    let app = app_or_skip!(backend);
    let client = code_client(&app, ClientKind::Confidential, true).await;
    let email = user(&app).await;
    let mut browser = Browser::new(&app);
    let (verifier, challenge) = pkce();
    let res = sign_in(&mut browser, &client, &email, &challenge).await;
    let code = location_params(&res).1["code"].clone();

    let res = redeem(&app, &client, &code, REDIRECT, &verifier).await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.expect("json");

    let res = redeem(&app, &client, &code, REDIRECT, &verifier).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "invalid_grant");

    let res = app
        .get_bearer("/userinfo", str_field(&tokens, "access_token"))
        .await;
    assert_eq!(
        res.status(),
        401,
        "the first redemption's tokens are revoked"
    );
    let res = app
        .post_token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", str_field(&tokens, "refresh_token")),
            ("client_id", &client.id),
            ("client_secret", client.secret.as_deref().expect("secret")),
        ])
        .await;
    assert_eq!(res.status(), 400);
}
both_backends!(a_redeemed_code_presented_again_revokes_its_tokens);

async fn concurrent_redemptions_of_one_code_yield_no_live_tokens(backend: Backend) {
    let app = app_or_skip!(backend);
    let client = code_client(&app, ClientKind::Public, true).await;
    let email = user(&app).await;
    let mut browser = Browser::new(&app);
    let (verifier, challenge) = pkce();
    let res = sign_in(&mut browser, &client, &email, &challenge).await;
    let code = location_params(&res).1["code"].clone();

    let attempts = (0..8).map(|_| redeem(&app, &client, &code, REDIRECT, &verifier));
    let results = futures_util::future::join_all(attempts).await;
    let mut winners = Vec::new();
    for res in results {
        match res.status().as_u16() {
            200 => winners.push(res.json::<Value>().await.expect("json")),
            400 => {}
            s => panic!("unexpected status {s}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one redemption wins");
    let res = app
        .get_bearer("/userinfo", str_field(&winners[0], "access_token"))
        .await;
    assert_eq!(
        res.status(),
        401,
        "the replays revoked the winner's session"
    );
}
both_backends!(concurrent_redemptions_of_one_code_yield_no_live_tokens);

async fn an_expired_code_is_refused(backend: Backend) {
    let app = app_or_skip!(backend);
    let client = code_client(&app, ClientKind::Public, true).await;
    let email = user(&app).await;
    let mut browser = Browser::new(&app);
    let (verifier, challenge) = pkce();
    let res = sign_in(&mut browser, &client, &email, &challenge).await;
    let code = location_params(&res).1["code"].clone();
    app.advance_clock(Duration::seconds(61));
    let res = redeem(&app, &client, &code, REDIRECT, &verifier).await;
    assert_eq!(res.status(), 400);
}
both_backends!(an_expired_code_is_refused);

async fn the_login_page_shares_the_password_grants_throttle(backend: Backend) {
    let app = app_or_skip!(backend);
    let client = code_client(&app, ClientKind::Public, true).await;
    let email = user(&app).await;
    let mut browser = Browser::new(&app);
    let (_, challenge) = pkce();
    let res = browser
        .get(&authorize_url(&client.id, REDIRECT, &challenge, &[]))
        .await;
    let mut page = res.text().await.expect("page");
    for _ in 0..5 {
        let res = browser.log_in(&page, &email, "wrong password!").await;
        assert_eq!(res.status(), 401);
        page = res.text().await.expect("page");
        assert!(page.contains("role=\"alert\""), "{page}");
        assert!(page.contains(&email), "the email stays filled in");
    }
    let res = browser.log_in(&page, &email, PASSWORD).await;
    assert_eq!(res.status(), 429, "locked even with the right password");
    assert!(res.headers().contains_key("retry-after"));
    let pw = app.public_client().await;
    let res = app.login(&pw, &email, PASSWORD, None).await;
    assert_eq!(res.status(), 429, "the password grant sees the same lock");
}
both_backends!(the_login_page_shares_the_password_grants_throttle);

async fn unknown_email_and_wrong_password_look_the_same(backend: Backend) {
    let app = app_or_skip!(backend);
    let client = code_client(&app, ClientKind::Public, true).await;
    let email = user(&app).await;
    let mut browser = Browser::new(&app);
    let (_, challenge) = pkce();
    let res = browser
        .get(&authorize_url(&client.id, REDIRECT, &challenge, &[]))
        .await;
    let page = res.text().await.expect("page");
    let a = browser.log_in(&page, &email, "wrong password!").await;
    let (sa, ta) = (a.status(), a.text().await.expect("page"));
    let b = browser
        .log_in(&page, "nobody@example.com", "wrong password!")
        .await;
    let (sb, tb) = (b.status(), b.text().await.expect("page"));
    assert_eq!(sa, sb);
    let strip = |t: &str, e: &str| t.replace(e, "EMAIL");
    assert_eq!(strip(&ta, &email), strip(&tb, "nobody@example.com"));
}
both_backends!(unknown_email_and_wrong_password_look_the_same);
